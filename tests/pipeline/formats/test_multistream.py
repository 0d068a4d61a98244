"""Wikipedia multistream dumps split into byte ranges of whole bz2 streams: every page read
exactly once, in order, whatever the split; `pipeline run wikipedia` uses many tasks on one
dump and writes the same shards with one worker or two."""

from __future__ import annotations

import bz2
import json
import re
from pathlib import Path

import pytest
from lxml import etree

from pipeline.cli import main
from pipeline.formats.mediawiki import DumpError, iter_pages
from pipeline.formats.multistream import BadIndex, byte_ranges, index_of, open_dump, split_dump
from sources.samples.wikipedia import FOOTER, HEADER, Page, page_xml
from sources.wikipedia import Wikipedia, WikipediaConfig
from tests.sources.wikipedia_dumps import REAL_WIKIPEDIA, multistream_names, pages_by_lxml, write_multistream

DUMP, INDEX = multistream_names("en")


PAGES = [Page(f"Article {i}", f"'''Article {i}''' is about the number {i}. " * (20 + i % 7), i) for i in range(1, 23)]


def test_index_names_follow_wikimedias() -> None:
    assert index_of(DUMP) == INDEX
    assert (index_of("enwiki-20220701-pages-articles-multistream3.xml-p151574p311329.bz2")
            == "enwiki-20220701-pages-articles-multistream-index3.txt-p151574p311329.bz2")
    assert index_of("enwiki-20220701-pages-articles.xml.bz2") is None


def test_ranges_cut_only_at_stream_starts_and_cover_the_file() -> None:
    assert byte_ranges([100, 200, 300, 400], 500, 150) == [(0, 200), (200, 400), (400, 500)]
    assert byte_ranges([100, 200, 300, 400], 500, 1) == [(0, 200), (200, 300), (300, 400), (400, 500)]
    assert byte_ranges([100, 200], 300, 10_000) == [(0, 300)]


@pytest.mark.parametrize("target", [1, 400, 900, 10**9])
def test_every_page_is_read_once_in_order_whatever_the_split(tmp_path: Path, target: int) -> None:
    dump, offsets = write_multistream(tmp_path, PAGES)
    parts = split_dump(str(dump), target)
    assert len(parts) == len(byte_ranges(offsets, dump.stat().st_size, target))
    read = []
    for part in parts:
        with open_dump(part) as stream:
            read.extend((p.page_id, p.title) for p in iter_pages(stream))
    assert read == pages_by_lxml(dump) and len(read) == len(PAGES)
    if target == 1:
        assert len(parts) == len(offsets)  # one range per stream of pages


def test_a_dump_without_its_index_stays_whole(tmp_path: Path) -> None:
    dump, _ = write_multistream(tmp_path, PAGES)
    (tmp_path / INDEX).unlink()
    assert split_dump(str(dump), 1) == [str(dump)]


def _index_text(offsets: list[int]) -> bytes:
    """An index of one line per page stream, as Wikimedia writes it (page ids do not matter)."""
    return "".join(f"{offset}:{n + 1}:Article {n + 1}\n" for n, offset in enumerate(offsets)).encode()


def _index_lines(offsets: list[int]) -> list[bytes]:
    return _index_text(offsets).splitlines(keepends=True)


