"""arXiv's source files: the paper id a file name carries, as arXiv's bulk source files spell it."""

from __future__ import annotations

import re

OLD_STYLE_ID = re.compile(r"^([a-z-]+(?:\.[A-Z]{2})?)(\d{7}(?:v\d+)?)$")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".gz", ".tex")


def arxiv_id(path: str) -> str:
    """`2101.00001v2.tar.gz` -> 2101.00001v2; `hep-th9901001.gz` -> hep-th/9901001."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    for suffix in ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    old = OLD_STYLE_ID.match(name)
    return f"{old.group(1)}/{old.group(2)}" if old else name
