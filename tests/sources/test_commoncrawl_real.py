"""CommonCrawl on real third-party WARC and WET files (../shared/realdata/commoncrawl), judged
by an independent reading: http.client for HTTP framing and chunked bodies, lxml for titles,
plain byte searches for what the files hold. Skipped when the shared folder is absent.

The hand-written cases that run on every clone are in test_commoncrawl.py and
test_commoncrawl_input.py."""

from __future__ import annotations

import gzip
import http.client
import io
import re
from collections import Counter, defaultdict
from pathlib import Path

import lxml.html
import pytest

from pipeline.commands.run import run_source
from pipeline.engine.document import Document, Skipped
from pipeline.engine.shards import read_corpus
from pipeline.filters.langid import LanguageId
from pipeline.formats.warc import iter_warc_records
from sources.commoncrawl import CommonCrawl

REAL = Path(__file__).resolve().parents[2] / "../shared/realdata/commoncrawl"
pytestmark = pytest.mark.skipif(not REAL.exists(), reason=f"real data not present: {REAL} (only in the project's shared folder)")


class _Socket:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.data)


def _http(payload: bytes) -> tuple[http.client.HTTPResponse, bytes]:
    """The standard library's reading of a stored HTTP response: status, headers, body
    (de-chunked by http.client when it says chunked; a capture cut short keeps what it has)."""
    response = http.client.HTTPResponse(_Socket(payload))  # type: ignore[arg-type]
    response.begin()
    try:
        body = response.read()
    except http.client.IncompleteRead as e:
        body = e.partial
    return response, body


def _responses(name: str) -> list:
    return [r for r in iter_warc_records(str(REAL / name)) if not isinstance(r, Skipped) and r.type == "response"]


def _read(name: str) -> tuple[list[Document], Counter]:
    docs, skipped = [], Counter()
    for item in CommonCrawl().read(str(REAL / name)):
        if isinstance(item, Skipped):
            skipped[item.reason] += 1
        else:
            docs.append(item)
    return docs, skipped


def _chunk_sizes(body: bytes) -> list[str]:
    """The hex chunk sizes of a raw chunked body, walked by hand."""
    sizes, pos = [], 0
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            return sizes
        token = body[pos:end].split(b";")[0].strip().decode("ascii", "replace")
        if not re.fullmatch(r"[0-9a-fA-F]+", token) or int(token, 16) == 0:
            return sizes
        sizes.append(token)
        pos = end + 2 + int(token, 16) + 2


def test_chunked_bodies_leave_no_chunk_sizes_in_the_text() -> None:
    checked = 0
    for name in ("dolma-sample-0000.warc.gz", "dolma-sample-0001.warc.gz", "ukwa-IAH-urls-wget.warc.gz"):
        docs = {d.id: d for d in _read(name)[0]}
        for record in _responses(name):
            response, body = _http(record.body)
            if response.getheader("Transfer-Encoding", "").lower() != "chunked" or response.status != 200:
                continue
            if "html" not in response.getheader("Content-Type", ""):
                continue
            raw_body = record.body.split(b"\r\n\r\n", 1)[1]
            sizes = _chunk_sizes(raw_body)
            assert sizes, name
            doc = docs[record.headers["warc-record-id"].strip("<>")]
            decoded = body.decode("utf-8", "replace")
            for size in sizes:
                word = re.compile(rf"(?<![0-9A-Za-z]){size}(?![0-9A-Za-z])")
                if not word.search(decoded):  # a number that is really on the page may stay
                    assert not word.search(doc.text), (name, doc.meta["url"], size)
            checked += 1
    assert checked == 8  # 2 + 4 HTML pages in the dolma WARCs, 2 archive.org captures


def test_bodies_declared_chunked_but_stored_joined_are_read_as_they_are() -> None:
    # pywb's iana.org capture keeps `Transfer-Encoding: chunked` on bodies already joined.
    docs = {d.id: d for d in _read("pywb-iana.warc.gz")[0]}
    joined = 0
    for record in _responses("pywb-iana.warc.gz"):
        head, _, body = record.body.partition(b"\r\n\r\n")
        if b"chunked" in head.lower() and body.lstrip().lower().startswith(b"<!doctype html"):
            tree = lxml.html.fromstring(body)
            headings = [h.text_content().strip() for h in tree.iter("h1", "h2") if h.text_content().strip()]
            doc = docs[record.headers["warc-record-id"].strip("<>")]
            assert headings and headings[0] in doc.text, (doc.meta["url"], headings[:2])
            joined += 1
    assert joined == 16


