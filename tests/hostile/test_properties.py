"""Property tests: every source's reader survives arbitrary and mangled bytes, the text
parsers survive arbitrary unicode, and CCNet's dedup normaliser keeps its promises.

"Survives" means what the engine needs: the reader yields documents it can store (no lone
surrogates in any string) or skips, and raises nothing but the errors the runner counts as a
failed file (InputError, OSError, EOFError, ValueError, UnicodeError)."""

from __future__ import annotations

import bz2
import gzip
import itertools
import os
import random
import re
import shutil
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.common.errors import InputError
from pipeline.engine.document import Document, Skipped
from pipeline.text.html import html_fragment_to_text
from pipeline.text.latex import LatexError, check_braces, strip_comments
from pipeline.text.latex_macros import collect_macros, expand_macros
from pipeline.text.normalize import dedup_lines, normalize_for_dedup, normalize_for_lm, normalize_lines_for_lm
from pipeline.text.wikitext import clean_wikitext
from sources.arxiv import ArXiv
from sources.books import Books
from sources.c4 import C4
from sources.github import GitHub
from sources.jsonl import Jsonl
from sources.samples.arxiv import tar_gz
from sources.samples.commoncrawl import http_response, warc_record
from sources.stackexchange import StackExchange
from sources.wikipedia import Wikipedia
from tests.hostile.helpers import CommonCrawlReader
from tests.hostile.sources_data import BOOK, MIT, PAPER, c4_lines, github_row, se_site, wet_records, wiki_dump

COUNTED = (InputError, OSError, EOFError, ValueError, UnicodeError)
# The suite runs a fixed, fast set of examples; HERD_FUZZ_EXAMPLES=2000 runs a longer, random hunt.
HUNT = int(os.environ.get("HERD_FUZZ_EXAMPLES", "0"))
FAST = settings(max_examples=HUNT or 60, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=not HUNT)
MANY = settings(max_examples=HUNT or 200, deadline=None, derandomize=not HUNT)

# unicode including lone surrogates, which JSON escapes and broken decoders can produce
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=300)


@st.composite
def mangled(draw: st.DrawFn, sample: bytes) -> bytes:
    """`sample` with a few random edits: bytes changed, spans deleted or inserted, a cut."""
    data = bytearray(sample)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["change", "delete", "insert", "cut"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "change" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        else:
            del data[at:]
    return bytes(data)


def hostile_bytes(sample: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=1024), ANY_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
                     mangled(sample))


def _paper() -> bytes:
    return tar_gz([("main.tex", PAPER.encode()), ("sec.tex", b"\\section{A} text")])


def _warc() -> bytes:
    rng = random.Random(0)
    html = http_response(b"<html><body><p>Hello there, world.</p></body></html>", "text/html; charset=utf-8")
    return b"".join(wet_records(2)) + warc_record(rng, "response", "https://a.example/", html, "application/http")


def _zip() -> bytes:
    from sources.samples.books import zipped

    return zipped({"a.txt": BOOK.encode(), "b.txt": b"short"})


def _seven_zip() -> bytes:
    import io

    import py7zr

    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w") as archive:
        archive.writestr(se_site(1), "Posts.xml")
    return buffer.getvalue()


def _parquet(columns: dict[str, list]) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


# source, file name under the input root, a valid sample, whether the sample is stored gzipped
FORMATS = [
    (C4(), "a.json", b"\n".join(c4_lines(2)), False),
    (C4(), "a.json.gz", b"\n".join(c4_lines(2)), True),
    (Jsonl(), "a.jsonl", b'{"text": "one", "id": 1}\n{"text": "two", "url": "u"}\n', False),
    (Books(), "g/a.txt", BOOK.encode(), False),
    (Books(), "g/a.jsonl", b'{"text": "a book", "meta": {"title": "T"}}\n', False),
    (GitHub(), "a.jsonl", github_row() + b"\n" + github_row("b.c", "int b;"), False),
    (GitHub(), "r/a.py", b"def f():\n    return 1\n", False),
    (Books(), "g/a.zip", _zip(), False),
    (GitHub(), "a.parquet", _parquet({"repo_name": ["o/r"], "path": ["a.py"], "content": ["x = 1"],
                                      "license": ["mit"]}), False),
    (Wikipedia(), "enwiki-20220701-pages-articles.xml", wiki_dump(2).encode(), False),
    (Wikipedia(), "20231101.en/train.parquet", _parquet({"id": ["1"], "url": ["u"], "title": ["T"],
                                                         "text": ["Some text."]}), False),
    (StackExchange(), "site.7z", _seven_zip(), False),
    (StackExchange(), "site/Posts.xml", se_site(2), False),
    (ArXiv(), "2101.00001.tar.gz", _paper(), False),
    (ArXiv(), "2101.00002.gz", PAPER.encode(), True),
    (ArXiv(), "2101.00003/main.tex", PAPER.encode(), False),
    (CommonCrawlReader(), "a.warc", _warc(), False),
    (CommonCrawlReader(), "a.warc.wet.gz", b"".join(wet_records(2)), True),
]
_counter = itertools.count()


def _storable(value: object) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True


@pytest.mark.parametrize("source, name, sample, gzipped", FORMATS,
                         ids=[f"{f[0].name}:{f[1].split('/')[-1]}" for f in FORMATS])
