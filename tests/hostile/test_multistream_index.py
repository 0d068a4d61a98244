"""Multistream indexes that do not fit their dump, through `pipeline run wikipedia` as a user runs
it: cut, empty, unreadable, garbage lines, digits of another script, offsets out of range, going
down or a few bytes off a stream's start. Each costs its dump only its split into tasks: the dump
is read whole, every page of it is kept (the same shards, byte for byte, as with its good index),
one warning line names the index, `bad_index` is counted once, the run exits 0, and another wiki
of the same run is split and read as before. Pages are judged by lxml over the whole dump."""

from __future__ import annotations

import bz2
import json
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from sources.samples.wikipedia import Page
from tests.hostile.helpers import assert_balanced, cli
from tests.sources.wikipedia_dumps import multistream_names, pages_by_lxml, write_multistream

pytestmark = pytest.mark.slow  # each test runs the CLI in subprocesses

EN_DUMP, EN_INDEX = multistream_names("en")
DE_DUMP, DE_INDEX = multistream_names("de")
EN_PAGES = [Page(f"Article {i}", f"'''Article {i}''' is about the number {i}. " * (20 + i % 7), i)
            for i in range(1, 23)]
DE_PAGES = [Page(f"Artikel {i}", f"'''Artikel {i}''' handelt von der Zahl {i}. " * (15 + i % 5), i)
            for i in range(1, 14)]
# Small enough that a good index splits each dump into several ranges, each an input.
SPLIT = "[wikipedia]\ntask_bytes = 700\n"


def index_text(offsets: list[int]) -> bytes:
    """One `offset:page_id:title` line per page stream (page ids and titles are not what is tested)."""
    return "".join(f"{offset}:{n + 1}:Article {n + 1}\n" for n, offset in enumerate(offsets)).encode()


def lines(offsets: list[int]) -> list[bytes]:
    return index_text(offsets).splitlines(keepends=True)


# (case, the index's bytes from the dump's page-stream offsets and its size, a word of the warning)
BAD_INDEXES: list[tuple[str, Callable[[list[int], int], bytes], str]] = [
    ("cut bz2 file", lambda o, size: bz2.compress(index_text(o))[:-25], "unreadable"),
    ("cut last line", lambda o, size: bz2.compress(index_text(o)[:-5]), "cut"),
    ("empty file", lambda o, size: b"", "empty"),
    ("empty bz2 file", lambda o, size: bz2.compress(b""), "empty"),
    ("not bz2", lambda o, size: index_text(o), "unreadable"),
    ("offsets past the dump's end", lambda o, size: bz2.compress(index_text([x + size for x in o])), "do not fit"),
    ("offsets going down", lambda o, size: bz2.compress(index_text(o[::-1])), "go down"),
    ("offsets 3 bytes late", lambda o, size: bz2.compress(index_text([x + 3 for x in o])), "not the start"),
    ("offsets 2 bytes early", lambda o, size: bz2.compress(index_text([x - 2 for x in o])), "not the start"),
    ("one offset a byte late", lambda o, size: bz2.compress(index_text([*o[:4], o[4] + 1, *o[5:]])), "not the start"),
    ("garbage lines", lambda o, size: bz2.compress(b"".join(lines(o)[:3] + [b"<html>oops</html>\n", b"\x00\xff\xfe\n"]
                                                            + lines(o)[3:])), "line 4"),
    ("Arabic-Indic digits", lambda o, size: bz2.compress(
        b"".join(lines(o)[:2] + [str(o[2]).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")).encode()
                                 + b":7:Article 7\n"] + lines(o)[3:])), "line 3"),
    ("fullwidth digits", lambda o, size: bz2.compress(
        "\uff11\uff12:1:Article 1\n".encode() + index_text(o)), "line 1"),
    ("an index of a longer dump", lambda o, size: bz2.compress(index_text(o + [size + 100, size + 900])),
     "do not fit"),
]


def write_raw(root: Path, index: Callable[[list[int], int], bytes] | None) -> Path:
    """enwiki and dewiki multistream dumps with their indexes; enwiki's replaced by `index`'s bytes."""
    raw = root / "raw"
    dump, offsets = write_multistream(raw, EN_PAGES, lang="en")
    write_multistream(raw, DE_PAGES, lang="de")
    if index is not None:
        (raw / EN_INDEX).write_bytes(index(offsets, dump.stat().st_size))
    (root / "split.toml").write_text(SPLIT)
    return raw


