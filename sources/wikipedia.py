"""Wikipedia: MediaWiki pages-articles XML dumps (or the Hugging Face wikimedia/wikipedia
parquet layout) to plain-text articles.

Inputs: `<lang>wiki-<date>-pages-articles*.xml.bz2` (multistream too) or `.xml`, Wikimedia's
split dumps (`enwiki-20220701-pages-articles1.xml-p1p41242.bz2`, `...-multistream1.xml-p1p41242.bz2`),
and `<date>.<lang>/*.parquet` folders of wikimedia/wikipedia (id, url, title, text; already
plain text). Each wiki is read once (select_dump_files): from its newest dump, in one form
(pages-articles or pages-articles-multistream), and from a parquet folder only when no dump of
it is there; every file left out is named in a warning. A multistream dump with its index beside
it is read as byte ranges of whole bz2 streams, many tasks; one whose index does not fit it
(cut, empty, offsets that are not where its streams start: pipeline/formats/multistream.py) is
read whole, as one task, with one warning naming the index, and counted once as `bad_index`.

The language comes from the dump name (`enwiki-...`, or the dump's `<dbname>`) or the parquet
folder name; by default the paper's 20 languages are kept; a file of another language is not
read and is named in a warning (one whose name does not tell the language is skipped as
`language_not_selected` once its `<dbname>` does).

Reader: main namespace only (`ns` 0), redirects skipped, each skip counted (and kept with
--keep-dropped); a page whose id is not a number that fits the int64 `page_id` column is
skipped as `invalid_page_id`; one longer than MediaWiki lets a page be (2 MiB of wikitext) as
`page_too_large`, since no real dump holds one and cleaning costs a hundred bytes of memory and
more per byte of hostile markup (10 MB of `{` took 2 GB). Stages: wikitext cleaning
(mwparserfromhell), then a minimum length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.common.config import Bytes, Count
from pipeline.common.errors import InputError
from pipeline.common.warn import warn
from pipeline.engine.document import Document, Skipped
from pipeline.engine.source import Source, SourceConfig
from pipeline.engine.stage import Stage
from pipeline.filters.min_chars import MinChars
from pipeline.formats.files import open_binary
from pipeline.formats.mediawiki import DumpError, Page, SiteInfo, iter_pages
from pipeline.formats.multistream import BadIndex, open_dump, split_dump
from pipeline.text.cited_urls import cited_urls
from pipeline.transforms.clean_wikitext import CleanWikitext

# LLaMA paper, section 2: the June-August 2022 dumps of these 20 languages.
PAPER_LANGUAGES = ["bg", "ca", "cs", "da", "de", "en", "es", "fr", "hr", "hu",
                   "it", "nl", "pl", "pt", "ro", "ru", "sl", "sr", "sv", "uk"]
DUMP_NAME = re.compile(r"^([a-z][a-z0-9_-]*?)wiki-")
# Wikimedia's dump file names; `tag` is anything else a person added ("-sample"): a tagged file
# is its own dump.
DUMP_FILE = re.compile(
    r"^(?P<wiki>[a-z][a-z0-9_]*?wiki)-(?P<date>\d{8}|latest)-pages-articles(?P<multistream>-multistream)?"
    r"(?P<part>\d*)(?P<tag>(?:-[A-Za-z0-9_]+)*?)\.xml(?P<range>-p\d+p\d+)?(?:\.bz2)?$")
MAX_PAGE_ID = (1 << 63) - 1  # the page_id column is int64
# $wgMaxArticleSize on every Wikimedia wiki (2048 KiB): MediaWiki saves no longer page. The XML
# parser alone would let a page's text reach 10 MB (libxml2's limit without huge_tree).
MAX_PAGE_BYTES = 2 << 20
PARQUET_FOLDER = re.compile(r"^\d{8}\.([a-z][a-z0-9_-]*)$")
URL_SAFE = ":/(),'!*-._~"
# A redirect page whose <redirect/> element is missing (older dumps) still starts like this.
REDIRECT_TEXT = re.compile(r"^\s*#(?:redirect|weiterleitung|redirection|redirección|rinvia|doorverwijzing|"
                           r"przekieruj|redirecionamento|перенаправление|перенаправлення|пренасочване|"
                           r"preusmjeri|preusmeritev|преусмери|omdirigering|omdirigering|átirányítás|"
                           r"přesměruj|redirecció|redirecteaza|redirecționare)\b", re.IGNORECASE)


@dataclass
class WikipediaConfig(SourceConfig):
    languages: list[str] = field(default_factory=lambda: list(PAPER_LANGUAGES))
    min_chars: Count = 1  # articles shorter than this after cleaning are dropped as "too_short"
    # A multistream dump with its index beside it is read as byte ranges of whole bz2 streams of
    # about this many bytes, each an input of its own (pipeline/formats/multistream.py); 0: dumps whole.
    task_bytes: Bytes = 64 << 20


def article_url(lang: str, title: str) -> str:
    path = quote(title.replace(" ", "_"), safe=URL_SAFE)
    return f"https://{lang}.wikipedia.org/wiki/{path}"


def language_of(path: str) -> str:
    """`enwiki-20220701-pages-articles.xml.bz2` -> en; `20231101.de/train-0.parquet` -> de; else ""."""
    parts = path.replace("\\", "/").split("/")
    match = DUMP_NAME.match(parts[-1])
    if match:
        return match.group(1).replace("_", "-")
    if len(parts) >= 2:
        folder = PARQUET_FOLDER.match(parts[-2])
        if folder:
            return folder.group(1)
    return ""


@dataclass(frozen=True)
class DumpFile:
    """What a dump file's name says: which dump (wiki, date, tag) and in which form."""

    wiki: str
    date: str
    tag: str
    multistream: bool
    piece: str  # part number and page range of a split dump ("1-p1p41242"), "" for a whole one

    @property
    def dump(self) -> tuple[str, str, str]:
        return (self.wiki, self.date, self.tag)