# (what is wrong, the index's bytes from the dump's true offsets and size, the problem reported)
BAD_INDEXES = [
    ("cut bz2", lambda o, size: bz2.compress(_index_text(o))[:-20], "unreadable (EOFError: Compressed file ended"),
    ("cut last line", lambda o, size: bz2.compress(_index_text(o)[:-4]), "cut: line 8 ends without a newline"),
    ("cut inside an offset", lambda o, size: bz2.compress(_index_text(o) + b"12"), "cut: line 9 ends without"),
    ("empty file", lambda o, size: b"", "empty: 0 bytes"),
    ("empty bz2", lambda o, size: bz2.compress(b""), "empty: no OFFSET:PAGE_ID:TITLE line"),
    ("not bz2", lambda o, size: _index_text(o), "unreadable (OSError: Invalid data stream)"),
    ("garbage line",
     lambda o, size: bz2.compress(b"".join(_index_lines(o)[:2] + [b"\x00\xffgarbage\n"] + _index_lines(o)[2:])),
     "line 3: not OFFSET:PAGE_ID:TITLE"),
    ("blank line", lambda o, size: bz2.compress(b"\n" + _index_text(o)), "line 1: not OFFSET:PAGE_ID:TITLE"),
    ("Arabic-Indic digits", lambda o, size: bz2.compress("\u0663\u0664:1:A\n".encode() + _index_text(o)),
     "line 1: not OFFSET:PAGE_ID:TITLE"),
    ("fullwidth digits", lambda o, size: bz2.compress(_index_text(o) + "\uff19\uff19:9:Z\n".encode()),
     "line 9: not OFFSET:PAGE_ID:TITLE"),
    ("an offset of 5,000 digits", lambda o, size: bz2.compress(_index_text(o) + b"9" * 5000 + b":1:A\n"),
     "line 9: not OFFSET:PAGE_ID:TITLE"),
    ("a line without its page id", lambda o, size: bz2.compress(_index_text(o) + b"99999\n"),
     "line 9: not OFFSET:PAGE_ID:TITLE"),
    ("offsets going down", lambda o, size: bz2.compress(_index_text(o[::-1])), "offsets go down"),
    ("offsets past the end", lambda o, size: bz2.compress(_index_text([x + size for x in o])),
     "do not fit inside the dump"),
    ("an offset at 0", lambda o, size: bz2.compress(_index_text([0, *o])), "do not fit inside the dump"),
    ("offsets 3 bytes late", lambda o, size: bz2.compress(_index_text([x + 3 for x in o])),
     "is not the start of a bz2 stream in the dump"),
    ("offsets 2 bytes early", lambda o, size: bz2.compress(_index_text([x - 2 for x in o])),
     "is not the start of a bz2 stream in the dump"),
]


@pytest.mark.parametrize("make_index, problem", [case[1:] for case in BAD_INDEXES], ids=[c[0] for c in BAD_INDEXES])
def test_an_index_that_does_not_fit_its_dump_is_refused_with_its_problem(tmp_path: Path, make_index, problem) -> None:
    dump, offsets = write_multistream(tmp_path, PAGES)
    assert len(offsets) == 8  # 22 pages, 3 a stream
    (tmp_path / INDEX).write_bytes(make_index(offsets, dump.stat().st_size))
    with pytest.raises(BadIndex) as refused:
        split_dump(str(dump), 1)
    assert refused.value.index == str(tmp_path / INDEX)
    assert refused.value.problem.startswith(problem) or problem in refused.value.problem, refused.value.problem


def test_an_index_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    dump, _ = write_multistream(tmp_path, PAGES)
    (tmp_path / INDEX).unlink()
    (tmp_path / INDEX).mkdir()
    with pytest.raises(BadIndex, match="unreadable"):
        split_dump(str(dump), 1)


def test_every_offset_is_checked_when_the_plan_keeps_the_dump_whole(tmp_path: Path) -> None:
    """One range for the whole dump uses no offset, but an index that does not fit is still named."""
    dump, offsets = write_multistream(tmp_path, PAGES)
    (tmp_path / INDEX).write_bytes(bz2.compress(_index_text([x + 1 for x in offsets])))
    with pytest.raises(BadIndex, match=f"offset {offsets[0] + 1:,} is not the start"):
        split_dump(str(dump), 10**9)


def test_a_stream_start_that_cuts_a_page_in_two_is_refused(tmp_path: Path) -> None:
    """Whole bz2 streams, but cut inside a page (as a parallel compressor writes them): a range
    starting there would lose the page cut in two."""
    xml = dump_xml_bytes(PAGES)
    cuts = [xml.index(b"<page>"), xml.index(b"<title>Article 5<"), xml.index(b"<title>Article 12<")]
    data, starts = b"", []
    for start, end in zip([0, *cuts], [*cuts, len(xml)]):
        starts.append(len(data))
        data += bz2.compress(xml[start:end])
    (tmp_path / DUMP).write_bytes(data)
    (tmp_path / INDEX).write_bytes(bz2.compress(_index_text(starts[1:])))
    with pytest.raises(BadIndex, match=f"offset {starts[2]:,} is not the start of a bz2 stream of whole pages"):
        split_dump(str(tmp_path / DUMP), 1)


