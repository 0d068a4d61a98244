"""Books: Gutenberg boilerplate removed, near-duplicates removed (one copy kept), ids unique."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pipeline.commands.run import run_source
from pipeline.engine.shards import read_corpus
from sources.books import Books, BooksConfig
from sources.samples.books import book_text, change_words, gutenberg_file, share_paragraphs, write, zipped


def run(raw: Path, out: Path) -> tuple[dict, list]:
    report = run_source(Books(BooksConfig()), str(raw), str(out), workers=2, show_progress=False)
    return report.stats, list(read_corpus(out / "books"))


def gutenberg_folder(tmp_path: Path) -> Path:
    """A new, empty raw/gutenberg under `tmp_path`; `run(tmp_path / "raw", ...)` reads it."""
    raw = tmp_path / "raw" / "gutenberg"
    raw.mkdir(parents=True)
    return raw


@pytest.mark.slow
def test_near_duplicates_removed_half_overlap_kept_boilerplate_gone(tmp_path: Path) -> None:
    rng = random.Random(7)
    a = book_text(rng, 8000)
    raw = tmp_path / "raw"
    (raw / "gutenberg").mkdir(parents=True)
    (raw / "books3").mkdir()
    files = {"pg1.txt": a, "pg2.txt": change_words(a, 0.05, rng), "pg3.txt": share_paragraphs(a, 0.5, rng),
             "pg4.txt": book_text(rng, 8000)}
    for i, (name, body) in enumerate(files.items()):
        (raw / "gutenberg" / name).write_text(gutenberg_file(f"Book {i}", "An Author", i, body))
    # The same file name in books3: ids must still differ.
    (raw / "books3" / "pg1.jsonl").write_text(json.dumps({"text": book_text(rng, 8000), "meta": {"title": "B3"}}) + "\n")
    stats, docs = run(raw, tmp_path / "out")
    by_id = {d.id: d for d in docs}
    # pg2 is pg1 with 5% of words changed: one of them goes. pg1 is kept: it has more words
    # (changed words are single generated words, but ties and order are by words then id).
    assert stats["stages"][-1]["dropped"] == {"near_duplicate": 1}
    assert len(set(by_id) & {"gutenberg/pg1", "gutenberg/pg2"}) == 1
    assert {"gutenberg/pg3", "gutenberg/pg4", "books3/pg1:0"} <= set(by_id)
    for doc in docs:
        assert "PROJECT GUTENBERG" not in doc.text and "LICENSE" not in doc.text and "Produced by" not in doc.text
    assert by_id["gutenberg/pg4"].text == files["pg4.txt"]
    assert by_id["gutenberg/pg4"].meta == {"title": "Book 3", "subcorpus": "gutenberg"}
    assert by_id["books3/pg1:0"].meta == {"title": "B3", "subcorpus": "books3"}


@pytest.mark.slow
def test_survivor_is_deterministic_across_worker_splits(tmp_path: Path) -> None:
    rng = random.Random(3)
    a = book_text(rng, 5000)
    raw = gutenberg_folder(tmp_path)
    for i in range(4):  # four copies with small edits: exactly one survives, always the same
        (raw / f"pg{i}.txt").write_text(change_words(a, 0.02, rng) if i else a)
    survivors = []
    for tasks in (1, 3):
        out = tmp_path / f"out{tasks}"
        run_source(Books(), str(tmp_path / "raw"), str(out), workers=2, tasks=tasks, show_progress=False)
        survivors.append([d.id for d in read_corpus(out / "books")])
    assert survivors[0] == survivors[1] and len(survivors[0]) == 1


@pytest.mark.slow
def test_sample_keeps_one_copy_and_counts_bad_files(tmp_path: Path) -> None:
    write(tmp_path / "raw", seed=0)
    stats, docs = run(tmp_path / "raw", tmp_path / "out")
    ids = [d.id for d in docs]
    assert len(ids) == len(set(ids))
    alder = [d for d in docs if d.meta["title"].startswith("The Alder Valley")]
    assert len(alder) == 1  # the original, the 5% edit and the books3 copy: one survives
    assert {d.meta["title"] for d in docs} >= {"Half of the Valley", "The Stone Tower", "The Harbour", "The Orchard",
                                               "The Museum"}
    assert stats["stages"][0]["dropped"] == {"empty_file": 1, "malformed_json": 1, "unsafe_member_path": 1}
    assert [Path(f["path"]).name for f in stats["files"]["failed"]] == ["pg1007.zip"]
    assert stats["stages"][-1]["dropped"] == {"near_duplicate": 2}
    assert not list(tmp_path.rglob("outside.txt"))


@pytest.mark.slow
def test_zip_members_get_their_own_ids(tmp_path: Path) -> None:
    raw = gutenberg_folder(tmp_path)
    rng = random.Random(1)
    (raw / "set.zip").write_bytes(zipped({"a.txt": book_text(rng, 500).encode(), "B.TXT": book_text(rng, 500).encode(),
                                          "readme.md": b"not a book", "cover.jpg": b"\xff\xd8\xff"}))
    stats, docs = run(tmp_path / "raw", tmp_path / "out")
    # Gutenberg's own zips name some texts PG30.TXT; what is no text is counted, never lost unseen.
    assert sorted(d.id for d in docs) == ["gutenberg/set.zip:B", "gutenberg/set.zip:a"]
    assert stats["stages"][0]["dropped"] == {"zip_member_not_text": 2}


def test_an_error_page_saved_as_a_book_is_skipped_never_kept(tmp_path: Path) -> None:
    raw = gutenberg_folder(tmp_path)
    rng = random.Random(2)
    sorry = "The requested book was not found on this mirror. " * 80  # long enough to pass as a book
    (raw / "pg1.txt").write_text(f"\ufeff  <!DOCTYPE html><html><body>{sorry}</body></html>")
    (raw / "pg2.txt").write_text('{"error": "rate limited", "detail": "' + sorry + '"}')
    (raw / "set.zip").write_bytes(zipped({"pg3.txt": f"<html><body>{sorry}</body></html>".encode(),
                                          "pg4.txt": book_text(rng, 500).encode()}))
    (raw / "pg5.txt").write_text(book_text(rng, 500))
    stats, docs = run(tmp_path / "raw", tmp_path / "out")
    assert sorted(d.id for d in docs) == ["gutenberg/pg5", "gutenberg/set.zip:pg4"]
    assert stats["stages"][0]["dropped"] == {"markup_file": 3}


@pytest.mark.slow
def test_survivor_is_chosen_by_its_length_after_stripping(tmp_path: Path) -> None:
    rng = random.Random(9)
    body = book_text(rng, 4000)
    raw = gutenberg_folder(tmp_path)
    # The old edition: a long "Small Print" licence (closed without an asterisk after END, in
    # CRLF) makes the file larger; the new one has one more paragraph of the book itself.
    licence = "\n".join(book_text(rng, 40) for _ in range(60))
    old = ("***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***\n" + licence
           + "\n*END THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.12.12.00*END*\n\n" + body)
    (raw / "a-old.txt").write_bytes(old.replace("\n", "\r\n").encode())
    (raw / "b-new.txt").write_text(gutenberg_file("Book", "Author", 1, body + "\n\n" + book_text(rng, 60)))
    assert (raw / "a-old.txt").stat().st_size > (raw / "b-new.txt").stat().st_size
    _, docs = run(tmp_path / "raw", tmp_path / "out")
    assert [d.id for d in docs] == ["gutenberg/b-new"]
    assert "SMALL PRINT" not in docs[0].text and "\r" not in docs[0].text