@pytest.mark.slow
def test_readers_survive_arbitrary_and_mangled_bytes(source, name: str, sample: bytes, gzipped: bool,
                                                     tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.mktemp("fuzz")

    @FAST
    @given(data=hostile_bytes(sample))
    def check(data: bytes) -> None:
        root = base / str(next(_counter))
        path = root / name
        path.parent.mkdir(parents=True)
        if isinstance(source, GitHub) and name.startswith("r/"):
            (root / "r/LICENSE").write_text(MIT)
        path.write_bytes(gzip.compress(data, mtime=0) if gzipped else data)
        read_from = str(path.parent) if isinstance(source, GitHub) and name.startswith("r/") else str(path)
        try:
            for item in source.read(read_from):
                assert isinstance(item, (Document, Skipped))
                if isinstance(item, Document):
                    assert isinstance(item.text, str) and isinstance(item.id, str)
                    assert all(map(_storable, [item.id, item.text, *item.meta.values()])), item
        except COUNTED:
            pass
        finally:
            shutil.rmtree(root)

    check()


def test_bz2_dump_survives_mangled_streams(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.mktemp("fuzz-bz2")
    sample = bz2.compress(wiki_dump(3).encode())

    @FAST
    @given(data=mangled(sample))
    def check(data: bytes) -> None:
        path = base / f"{next(_counter)}/enwiki-20220701-pages-articles.xml.bz2"
        path.parent.mkdir()
        path.write_bytes(data)
        try:
            list(Wikipedia().read(str(path)))
        except COUNTED:
            pass

    check()


@FAST
@given(text=ANY_TEXT)
def test_latex_parsers_raise_only_latex_errors(text: str) -> None:
    stripped = strip_comments(text)
    try:
        check_braces(stripped)
        macros, body = collect_macros(stripped)
        expand_macros(body, macros, max_expansions=200)
    except LatexError:
        pass


@pytest.mark.slow
@FAST
@given(text=st.text(max_size=300) | st.from_regex(r"(\{\{|\}\}|\[\[|\]\]|<ref>|</ref>|''|==|\||[a-z ]){0,60}"))
def test_wikitext_and_html_cleaning_never_crash(text: str) -> None:
    assert isinstance(clean_wikitext(text), str)
    assert isinstance(html_fragment_to_text(text), str)


@MANY
@given(text=ANY_TEXT)
def test_dedup_normaliser_is_idempotent_and_zeroes_every_digit(text: str) -> None:
    # CCNet's form strips before it removes characters, so it is idempotent only up to the
    # white space a removed character uncovers; the strict form is idempotent.
    once = normalize_for_dedup(text)
    assert normalize_for_dedup(once).strip() == once.strip()
    assert all(c == "0" for c in once if unicodedata.category(c) == "Nd")
    strict = normalize_for_dedup(text, strict=True)
    assert normalize_for_dedup(strict, strict=True) == strict
    assert not any(unicodedata.category(c)[0] == "P" for c in strict)
    lm = normalize_for_lm(text)
    assert all(c == "0" for c in lm if unicodedata.category(c) == "Nd")


@MANY
@given(text=ANY_TEXT | st.text(st.characters(max_codepoint=127), max_size=300))
def test_dedup_lines_agree_with_the_readable_normaliser(text: str) -> None:
    # The ASCII fast path and the unicode path give each line's normal form.
    for strict in (False, True):
        expected = [normalize_for_dedup(line, strict).encode("utf-8", "surrogatepass") for line in text.split("\n")]
        assert dedup_lines(text, strict) == expected


# Mostly ASCII with marks, digits of other scripts, CCNet's punctuation, controls and spaces
# strewn in: the mix of real pages, which the fast paths handle apart from pure ASCII.
STREWN_PIECE = st.one_of(
    st.sampled_from(["The River", " bank", "12", " ", "  ", "\n", "\t", "\r", "\x01", "\x0b", "\x1c", "caf\u00e9"]),
    st.sampled_from(list("\u0301\u0308\u093f\u0663\uff11\u2014\u2026\uff0e\u201c\u2019\u0085\x9f\xa0\u3000\u1e9e\u0130"
                         "\uac00\u212b\u03a3\u1715\u302e")),
    st.characters(exclude_categories=()),
)
STREWN = st.lists(STREWN_PIECE, max_size=60).map("".join)
# As real pages are: a few such characters in long runs of ASCII (the character-by-character path).
SPARSE = st.lists(st.tuples(st.text(st.characters(max_codepoint=127), min_size=20, max_size=80), STREWN_PIECE),
                  max_size=12).map(lambda pairs: "".join(a + b for a, b in pairs))


def ccnet_normalize(line: str) -> str:
    """CCNet's text_normalizer.normalize(line) with its defaults, step by step as written there:
    strip, lower, NFD without non-spacing marks, \\d to 0, its unicode punctuation to ASCII,
    the C0 and C1 controls removed."""
    from pipeline.text.normalize import _UNICODE_PUNCT as ccnet_punct  # CCNet's list, data

    line = line.strip()
    line = line.lower()
    line = "".join(c for c in unicodedata.normalize("NFD", line) if unicodedata.category(c) != "Mn")
    line = re.sub(r"\d", "0", line)
    line = "".join(ccnet_punct.get(c, c) for c in line)
    return re.sub("[\x00-\x1f\x7f-\x9f]", "", line)


@MANY
@given(text=ANY_TEXT | STREWN | SPARSE | st.text(st.characters(max_codepoint=127), max_size=300))
def test_lm_normal_form_is_ccnets_line_by_line(text: str) -> None:
    # All lines of a text are folded at once (ASCII or not); each line alone is CCNet's rule.
    assert normalize_for_lm(text) == ccnet_normalize(text)
    assert normalize_lines_for_lm(text) == [normal for line in text.split("\n") if (normal := ccnet_normalize(line))]


@MANY
@given(text=STREWN | SPARSE)
def test_dedup_lines_of_mostly_ascii_text_agree_with_the_readable_normaliser(text: str) -> None:
    expected = [normalize_for_dedup(line).encode("utf-8", "surrogatepass") for line in text.split("\n")]
    assert dedup_lines(text) == expected
