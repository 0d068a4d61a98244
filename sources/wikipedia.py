"""Wikipedia: MediaWiki pages-articles XML dumps (or the Hugging Face wikimedia/wikipedia
parquet layout) to plain-text articles.

Inputs: `<lang>wiki-<date>-pages-articles*.xml.bz2` (multistream too) or `.xml`, and
`<date>.<lang>/*.parquet` folders of wikimedia/wikipedia (id, url, title, text; already
plain text). The language comes from the dump name (`enwiki-...`, or the dump's
`<dbname>`) or the parquet folder name; by default the paper's 20 languages are kept and a
dump of another language is skipped with a counted reason.

Reader: main namespace only (`ns` 0), redirects skipped, each skip counted. Stages: wikitext
cleaning (mwparserfromhell), then a minimum length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.common.errors import InputError
from pipeline.engine.document import Document, Skipped
from pipeline.engine.source import Source, SourceConfig
from pipeline.engine.stage import Stage
from pipeline.filters.min_chars import MinChars
from pipeline.formats.files import open_binary
from pipeline.formats.mediawiki import DumpError, SiteInfo, iter_pages
from pipeline.text.wikitext import clean_wikitext

# LLaMA paper, section 2: the June-August 2022 dumps of these 20 languages.
PAPER_LANGUAGES = ["bg", "ca", "cs", "da", "de", "en", "es", "fr", "hr", "hu",
                   "it", "nl", "pl", "pt", "ro", "ru", "sl", "sr", "sv", "uk"]
DUMP_NAME = re.compile(r"^([a-z][a-z0-9_-]*?)wiki-")
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
    min_chars: int = 1  # articles shorter than this after cleaning are dropped as "too_short"


class CleanWikitext(Stage):
    """Wikitext to plain text (see pipeline/text/wikitext.py); an article left empty is dropped."""

    name = "clean_wikitext"

    def process(self, doc: Document) -> Document | str:
        # "format" only travels from the reader to here and is never written: parquet rows
        # (wikimedia/wikipedia) are plain text already and must not be parsed as wikitext.
        if doc.meta.pop("format", None) == "plain":
            return doc
        doc.text = clean_wikitext(doc.text)
        return doc if doc.text else "empty_after_cleaning"


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


class Wikipedia(Source):
    name = "wikipedia"
    config_class = WikipediaConfig
    patterns = ("**/*wiki-*pages-articles*.xml.bz2", "**/*wiki-*pages-articles*.xml", "**/*.parquet")

    def fields(self) -> list[pa.Field]:
        return [
            pa.field("title", pa.string()),
            pa.field("lang", pa.string()),
            pa.field("page_id", pa.int64()),
            pa.field("url", pa.string()),
        ]

    def stages(self) -> list[Stage]:
        return [CleanWikitext(), MinChars(self.config.min_chars)]

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
        site = SiteInfo()
        pages_seen = 0
        with open_binary(path) as stream:
            try:
                for page in iter_pages(stream, site):
                    pages_seen += 1
                    if not lang:
                        lang = DUMP_NAME.match(site.dbname + "-").group(1) if DUMP_NAME.match(site.dbname + "-") else ""
                        if not lang:
                            raise DumpError("unknown_language", "neither the file name nor <dbname> names the wiki")
                        if not self._selected(lang):
                            yield Skipped("language_not_selected")
                            return
                    if page.namespace != 0:
                        yield Skipped("not_main_namespace")
                    elif page.redirect or REDIRECT_TEXT.match(page.text):
                        yield Skipped("redirect")
                    elif not page.text.strip():
                        yield Skipped("empty_page")
                    else:
                        meta = {"title": page.title, "lang": lang, "page_id": page.page_id,
                                "url": article_url(lang, page.title)}
                        yield Document(f"{lang}wiki/{page.page_id}", page.text, self.name, meta)
            except DumpError as e:
                if pages_seen == 0:
                    raise InputError(path, f"{e.reason} ({e.detail})" if e.detail else e.reason) from None
                # Pages already read are kept; the unreadable rest counts once, with its reason.
                yield Skipped(e.reason)

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
                for batch in table.iter_batches(batch_size=1024, columns=[c for c in ("id", "url", "title", "text")
                                                                          if c in table.schema_arrow.names]):
                    rows = batch.to_pydict()
                    for i, page_id in enumerate(rows["id"]):
                        text, title = rows["text"][i], rows["title"][i]
                        if not isinstance(text, str) or not text.strip():
                            yield Skipped("empty_page")
                            continue
                        url = rows["url"][i] if "url" in rows and rows["url"][i] else article_url(lang, title or "")
                        meta = {"title": title or "", "lang": lang, "page_id": int(page_id), "url": url,
                                "format": "plain"}
                        yield Document(f"{lang}wiki/{page_id}", text, self.name, meta)
        except pa.ArrowInvalid as e:
            raise InputError(path, f"not a readable parquet file ({e})") from None