def test_an_index_naming_pages_the_dump_does_not_have_loses_none(tmp_path: Path) -> None:
    """Lines for pages that are not in the dump, at offsets where its streams do start: only the
    offsets cut the dump, and every range still starts at a stream of whole pages."""
    dump, offsets = write_multistream(tmp_path, PAGES)
    ghosts = "".join(f"{offset}:{900 + n}:Ghost {n}\n" for n, offset in enumerate(offsets)).encode()
    lines = sorted((_index_text(offsets) + ghosts).splitlines(keepends=True), key=lambda line: int(line.split(b":")[0]))
    (tmp_path / INDEX).write_bytes(bz2.compress(b"".join(lines)))
    read = []
    for part in split_dump(str(dump), 1):
        with open_dump(part) as stream:
            read.extend((p.page_id, p.title) for p in iter_pages(stream))
    assert read == pages_by_lxml(dump)


def test_a_first_stream_holding_pages_too_gives_them_once(tmp_path: Path) -> None:
    """Wikimedia's first stream holds only the header; one that also holds pages must not give
    them again at the head of every range."""
    xml = dump_xml_bytes(PAGES)
    cuts = [xml.rindex(b"  <page>", 0, xml.index(b"<title>Article 4<")),
            xml.rindex(b"  <page>", 0, xml.index(b"<title>Article 9<"))]
    data, starts = b"", []
    for start, end in zip([0, *cuts], [*cuts, len(xml)]):
        starts.append(len(data))
        data += bz2.compress(xml[start:end])
    (tmp_path / DUMP).write_bytes(data)
    (tmp_path / INDEX).write_bytes(bz2.compress(_index_text(starts[1:])))
    parts = split_dump(str(tmp_path / DUMP), 1)
    assert len(parts) == 2
    read = []
    for part in parts:
        with open_dump(part) as stream:
            read.extend(p.page_id for p in iter_pages(stream))
    assert read == [page_id for page_id, _ in pages_by_lxml(tmp_path / DUMP)] == list(range(1, 23))


def dump_xml_bytes(pages: list[Page]) -> bytes:
    return (HEADER.format(lang="en") + "".join(page_xml(p) for p in pages) + FOOTER).encode()


def _run(raw: Path, out: Path, config: Path, *extra: str) -> dict:
    main(["run", "wikipedia", "--input", str(raw), "--corpus", str(out), "--config", str(config), "--no-progress",
          *extra])
    return json.loads((out / "wikipedia" / "manifest.json").read_text())


@pytest.mark.slow
def test_pipeline_run_splits_one_dump_into_tasks_with_the_same_shards_for_one_or_two_workers(tmp_path: Path) -> None:
    write_multistream(tmp_path / "raw", PAGES)
    config = tmp_path / "split.toml"
    config.write_text("[wikipedia]\ntask_bytes = 700\n")
    two = _run(tmp_path / "raw", tmp_path / "two", config, "--workers", "2", "--tasks", "3")
    plan = json.loads((tmp_path / "two" / "wikipedia" / "_work" / "plan.json").read_text())
    assert plan["tasks"] == 3 and len(plan["inputs"]) > 3
    assert all("#streams=" in i for i in plan["inputs"])
    assert len(two["shards"]) == 3  # each task wrote its own shard
    one = _run(tmp_path / "raw", tmp_path / "one", config, "--workers", "1", "--tasks", "3")
    assert one["shards"] == two["shards"]  # names, document counts and sha256 of every shard
    for shard in one["shards"]:
        a = (tmp_path / "one" / "wikipedia" / shard["file"]).read_bytes()
        assert a == (tmp_path / "two" / "wikipedia" / shard["file"]).read_bytes()
    # The whole dump read as one input (no split) keeps the same documents, in the same order.
    whole = tmp_path / "whole.toml"
    whole.write_text("[wikipedia]\ntask_bytes = 0\n")
    _run(tmp_path / "raw", tmp_path / "whole", whole, "--workers", "1")
    from pipeline.engine.shards import read_corpus

    ids = [d.id for d in read_corpus(tmp_path / "whole" / "wikipedia")]
    assert ids == [f"enwiki/{page_id}" for page_id, _ in pages_by_lxml(tmp_path / "raw" / DUMP)]
    split_ids = {d.id: d.text for d in read_corpus(tmp_path / "two" / "wikipedia")}
    assert split_ids == {d.id: d.text for d in read_corpus(tmp_path / "whole" / "wikipedia")}