def dump_file(path: str) -> DumpFile | None:
    """`enwiki-20220701-pages-articles-multistream1.xml-p1p41242.bz2` -> enwiki, 20220701, multistream, part 1."""
    match = DUMP_FILE.match(path.replace("\\", "/").rsplit("/", 1)[-1])
    if match is None:
        return None
    piece = match.group("part") + (match.group("range") or "")
    return DumpFile(match.group("wiki"), match.group("date"), match.group("tag"),
                    bool(match.group("multistream")), piece)


def select_dump_files(paths: list[str]) -> tuple[list[str], dict[str, str]]:
    """Each wiki read once, from one dump in one form: (the paths to read, {skipped path: why}).

    - Dates: the dumps of one wiki share page ids (ids are `<wiki>/<page id>`) and mostly pages,
      so only the newest date of each wiki is read (`latest` counts as newest), and only the
      newest `<date>.<lang>` folder of a language's parquet files.
    - Dump and parquet: a language present as a Wikimedia dump is read from the dump (the raw
      form the cleaning is made for), not from its parquet folder.
    - Forms: pages-articles and pages-articles-multistream of one date hold the same pages;
      when both are present the form with more files is read (more tasks), multistream on a tie.
    - A file present both compressed and not (`x.xml`, `x.xml.bz2`) is read in one of them.
    """
    skipped: dict[str, str] = {}
    dumps: dict[tuple[str, str], dict[str, list[str]]] = {}  # (wiki, tag) -> date -> files
    parquet: dict[str, dict[str, list[str]]] = {}  # lang -> date -> files
    for path in paths:
        name = dump_file(path)
        if name is not None:
            dumps.setdefault((name.wiki, name.tag), {}).setdefault(name.date, []).append(path)
        elif (folder := _parquet_folder(path)) is not None:
            parquet.setdefault(folder[1], {}).setdefault(folder[0], []).append(path)
    dump_languages = {}
    for (wiki, _tag), by_date in dumps.items():
        newest = max(by_date, key=_date_rank)
        dump_languages[language_of(by_date[newest][0])] = by_date[newest][0]
        for date, files in by_date.items():
            if date != newest:
                skipped.update(dict.fromkeys(files, f"older dump of {wiki} ({date}) than {_base(by_date[newest][0])}; "
                                                    "one dump of each wiki is read, the newest"))
        skipped.update(_one_form(by_date[newest]))
    for lang, by_date in parquet.items():
        newest = max(by_date)
        for date, files in by_date.items():
            if lang in dump_languages:
                why = f"{lang} is read from its dump {_base(dump_languages[lang])}"
            elif date != newest:
                why = f"older parquet folder of {lang} ({date}) than {newest}.{lang}; the newest is read"
            else:
                continue
            skipped.update(dict.fromkeys(files, why))
    return [p for p in paths if p not in skipped], skipped


