"""Books on the real Gutenberg files (../shared/realdata/books, provenance in its
PROVENANCE.md): seven works in twelve files, CRLF and old header variants among them. Every
work survives exactly once, with no Gutenberg marker, licence line or "\\r" left.

The oracle is the provenance table (which file holds which work) and plain marker regexes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.commands.run import run_source
from pipeline.engine.shards import read_corpus
from sources.books import Books

REAL = Path(__file__).resolve().parents[2] / "../shared/realdata/books"
WORKS = {
    "alice": ["alice-11-0", "alice-11-0-pg2016"],
    "looking-glass": ["looking-glass-12-0"],
    "devils-dictionary": ["devils-dictionary-972", "devils-dictionary-old-dvldc10"],
    "news-from-nowhere": ["news-from-nowhere-3261", "news-from-nowhere-old-nwsnw10"],
    "complete-angler": ["complete-angler-9198", "complete-angler-9198-8", "complete-angler-old-7tcng10"],
    "ontboezemingen": ["ontboezemingen-24675-8"],
    "pride-prejudice": ["pride-prejudice-pg1342"],
}
MARKERS = re.compile(
    r"\*\*\*\s*(?:START|END)|\*END\*?\s*THE SMALL PRINT|SMALL PRINT!|START: FULL LICENSE"
    r"|Project Gutenberg(?:-tm|™)|Project Gutenberg License|Literary Archive Foundation|gutenberg\.org"
    r"|^\s*End of (?:the )?Project Gutenberg|^\s*Produced by",
    re.IGNORECASE | re.MULTILINE,
)


@pytest.mark.slow
def test_real_gutenberg_every_work_once_without_markers(tmp_path: Path) -> None:
    if not REAL.is_dir():
        pytest.skip(f"{REAL} not found: the real Gutenberg files live outside the repository (../shared)")
    report = run_source(Books(), str(REAL), str(tmp_path / "out"), workers=1, show_progress=False)
    docs = {d.id.removeprefix("gutenberg/"): d.text for d in read_corpus(tmp_path / "out" / "books")}
    assert sorted(f.stem for f in (REAL / "gutenberg").glob("*.txt")) == sorted(n for ns in WORKS.values() for n in ns)
    for work, files in WORKS.items():
        assert len(set(docs) & set(files)) == 1, work
    assert len(docs) == len(WORKS)
    assert report.stats["stages"][-1]["dropped"] == {"near_duplicate": 5}
    for name, text in docs.items():
        assert "\r" not in text, name
        assert MARKERS.findall(text) == [], name
        # The body is there: most of the raw file survives (headers and licences are short).
        raw = (REAL / "gutenberg" / f"{name}.txt").read_bytes()
        assert len(text) > 0.85 * len(raw.replace(b"\r\n", b"\n").decode("utf-8", "replace")), name