def test_the_source_splits_dumps_it_reads_unless_task_bytes_is_0(tmp_path: Path) -> None:
    write_multistream(tmp_path, PAGES)
    parts = Wikipedia(WikipediaConfig(task_bytes=1)).list_inputs(str(tmp_path))
    assert len(parts) > 1 and all(p.startswith(f"{tmp_path / DUMP}#streams=") for p in parts)
    assert Wikipedia(WikipediaConfig(task_bytes=0)).list_inputs(str(tmp_path)) == [str(tmp_path / DUMP)]
    assert Wikipedia(WikipediaConfig(task_bytes=1, languages=["de"])).list_inputs(str(tmp_path)) == []


REAL_DUMP = REAL_WIKIPEDIA / "ukwiki-20230501-pages-articles-multistream-truncated100k.xml.bz2"


@pytest.mark.slow
def test_a_real_dump_recompressed_as_multistream_reads_the_same_in_ranges(tmp_path: Path) -> None:
    """Real Ukrainian Wikipedia XML (cut inside its last page), laid out as Wikimedia does: 100
    pages a stream, with an index. Read in ranges it gives what the whole file gives."""
    if not REAL_DUMP.exists():
        pytest.skip(f"real data not present: {REAL_DUMP}")
    import re

    xml = bz2.decompress(REAL_DUMP.read_bytes())
    starts = [m.start() for m in re.finditer(rb"\n  <page>", xml)]
    cuts = [0] + [s + 1 for s in starts[::100]] + [len(xml)]
    data, index = b"", []
    for start, end in zip(cuts, cuts[1:]):
        if start:
            index.append(f"{len(data)}:0:x\n")
        data += bz2.compress(xml[start:end])
    dump = tmp_path / "ukwiki-20230501-pages-articles-multistream.xml.bz2"
    dump.write_bytes(data)
    (tmp_path / "ukwiki-20230501-pages-articles-multistream-index.txt.bz2").write_bytes(
        bz2.compress("".join(index).encode()))

    def read(task_bytes: int) -> list:
        source = Wikipedia(WikipediaConfig(task_bytes=task_bytes))
        out = []
        for part in source.list_inputs(str(tmp_path)):
            out.extend((d.id, d.text) if hasattr(d, "id") else d.reason for d in source.read(part))
        return out

    whole, ranges = read(0), read(1)
    assert len(Wikipedia(WikipediaConfig(task_bytes=1)).list_inputs(str(tmp_path))) == len(index) == 6
    assert ranges == whole
    # 532 whole pages (the 533rd is cut) and one count for the cut, whatever the reading.
    assert len(whole) == 533 and whole[-1] in ("truncated_stream", "malformed_xml")


def _whole_streams_page_ids(data: bytes) -> list[int]:
    """The ids of the pages in the bz2 streams that end before the cut, read independently: each
    stream decompressed on its own, its ids found by a regular expression."""
    text = b""
    while data:
        stream = bz2.BZ2Decompressor()
        try:
            decoded = stream.decompress(data)
        except OSError:
            break
        if not stream.eof:
            break
        text += decoded
        data = stream.unused_data
    return [int(i) for i in re.findall(rb"<page>\s*<title>[^<]*</title>\s*<ns>0</ns>\s*<id>(\d+)</id>", text)]


def _read_until_cut(path: str) -> list[int | None]:
    read: list[int | None] = []
    with open_dump(path) as stream, pytest.raises(DumpError, match="Compressed file ended"):
        for page in iter_pages(stream):
            read.append(page.page_id)
    return read


@pytest.mark.parametrize("kept_streams", [1, 4, 7])
def test_a_dump_cut_short_keeps_every_page_of_its_whole_streams(tmp_path: Path, kept_streams: int) -> None:
    # Pages of about 1 KB: the dump's first 64 KiB hold them all. A buffered read of 64 KiB that
    # met the cut dropped every page it had decoded; one read at a time keeps them.
    dump, offsets = write_multistream(tmp_path, PAGES, per_stream=3)
    cut = offsets[kept_streams] + 30  # inside the next stream of pages
    dump.write_bytes(dump.read_bytes()[:cut])
    expected = _whole_streams_page_ids(dump.read_bytes())
    assert len(expected) == 3 * kept_streams
    assert _read_until_cut(str(dump)) == expected  # the whole file, as a dump without its index
    # A task's range over the same streams reads them after the dump's header.
    assert _read_until_cut(f"{dump}#streams={offsets[0]}-{offsets[-1] + 10**6}") == expected