def run_wikipedia(root: Path, raw: Path, name: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = root / name
    done = cli("wikipedia", raw, out, "--config", str(root / "split.toml"))
    assert done.returncode == 0, done.stderr
    return done, out / "wikipedia"


def shards(folder: Path) -> dict[str, bytes]:
    manifest = json.loads((folder / "manifest.json").read_text())
    return {shard["file"]: (folder / shard["file"]).read_bytes() for shard in manifest["shards"]}


def plan_inputs(folder: Path) -> list[str]:
    return [Path(p).name for p in json.loads((folder / "_work" / "plan.json").read_text())["inputs"]]


def kept_ids(folder: Path) -> list[str]:
    from pipeline.engine.shards import read_corpus

    return [doc.id for doc in read_corpus(folder)]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both indexes good: each dump split into ranges."""
    root = tmp_path_factory.mktemp("good")
    raw = write_raw(root, None)
    done, folder = run_wikipedia(root, raw, "out")
    assert EN_INDEX not in done.stderr
    inputs = plan_inputs(folder)
    assert sum(i.startswith(f"{EN_DUMP}#streams=") for i in inputs) > 3
    assert sum(i.startswith(f"{DE_DUMP}#streams=") for i in inputs) >= 2
    return folder


@pytest.mark.parametrize("index, word", [case[1:] for case in BAD_INDEXES], ids=[case[0] for case in BAD_INDEXES])
def test_a_bad_index_costs_its_dump_its_split_and_nothing_else(
    tmp_path: Path, good_run: Path, index: Callable[[list[int], int], bytes], word: str
) -> None:
    raw = write_raw(tmp_path, index)
    done, folder = run_wikipedia(tmp_path, raw, "out")
    # One warning line, naming the index and its problem.
    about_index = [line for line in done.stderr.splitlines() if EN_INDEX in line]
    assert len(about_index) == 1, done.stderr
    assert about_index[0].startswith(f"warning: {raw / EN_INDEX}: not used (") and word in about_index[0]
    assert about_index[0].endswith(f"{EN_DUMP} is read whole, as one task")
    # The dump is one input, read whole; the other wiki is split as with a good index.
    inputs = plan_inputs(folder)
    assert [i for i in inputs if i.startswith(EN_DUMP)] == [EN_DUMP]
    assert [i for i in inputs if i.startswith(DE_DUMP)] == [i for i in plan_inputs(good_run) if i.startswith(DE_DUMP)]
    # Every page kept: the same shards, byte for byte, as with the good index; the pages lxml reads.
    assert shards(folder) == shards(good_run)
    ids = kept_ids(folder)
    for wiki, dump in (("enwiki", EN_DUMP), ("dewiki", DE_DUMP)):
        assert [i for i in ids if i.startswith(f"{wiki}/")] == [f"{wiki}/{n}" for n, _ in pages_by_lxml(raw / dump)]
    # Counted once in stats.json, beside what the good run counted.
    stats = json.loads((folder / "stats.json").read_text())
    good = json.loads((good_run / "stats.json").read_text())
    assert_balanced(stats)
    assert stats["stages"][0]["dropped"] == {**good["stages"][0]["dropped"], "bad_index": 1}
    assert stats["files"]["failed"] == [] and stats["documents_kept"] == good["documents_kept"] == 35


def test_an_index_listing_pages_the_dump_does_not_have_loses_none(tmp_path: Path, good_run: Path) -> None:
    """Lines for pages that are not in the dump, at offsets where its streams start: the dump is
    still split at those offsets, and no page is lost or read twice."""
    def with_ghosts(offsets: list[int], size: int) -> bytes:
        ghosts = [f"{offset}:{900 + n}:Ghost {n}\n".encode() for n, offset in enumerate(offsets)]
        return bz2.compress(b"".join(sorted(lines(offsets) + ghosts, key=lambda line: int(line.split(b":")[0]))))

    raw = write_raw(tmp_path, with_ghosts)
    done, folder = run_wikipedia(tmp_path, raw, "out")
    assert EN_INDEX not in done.stderr
    assert plan_inputs(folder) == plan_inputs(good_run)
    assert shards(folder) == shards(good_run)


def test_a_cut_dump_with_its_whole_index_keeps_every_page_before_the_cut(tmp_path: Path) -> None:
    """The index lists streams past the end of a dump cut short (a download that stopped): the
    dump is read whole, and keeps what reading it with no index keeps: its pages up to the cut."""
    raw = tmp_path / "raw"
    long_pages = [Page(f"Article {i}", f"Words of article {i} here. " * 300, i) for i in range(1, 41)]
    dump, _ = write_multistream(raw, long_pages, lang="en")
    write_multistream(raw, DE_PAGES, lang="de")
    (tmp_path / "split.toml").write_text(SPLIT)
    data = dump.read_bytes()
    dump.write_bytes(data[: len(data) * 2 // 3])
    done, folder = run_wikipedia(tmp_path, raw, "with-index")
    about_index = [line for line in done.stderr.splitlines() if EN_INDEX in line]
    assert len(about_index) == 1 and "do not fit" in about_index[0], done.stderr
    (raw / EN_INDEX).unlink()
    _, without = run_wikipedia(tmp_path, raw, "without-index")
    assert shards(folder) == shards(without)
    # The pages of the streams that are whole, by bz2 alone: those kept are the first of them.
    header = bz2.BZ2Decompressor()
    header.decompress(data[: len(data) * 2 // 3])
    whole = b"".join(bz2.decompress(stream) for stream in _whole_streams(header.unused_data)).count(b"</page>")
    kept = [i for i in kept_ids(folder) if i.startswith("enwiki/")]
    assert 10 <= len(kept) <= whole < 40 and kept == [f"enwiki/{n}" for n in range(1, len(kept) + 1)]
    stats = json.loads((folder / "stats.json").read_text())
    assert stats["stages"][0]["dropped"] == {"bad_index": 1, "truncated_stream": 1}


def _whole_streams(data: bytes) -> list[bytes]:
    """The whole bz2 streams at the start of `data`, up to the first cut one."""
    streams = []
    while data:
        stream = bz2.BZ2Decompressor()
        stream.decompress(data)
        if not stream.eof:
            break
        streams.append(data[: len(data) - len(stream.unused_data)])
        data = stream.unused_data
    return streams