def _date_rank(date: str) -> tuple[bool, str]:
    return (date == "latest", date)


def _parquet_folder(path: str) -> tuple[str, str] | None:
    """(date, lang) of a file in a `<date>.<lang>` folder."""
    parts = path.replace("\\", "/").split("/")
    match = PARQUET_FOLDER.match(parts[-2]) if len(parts) >= 2 and parts[-1].endswith(".parquet") else None
    return (parts[-2].split(".", 1)[0], match.group(1)) if match else None


def _one_form(files: list[str]) -> dict[str, str]:
    """The files of one dump (one wiki and date) not to read: another form's, and repeats."""
    by_form: dict[bool, list[str]] = {}
    for path in files:
        by_form.setdefault(dump_file(path).multistream, []).append(path)  # type: ignore[union-attr]
    kept_form = max(by_form, key=lambda multistream: (len(by_form[multistream]), multistream))
    kept = by_form[kept_form]
    name = dump_file(kept[0])
    skipped = {}
    for multistream, form_files in by_form.items():
        if multistream != kept_form:
            for path in form_files:
                skipped[path] = f"same dump ({name.wiki} {name.date}) as {_base(kept[0])}"  # type: ignore[union-attr]
    seen: dict[str, str] = {}
    for path in kept:
        piece = dump_file(path).piece  # type: ignore[union-attr]
        if piece in seen:
            skipped[path] = f"same file as {_base(seen[piece])}"
        else:
            seen[piece] = path
    return skipped


