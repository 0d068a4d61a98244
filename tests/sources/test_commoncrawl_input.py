"""What the CommonCrawl recipe makes of its pages, in small hand-written records that run on every
clone: WET titles, snapshots, and the dedup order (300-character floor, one copy across
snapshots, line dedup within one). How records and HTTP responses are read (chunked bodies,
wget's bracketed URIs, bare-LF headers, dns: records, charsets, Content-Lengths) is tested with
the reader, in tests/pipeline/formats/test_warc.py."""

from __future__ import annotations

import random
from pathlib import Path

from pipeline.commands.run import run_source
from pipeline.engine.shards import read_corpus
from sources.commoncrawl import CommonCrawl, snapshot_of
from sources.samples.commoncrawl import warc_record, write_members


def _items(tmp_path: Path, records: list[bytes], name: str = "a.warc.gz") -> list:
    write_members(tmp_path / name, records)
    return list(CommonCrawl().read(str(tmp_path / name)))


def test_wet_title_goes_to_its_column_and_the_snapshot_comes_from_warcinfo_or_path(tmp_path: Path) -> None:
    rng = random.Random(7)
    info = warc_record(rng, "warcinfo", None, b"isPartOf: CC-MAIN-2019-09\r\n", "application/warc-fields")
    page = warc_record(rng, "conversion", "https://a.example/", b"Page title\nFirst line.\nSecond line.", "text/plain")
    (doc,) = _items(tmp_path, [info, page], "a.warc.wet.gz")
    assert (doc.meta["title"], doc.text, doc.meta["snapshot"]) == ("Page title", "First line.\nSecond line.", "CC-MAIN-2019-09")
    assert snapshot_of("s3://commoncrawl/crawl-data/CC-MAIN-2020-34/segments/x/wet/CC-MAIN-20200808-00395.warc.wet.gz") \
        == "CC-MAIN-2020-34"
    assert snapshot_of("CC-MAIN-20200808165417-20200808195417-00395.warc.gz") == ""  # a crawl time, not a snapshot


class _DedupOnly(CommonCrawl):
    def stages(self) -> list:
        return self.dedup_stages()


LONG = " ".join(f"Sentence {n} of a page long enough to pass the floor." for n in range(8))


def _wet(path: Path, pages: list[tuple[str, str]], snapshot: str, seed: int) -> None:
    rng = random.Random(seed)
    info = warc_record(rng, "warcinfo", None, f"isPartOf: {snapshot}\r\n".encode(), "application/warc-fields")
    write_members(path, [info] + [warc_record(rng, "conversion", url, f"Title\n{text}".encode(), "text/plain")
                                  for url, text in pages])


def test_two_snapshots_of_an_unchanged_page_keep_one_copy(tmp_path: Path) -> None:
    page = ("https://a.example/", f"Home | News\n{LONG}")
    other = ("https://b.example/", f"Home | News\nAnother story. {LONG}")
    _wet(tmp_path / "in/s1.warc.wet.gz", [page], "CC-MAIN-2019-09", 1)
    _wet(tmp_path / "in/s2.warc.wet.gz", [page, other], "CC-MAIN-2019-13", 2)
    report = run_source(_DedupOnly(), str(tmp_path / "in"), str(tmp_path / "out"), show_progress=False)
    docs = list(read_corpus(tmp_path / "out/commoncrawl"))
    assert [s["dropped"] for s in report.stats["stages"][1:]] == [{}, {"duplicate_page": 1}]
    kept = {d.meta["url"]: (d.meta["snapshot"], d.text) for d in docs}
    assert sorted(kept) == ["https://a.example/", "https://b.example/"]
    # Each snapshot hashes all its pages, the copy dropped too (as CCNet, then RedPajama): the
    # nav line is shared inside the second snapshot and goes from its pages; the copy of the
    # first page that is kept is whole only if it is the first snapshot's.
    assert kept["https://b.example/"] == ("CC-MAIN-2019-13", f"Another story. {LONG}")
    snapshot, text = kept["https://a.example/"]
    assert text == (f"Home | News\n{LONG}" if snapshot == "CC-MAIN-2019-09" else LONG)


def test_pages_under_300_characters_never_reach_the_hash_set(tmp_path: Path) -> None:
    # The short page shares a line with the long one: if it were hashed, the long page would lose it.
    _wet(tmp_path / "in/a.warc.wet.gz", [("https://a.example/", f"Shared line of text.\n{LONG}"),
                                         ("https://b.example/", "Shared line of text.\nToo short.")], "", 3)
    report = run_source(_DedupOnly(), str(tmp_path / "in"), str(tmp_path / "out"), show_progress=False)
    assert [s["name"] for s in report.stats["stages"]] == ["read", "min_chars", "line_dedup"]
    assert report.stats["stages"][1]["dropped"] == {"too_short": 1}
    (doc,) = read_corpus(tmp_path / "out/commoncrawl")
    assert doc.text == f"Shared line of text.\n{LONG}"
