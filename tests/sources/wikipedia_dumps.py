"""The raw folder most Wikipedia tests start from: one English dump, as `pipeline run wikipedia` finds it."""

from __future__ import annotations

from pathlib import Path

from sources.samples.wikipedia import Page, write_dump


def raw_enwiki(root: Path, pages: list[Page]) -> Path:
    """A new folder `root`/raw holding `pages` as enwiki's 20220701 pages-articles dump (one bz2 stream)."""
    raw = root / "raw"
    raw.mkdir()
    write_dump(raw / "enwiki-20220701-pages-articles.xml.bz2", "en", pages)
    return raw