def test_no_url_keeps_angle_brackets() -> None:
    for path in sorted(REAL.glob("*.gz")):
        for doc in _read(path.name)[0]:
            url = doc.meta["url"]
            assert not url.startswith("<") and not url.endswith(">"), (path.name, url)
    wget = _read("dolma-sample-0000.warc.gz")[0]
    assert wget[0].meta["url"] == "https://www.semanticscholar.org/research/research-team"


def test_every_html_page_of_the_clueweb_warc_is_read_as_html() -> None:
    # ClueWeb09's HTTP headers end in a bare LF, and its bodies are stored inflated under a
    # `Content-Encoding: gzip` header.
    name = "resiliparse-clueweb-quirk.warc.gz"
    html_pages = {}
    for record in _responses(name):
        response, body = _http(record.body)
        if response.status == 200 and "html" in response.getheader("Content-Type", ""):
            html_pages[record.headers["warc-record-id"].strip("<>")] = body
    assert len(html_pages) == 29
    docs, skipped = _read(name)
    assert skipped == Counter() and {d.id for d in docs} == set(html_pages)
    for doc in docs:
        title = lxml.html.fromstring(html_pages[doc.id].decode("euc-jp", "replace")).findtext(".//title")
        assert doc.meta["title"] == " ".join(title.split()) or doc.meta["title"] == title.strip()
        assert len(doc.text) > 300


def test_a_dns_record_is_not_a_document() -> None:
    name = "ukwa-IAH-20080430204825-00000-blackbook-truncated.warc.gz"
    assert any(r.headers.get("warc-target-uri", "").startswith("dns:") for r in _responses(name))
    docs, skipped = _read(name)
    assert "broken_http_response" not in skipped
    assert [d.meta["url"] for d in docs] == ["http://www.archive.org/", "http://www.archive.org/index.php"]


def test_wet_titles_are_the_first_line_and_warc_titles_the_html_title() -> None:
    raw_wet = {}
    for record in iter_warc_records(str(REAL / "cc-whirlwind.warc.wet.gz")):
        if not isinstance(record, Skipped) and record.type == "conversion":
            raw_wet[record.headers["warc-record-id"].strip("<>")] = record.body.decode("utf-8").split("\n", 1)
    (wet,) = _read("cc-whirlwind.warc.wet.gz")[0]
    first_line, rest = raw_wet[wet.id]
    assert wet.meta["title"] == first_line == "Escopete - Biquipedia, a enciclopedia libre"
    assert wet.text == rest.strip() and not wet.text.startswith("Escopete - Biquipedia")
    assert wet.meta["snapshot"] == "CC-MAIN-2024-22"
    for name in ("dolma-sample-0001.warc.gz", "pywb-iana.warc.gz"):
        docs = {d.id: d for d in _read(name)[0]}
        for record in _responses(name):
            doc = docs.get(record.headers["warc-record-id"].strip("<>"))
            if doc is None:
                continue
            _, body = _http(record.body)
            if not body.strip():  # declared chunked, stored joined: http.client finds no chunks
                body = record.body.partition(b"\r\n\r\n")[2]
            title = lxml.html.fromstring(body).findtext(".//title")
            assert doc.meta["title"] == title.strip(), (name, doc.meta["url"])


