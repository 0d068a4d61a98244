"""Wikipedia multistream dumps split into byte ranges of whole bz2 streams: every page read
exactly once, in order, whatever the split; `pipeline run wikipedia` uses many tasks on one
dump and writes the same shards with one worker or two."""

from __future__ import annotations

import bz2
import json
from pathlib import Path

import pytest
from lxml import etree

from pipeline.cli import main
from pipeline.common.errors import InputError
from pipeline.formats.mediawiki import iter_pages
from pipeline.formats.multistream import byte_ranges, index_of, open_dump, split_dump
from sources.samples.wikipedia import FOOTER, HEADER, Page, page_xml
from sources.wikipedia import Wikipedia, WikipediaConfig
from tests.sources.wikipedia_dumps import REAL_WIKIPEDIA

DUMP = "enwiki-20220701-pages-articles-multistream.xml.bz2"
INDEX = "enwiki-20220701-pages-articles-multistream-index.txt.bz2"


def write_multistream(folder: Path, pages: list[Page], per_stream: int = 3) -> tuple[Path, list[int]]:
    """A dump laid out like Wikimedia's (header stream, streams of pages, footer stream) and its
    index of `offset:page_id:title` lines; returns the dump and its page-stream offsets."""
    folder.mkdir(parents=True, exist_ok=True)
    data = bz2.compress(HEADER.format(lang="en").encode())
    offsets, index = [], []
    for i in range(0, len(pages), per_stream):
        offsets.append(len(data))
        index.extend(f"{len(data)}:{p.page_id}:{p.title}\n" for p in pages[i : i + per_stream])
        data += bz2.compress("".join(page_xml(p) for p in pages[i : i + per_stream]).encode())
    data += bz2.compress(FOOTER.encode())
    (folder / DUMP).write_bytes(data)
    (folder / INDEX).write_bytes(bz2.compress("".join(index).encode()))
    return folder / DUMP, offsets


def pages_by_lxml(path: Path) -> list[tuple[int, str]]:
    """(id, title) of every page, read independently: the whole file decompressed, parsed by lxml."""
    root = etree.fromstring(bz2.decompress(path.read_bytes()))
    ns = {"m": root.nsmap[None]}
    return [(int(p.findtext("m:id", namespaces=ns)), p.findtext("m:title", namespaces=ns))
            for p in root.iterfind("m:page", ns)]


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


def test_a_dump_without_its_index_stays_whole_and_a_bad_index_is_one_error(tmp_path: Path) -> None:
    dump, _ = write_multistream(tmp_path, PAGES)
    (tmp_path / INDEX).unlink()
    assert split_dump(str(dump), 1) == [str(dump)]
    (tmp_path / INDEX).write_bytes(bz2.compress(b"not an index\n"))
    with pytest.raises(InputError, match="line 1: expected OFFSET:PAGE_ID:TITLE"):
        split_dump(str(dump), 1)


def _run(raw: Path, out: Path, config: Path, *extra: str) -> dict:
    main(["run", "wikipedia", "--input", str(raw), "--output", str(out), "--config", str(config), "--no-progress",
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
