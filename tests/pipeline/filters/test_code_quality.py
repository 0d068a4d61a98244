"""Source-file filters: licence, extension whitelist, line length and alphanumeric fraction."""

from __future__ import annotations

from pipeline.engine.document import Document
from pipeline.filters.code_quality import (
    CodeQuality,
    ExtensionFilter,
    LicenseFilter,
    extension_of,
    language_of,
    line_stats,
)


def _doc(text: str = "x = 1\n", path: str = "a.py", license_id: str = "MIT") -> Document:
    return Document(f"r/{path}", text, "github", {"path": path, "license": license_id})


def test_licence_filter_keeps_only_allowed_licences() -> None:
    f = LicenseFilter()
    assert [f.keep(_doc(license_id=x)) for x in ("MIT", "BSD-2-Clause", "BSD-3-Clause", "Apache-2.0")] == [True] * 4
    assert f.keep(_doc(license_id="GPL-3.0")) == "license_GPL-3.0"
    assert f.keep(_doc(license_id="none")) == "license_none"
    assert LicenseFilter(("MIT",)).keep(_doc(license_id="Apache-2.0")) == "license_Apache-2.0"


def test_extension_whitelist_and_languages() -> None:
    f = ExtensionFilter()
    assert f.keep(_doc(path="src/Main.JAVA")) is True and language_of("src/Main.JAVA") == "Java"
    assert f.keep(_doc(path="Makefile")) is True and extension_of("build/Makefile") == "makefile"
    assert f.keep(_doc(path="data.csv")) == "extension_not_whitelisted"
    assert f.keep(_doc(path=".gitignore")) == "extension_not_whitelisted"
    assert f.keep(_doc(path="LICENSE")) == "extension_not_whitelisted"


# RedPajama's GitHub whitelist (data_prep/github/github_run_filter.py), as it lists them: it
# matches the path's end, case-sensitively (".C", "Makefile").
REDPAJAMA_EXTENSIONS = [
    ".asm", ".bat", ".cmd", ".c", ".h", ".cs", ".cpp", ".hpp", ".c++", ".h++", ".cc", ".hh", ".C", ".H", ".cmake",
    ".css", ".dockerfile", ".f90", ".f", ".f03", ".f08", ".f77", ".f95", ".for", ".fpp", ".go", ".hs", ".html",
    ".java", ".js", ".jl", ".lua", ".md", ".markdown", ".php", ".php3", ".php4", ".php5", ".phps", ".phpt", ".pl",
    ".pm", ".pod", ".perl", ".ps1", ".psd1", ".psm1", ".py", ".rb", ".rs", ".sql", ".scala", ".sh", ".bash",
    ".command", ".zsh", ".ts", ".tsx", ".tex", ".vb", "Dockerfile", "Makefile", ".xml", ".rst", ".m", ".smali",
]


def test_every_extension_redpajama_keeps_is_kept() -> None:
    f = ExtensionFilter()
    paths = [f"src/name{end}" if end.startswith(".") else f"src/{end}" for end in REDPAJAMA_EXTENSIONS]
    assert [path for path in paths if f.keep(_doc(path=path)) is not True] == []
    assert all(language_of(path) for path in paths)


def test_line_statistics() -> None:
    # Lines "ab" and "cdef"; 8 characters with both line breaks over 2 lines (RedPajama's mean).
    assert line_stats("ab\ncdef\n") == (4, 4.0, 6 / 8)


def test_mean_line_length_counts_line_breaks_as_redpajama_does() -> None:
    q = CodeQuality()
    # 100 characters and a break per line: RedPajama's mean 303 / 3 = 101 drops it (the mean of
    # the line lengths alone, 100, would keep it); 99 and a break: 300 / 3 = 100, kept.
    assert line_stats(("y" * 100 + "\n") * 3)[1] == 101.0
    assert q.keep(_doc(("y" * 100 + "\n") * 3)) == "mean_line_length_over_100"
    assert q.keep(_doc(("y" * 99 + "\n") * 3)) is True
    # "\r\n" is two characters of the file: 99 + 2 per line gives 101.
    assert q.keep(_doc(("y" * 99 + "\r\n") * 3)) == "mean_line_length_over_100"
    # No break after the last line: (100 * 3 + 2) / 3 = 100.67.
    assert q.keep(_doc("\n".join(["y" * 100] * 3))) == "mean_line_length_over_100"


def test_quality_thresholds() -> None:
    q = CodeQuality()
    short_lines = "a = 1\n" * 20
    assert q.keep(_doc("x" * 1000 + "\n" + short_lines)) is True
    assert q.keep(_doc("x" * 1001 + "\n" + short_lines)) == "max_line_length_over_1000"
    assert q.keep(_doc(("y" * 101 + "\n") * 3)) == "mean_line_length_over_100"
    assert q.keep(_doc(("y" * 101 + "\n") + "\n" * 2)) is True  # mean 33.7
    assert q.keep(_doc("a = [ ] ; ( ) { } ## -- ==\n")) == "alnum_fraction_below_0.25"
    assert q.keep(_doc("  \n")) == "empty"
