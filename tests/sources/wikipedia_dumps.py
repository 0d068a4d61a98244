"""The raw folder most Wikipedia tests start from: one English dump, as `pipeline run wikipedia` finds it;
and where the real Wikipedia dumps are."""

from __future__ import annotations

from pathlib import Path

from sources.samples.wikipedia import Page, write_dump

REPO = Path(__file__).resolve().parents[2]
# ../shared/realdata/wikipedia beside the project's checkout; a git worktree of it sits a level or
# two further down (/work/wt/<name>), so the nearest folder above the repository that has it.
REAL_WIKIPEDIA = next((folder / "shared" / "realdata" / "wikipedia" for folder in REPO.parents
                       if (folder / "shared" / "realdata" / "wikipedia").is_dir()),
                      REPO.parent / "shared" / "realdata" / "wikipedia")


def raw_enwiki(root: Path, pages: list[Page]) -> Path:
    """A new folder `root`/raw holding `pages` as enwiki's 20220701 pages-articles dump (one bz2 stream)."""
    raw = root / "raw"
    raw.mkdir()
    write_dump(raw / "enwiki-20220701-pages-articles.xml.bz2", "en", pages)
    return raw
