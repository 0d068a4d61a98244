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


def test_line_statistics() -> None:
    assert line_stats("ab\ncdef\n") == (4, 3.0, 6 / 8)


def test_quality_thresholds() -> None:
    q = CodeQuality()
    short_lines = "a = 1\n" * 20
    assert q.keep(_doc("x" * 1000 + "\n" + short_lines)) is True
    assert q.keep(_doc("x" * 1001 + "\n" + short_lines)) == "max_line_length_over_1000"
    assert q.keep(_doc(("y" * 101 + "\n") * 3)) == "mean_line_length_over_100"
    assert q.keep(_doc(("y" * 101 + "\n") + "\n" * 2)) is True  # mean 33.7
    assert q.keep(_doc("a = [ ] ; ( ) { } ## -- ==\n")) == "alnum_fraction_below_0.25"
    assert q.keep(_doc("  \n")) == "empty"