def _base(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


class Wikipedia(Source):
    name = "wikipedia"
    config_class = WikipediaConfig
    # Dump parts `.xml-pApB` and `.xml-pApB.bz2` both end in a digit; a download's `.part` does not.
    patterns = ("**/*wiki-*pages-articles*.xml.bz2", "**/*wiki-*pages-articles*.xml",
                "**/*wiki-*pages-articles*.xml-p*[0-9]", "**/*.parquet")

    def __init__(self, config: WikipediaConfig | None = None) -> None:
        super().__init__(config)
        # Dumps read whole because their index did not fit: set by list_inputs, travels with the
        # source to the workers, each counted once as `bad_index` in the read stage's stats.
        self.bad_indexes: set[str] = set()

    def fields(self) -> list[pa.Field]:
        return [
            pa.field("title", pa.string()),
            pa.field("lang", pa.string()),
            pa.field("page_id", pa.int64()),
            pa.field("url", pa.string()),
            pa.field("cited_urls", pa.list_(pa.string())),  # for `pipeline models classifier --positives cited`
        ]

    def stages(self) -> list[Stage]:
        return [CleanWikitext(), MinChars(self.config.min_chars)]

    def list_inputs(self, root: str) -> list[str]:
        """Dump files and parquet files to read: one form of each dump, of the selected languages.
        A file left out is named on stderr; it is never read, so none of its pages is counted
        (counting it as one dropped document would say nothing of what it holds)."""
        kept, skipped = select_dump_files(super().list_inputs(root))
        for path in kept:
            lang = language_of(path)
            if lang and not self._selected(lang):
                skipped[path] = f"language {lang} not selected (languages: {' '.join(self.config.languages)})"
        for path, why in skipped.items():
            warn(f"warning: {path}: not read: {why}")
        files = [p for p in kept if p not in skipped]
        if self.config.task_bytes <= 0:
            return files
        # A multistream dump with its index beside it: byte ranges of whole bz2 streams, one input each.
        return [part for path in files for part in self._split(path)]

    def _split(self, path: str) -> list[str]:
        """`path` as byte ranges when its multistream index fits it, else whole, with a warning:
        an index that does not fit its dump costs that dump its parallelism, never a page, and
        never the other dumps of the run."""
        try:
            return split_dump(path, self.config.task_bytes)
        except BadIndex as e:
            warn(f"warning: {e.index}: not used ({e.problem}); {_base(path)} is read whole, as one task")
            self.bad_indexes.add(path)
            return [path]

    def read(self, path: str) -> Iterator[Document | Skipped]:
        if path.endswith(".parquet"):
            yield from self._read_parquet(path)
        else:
            yield from self._read_dump(path)

    def _selected(self, lang: str) -> bool:
        return lang in self.config.languages

    def _read_dump(self, path: str) -> Iterator[Document | Skipped]:
        lang = language_of(path)
        if lang and not self._selected(lang):
            yield Skipped("language_not_selected")
            return
        if path in self.bad_indexes:
            yield Skipped("bad_index")
        site = SiteInfo()
        pages_seen = 0
        with open_dump(path) as stream:
            try:
                for page in iter_pages(stream, site):
                    pages_seen += 1
                    if not lang:
                        lang = language_of(site.dbname + "-")
                        if not lang:
                            raise DumpError("unknown_language", "neither the file name nor <dbname> names the wiki")
                        if not self._selected(lang):
                            yield Skipped("language_not_selected")
                            return
                    yield self._page_document(page, lang)
            except DumpError as e:
                if pages_seen == 0:
                    raise InputError(path, e.problem) from None
                # Pages already read are kept; the unreadable rest counts once, with its reason.
                yield Skipped(e.reason)

    def _page_document(self, page: Page, lang: str) -> Document | Skipped:
        """One page as an article, or skipped with its reason (and itself, for --keep-dropped)."""
        if page.page_id is None or not 0 <= page.page_id <= MAX_PAGE_ID:
            return Skipped("invalid_page_id")
        meta = {"title": page.title, "lang": lang, "page_id": page.page_id, "url": article_url(lang, page.title)}
        doc = Document(f"{lang}wiki/{page.page_id}", page.text, self.name, meta)
        if page.namespace != 0:
            return Skipped("not_main_namespace", doc)
        if page.redirect or REDIRECT_TEXT.match(page.text):
            return Skipped("redirect", doc)
        if page.oversized or _utf8_longer_than(page.text, MAX_PAGE_BYTES):
            return Skipped("page_too_large", doc)
        if not page.text.strip():
            return Skipped("empty_page", doc)
        doc.meta["cited_urls"] = cited_urls(page.text)
        return doc

    def _read_parquet(self, path: str) -> Iterator[Document | Skipped]:
        lang = language_of(path)
        if not lang:
            raise InputError(path, "cannot tell the language: expected a folder named <date>.<lang>")
        if not self._selected(lang):
            yield Skipped("language_not_selected")
            return
        try:
            with open_binary(path) as f:
                table = pq.ParquetFile(f)
                missing = {"id", "title", "text"} - set(table.schema_arrow.names)
                if missing:
                    raise InputError(path, f"not the wikimedia/wikipedia layout (missing {sorted(missing)})")
                columns = [c for c in ("id", "url", "title", "text") if c in table.schema_arrow.names]
                for batch in table.iter_batches(batch_size=1024, columns=columns):
                    yield from self._parquet_rows(batch.to_pydict(), lang)
        except pa.ArrowInvalid as e:
            raise InputError(path, f"not a readable parquet file ({e})") from None

    def _parquet_rows(self, rows: dict[str, list], lang: str) -> Iterator[Document | Skipped]:
        for i, raw_id in enumerate(rows["id"]):
            text, title = rows["text"][i], rows["title"][i]
            page_id = _parquet_id(raw_id)
            if page_id is None:
                yield Skipped("invalid_page_id")
                continue
            if not isinstance(text, str) or not text.strip():
                yield Skipped("empty_page")
                continue
            url = rows["url"][i] if "url" in rows and rows["url"][i] else article_url(lang, title or "")
            meta = {"title": title or "", "lang": lang, "page_id": page_id, "url": url, "format": "plain"}
            yield Document(f"{lang}wiki/{page_id}", text, self.name, meta)


def _utf8_longer_than(text: str, limit: int) -> bool:
    # A character is 1 to 4 bytes: the text is encoded only when its length alone cannot tell.
    if len(text) > limit:
        return True
    return len(text) * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit


def _parquet_id(value: object) -> int | None:
    """wikimedia/wikipedia writes ids as strings; a null or non-number id is not a page id."""
    if isinstance(value, int):
        page_id: int | None = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        page_id = int(value.strip())
    else:
        page_id = None
    return page_id if page_id is not None and 0 <= page_id <= MAX_PAGE_ID else None
