"""Filters for source files: licence, extension whitelist, and line-length/alphanumeric quality.

Thresholds follow RedPajama's GitHub recipe: drop a file whose longest line exceeds 1000
characters (minified or generated code), whose mean line length exceeds 100, or whose
fraction of alphanumeric characters is below 0.25 (data blobs, ASCII art). The measures are
RedPajama's too, so the thresholds mean what they meant there: lines are `str.splitlines()`,
and the mean line length is the file's length over its number of lines, line breaks counted.
The extension whitelist holds every extension RedPajama keeps, and more.
"""

from __future__ import annotations

import re

from pipeline.engine.document import Document
from pipeline.engine.stage import Filter
from pipeline.text.licenses import AND, PERMISSIVE

# Extension (lower case, no dot) -> language. The whitelist is this table's keys: code and
# the text formats that travel with code.
LANGUAGES: dict[str, str] = {
    "asm": "Assembly", "s": "Assembly",
    "bat": "Batchfile", "cmd": "Batchfile",
    "c": "C", "h": "C",
    "cs": "C#",
    "cpp": "C++", "cc": "C++", "cxx": "C++", "c++": "C++", "hpp": "C++", "hh": "C++", "hxx": "C++", "h++": "C++",
    "cmake": "CMake",
    "css": "CSS", "scss": "SCSS", "less": "Less",
    "dart": "Dart",
    "dockerfile": "Dockerfile",
    "ex": "Elixir", "exs": "Elixir",
    "erl": "Erlang",
    "f": "Fortran", "f77": "Fortran", "f90": "Fortran", "f95": "Fortran", "f03": "Fortran", "f08": "Fortran",
    "for": "Fortran", "fpp": "Fortran",
    "go": "Go",
    "groovy": "Groovy", "gradle": "Groovy",
    "hs": "Haskell",
    "html": "HTML", "htm": "HTML",
    "java": "Java",
    "js": "JavaScript", "jsx": "JavaScript", "mjs": "JavaScript",
    "jl": "Julia",
    "kt": "Kotlin", "kts": "Kotlin",
    "lisp": "Lisp", "el": "Emacs Lisp", "clj": "Clojure", "scm": "Scheme",
    "lua": "Lua",
    "makefile": "Makefile", "mk": "Makefile",
    "md": "Markdown", "markdown": "Markdown", "rst": "reStructuredText",
    "m": "Objective-C", "mm": "Objective-C",
    "ml": "OCaml", "mli": "OCaml",
    "php": "PHP", "php3": "PHP", "php4": "PHP", "php5": "PHP", "phps": "PHP", "phpt": "PHP",
    "pl": "Perl", "pm": "Perl", "pod": "Perl", "perl": "Perl",
    "ps1": "PowerShell", "psm1": "PowerShell", "psd1": "PowerShell",
    "py": "Python", "pyi": "Python",
    "r": "R",
    "rb": "Ruby",
    "rs": "Rust",
    "scala": "Scala",
    "sh": "Shell", "bash": "Shell", "zsh": "Shell", "command": "Shell",
    "smali": "Smali",
    "sql": "SQL",
    "swift": "Swift",
    "tex": "TeX",
    "ts": "TypeScript", "tsx": "TypeScript",
    "vb": "Visual Basic",
    "vue": "Vue",
    "xml": "XML",
    "yaml": "YAML", "yml": "YAML", "toml": "TOML",
}
# Files known by their whole name rather than an extension.
NAMED_FILES = {"makefile": "makefile", "dockerfile": "dockerfile", "cmakelists.txt": "cmake"}


def extension_of(path: str) -> str:
    """The whitelist key of a path: its lower-cased extension, or its name for Makefile & co."""
    name = path.rsplit("/", 1)[-1].lower()
    if name in NAMED_FILES:
        return NAMED_FILES[name]
    return name.rsplit(".", 1)[1] if "." in name.lstrip(".") else ""


def language_of(path: str) -> str:
    return LANGUAGES.get(extension_of(path), "")


class LicenseFilter(Filter):
    """Keeps files of repositories under an allowed licence (`license` metadata, SPDX ids)."""

    name = "license"

    def __init__(self, allowed: tuple[str, ...] = PERMISSIVE) -> None:
        self.allowed = frozenset(allowed)

    def keep(self, doc: Document) -> bool | str:
        """Kept when every licence that applies is allowed ("MIT AND Apache-2.0"); else dropped
        as `license_<the first that is not>`."""
        license_id = doc.meta.get("license") or "unknown"
        blocking = [x for x in license_id.split(AND) if x not in self.allowed]
        return not blocking or f"license_{blocking[0]}"


class ExtensionFilter(Filter):
    """Keeps files whose extension (or name, for Makefile and Dockerfile) is whitelisted."""

    name = "extension"

    def keep(self, doc: Document) -> bool | str:
        return extension_of(doc.meta.get("path") or doc.id) in LANGUAGES or "extension_not_whitelisted"


NOT_ALNUM = re.compile(r"[\W_]+")


def line_stats(text: str) -> tuple[int, float, float]:
    """(longest line, mean line length, fraction of alphanumeric characters), as RedPajama
    measures them: the mean is `len(text) / len(lines)`, so each line's break counts in it
    (a file of 100 lines of 99 characters has a mean of 100, not 99)."""
    lengths = [len(line) for line in text.splitlines()] or [0]
    alnum = len(NOT_ALNUM.sub("", text))  # a C loop; a Python loop over characters is 10x slower
    return max(lengths), len(text) / len(lengths), alnum / max(1, len(text))


class CodeQuality(Filter):
    name = "code_quality"

    def __init__(self, max_line_length: int = 1000, max_mean_line_length: float = 100.0,
                 min_alnum_fraction: float = 0.25) -> None:
        self.max_line_length = max_line_length
        self.max_mean_line_length = max_mean_line_length
        self.min_alnum_fraction = min_alnum_fraction

    def keep(self, doc: Document) -> bool | str:
        if not doc.text.strip():
            return "empty"
        longest, mean, alnum = line_stats(doc.text)
        if longest > self.max_line_length:
            return f"max_line_length_over_{self.max_line_length}"
        if mean > self.max_mean_line_length:
            return f"mean_line_length_over_{self.max_mean_line_length:g}"
        if alnum < self.min_alnum_fraction:
            return f"alnum_fraction_below_{self.min_alnum_fraction:g}"
        return True