def test_language_ids_match_the_languages_the_pages_declare() -> None:
    stage = LanguageId()
    stage.setup()
    checked = Counter()
    for path in sorted(REAL.glob("*.warc.gz")):
        declared = {}
        for record in _responses(path.name):
            found = re.search(rb"<html[^>]*\blang=[\"']?([A-Za-z]+)", record.body[:20000], re.IGNORECASE)
            if found:
                declared[record.headers["warc-record-id"].strip("<>")] = found.group(1).decode().lower()
        docs = [d for d in _read(path.name)[0] if d.id in declared and len(d.text) >= 300]
        for doc, result in zip(docs, stage.process_batch(docs)):
            expected = declared[doc.id]
            if expected == "an":  # Aragonese: lid.176.ftz takes it for Spanish, and keeps it out of English
                assert doc.meta["lang"] != "en"
                continue
            assert doc.meta["lang"] == expected, (path.name, doc.meta["url"], doc.meta["lang"], expected)
            if expected == "en":
                assert isinstance(result, Document), (doc.meta["url"], doc.meta["lang_score"])
            checked[expected] += 1
    assert checked == {"en": 39, "nl": 1, "zh": 1}


class _DedupOnly(CommonCrawl):
    """The CommonCrawl stages up to language id: the later ones need trained models."""

    def stages(self) -> list:
        return self.dedup_stages()


def test_no_template_line_is_repeated_across_kept_pages(tmp_path: Path) -> None:
    report = run_source(_DedupOnly(), str(REAL), str(tmp_path / "out"), workers=2, show_progress=False)
    docs = list(read_corpus(tmp_path / "out" / "commoncrawl"))
    assert docs and all(len(d.meta["title"]) > 0 for d in docs if d.meta["warc_file"].endswith(".warc.gz"))
    pages_of_line: dict[tuple[str, str], set[str]] = defaultdict(set)
    for doc in docs:
        for line in doc.text.split("\n"):
            if line.strip():
                pages_of_line[(doc.meta["snapshot"], line.strip())].add(doc.id)
    repeated = {line: ids for line, ids in pages_of_line.items() if len(ids) > 1}
    assert repeated == {}
    stages = {s["name"]: s for s in report.stats["stages"]}
    # The three identical allenai.org captures: one copy kept.
    assert stages["line_dedup"]["dropped"]["duplicate_page"] >= 2
    assert sum(1 for d in docs if d.meta["url"] == "https://allenai.org/") <= 1


def test_the_same_real_page_in_two_snapshots_keeps_one_copy(tmp_path: Path) -> None:
    # The second snapshot's capture is the same page under a record id of its own.
    data = gzip.decompress((REAL / "cc-whirlwind.warc.wet.gz").read_bytes())
    record_id = b"ba729a40-ff84-4085-8d48-0a5b2ee0c42d"
    assert data.count(record_id) == 1
    for snapshot, text in (("CC-MAIN-2024-22", data), ("CC-MAIN-2024-26", data.replace(record_id, b"0" * len(record_id)))):
        (tmp_path / "in" / snapshot).mkdir(parents=True)
        (tmp_path / "in" / snapshot / "whirlwind.warc.wet.gz").write_bytes(gzip.compress(text))
    report = run_source(_DedupOnly(), str(tmp_path / "in"), str(tmp_path / "out"), show_progress=False)
    assert report.stats["stages"][2]["dropped"] == {"duplicate_page": 1}
    docs = list(read_corpus(tmp_path / "out" / "commoncrawl"))
    # The copy kept is the page as one snapshot alone makes it: the other snapshot's copy
    # took none of its lines.
    run_source(_DedupOnly(), str(tmp_path / "in" / "CC-MAIN-2024-22"), str(tmp_path / "alone"), show_progress=False)
    (alone,) = read_corpus(tmp_path / "alone" / "commoncrawl")
    assert len(docs) == 1 and docs[0].text == alone.text and "Escopete" in alone.text


def test_a_page_whose_prose_is_in_lists_keeps_it() -> None:
    # soldaini.net/facts/ is a list of facts: main-content extraction alone kept 60 of its
    # 1,081 characters; the whole text is kept when the main content is under a quarter.
    url = "https://soldaini.net/facts/"
    (doc,) = [d for d in _read("dolma-sample-0000.warc.gz")[0] if d.meta["url"] == url]
    (record,) = [r for r in _responses("dolma-sample-0000.warc.gz") if r.headers["warc-target-uri"] == f"<{url}>"]
    _, body = _http(record.body)
    items = [" ".join(li.text_content().split()) for li in lxml.html.fromstring(body).iter("li")]
    assert len(items) == 9
    text = " ".join(doc.text.split())
    assert all(item in text for item in items)
    assert len(doc.text) == 1081
