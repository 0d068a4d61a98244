"""The external URLs an article cites, read from its wikitext, and the URL form they are
matched in.

LLaMA's CommonCrawl classifier (and RedPajama's rebuild) took as reference pages the web
pages cited by Wikipedia. The cited URLs are those of references and external links:
bracketed links (`[https://example.org/a Title]`), the `url=` / `chapter-url=` parameters of
citation templates (`{{cite web |url=...}}`), and bare URLs. Archive copies (`archive-url=`)
are the same page at another address and are left out, as are links into Wikimedia's own
sites.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# A URL runs to white space or a character wikitext uses as markup.
_URL = re.compile(r"(?:https?:)?//[^\s\[\]<>{}|\"']+", re.IGNORECASE)
_ARCHIVE_PARAMETER = re.compile(r"archive-?url\s*=\s*$", re.IGNORECASE)
_TRAILING = ".,;:!?)'"
_WIKIMEDIA = re.compile(r"(?:^|\.)(?:wikipedia|wikimedia|wikidata|wiktionary|wikisource|wikiquote|wikibooks|"
                        r"wikinews|wikiversity|wikivoyage|mediawiki)\.org$")


def cited_urls(wikitext: str) -> list[str]:
    """External URLs of `wikitext` in order of first appearance, each once."""
    found: dict[str, None] = {}
    for match in _URL.finditer(wikitext):
        before = wikitext[max(0, match.start() - 40) : match.start()]
        if _ARCHIVE_PARAMETER.search(before):
            continue
        url = match.group(0).rstrip(_TRAILING)
        if url.startswith("//"):
            url = "https:" + url
        host = urlsplit(url).hostname or ""
        if "." not in host or _WIKIMEDIA.search(host):
            continue
        found.setdefault(url, None)
    return list(found)


def url_key(url: str) -> str:
    """The form two URLs of one page share: no scheme, no `www.`, host lower-cased, no
    fragment, no trailing slash ("https://www.Example.org/a/#top" -> "example.org/a")."""
    parts = urlsplit(url.strip().strip("<>"))
    host = (parts.hostname or "").lower().removeprefix("www.")
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{path}{query}"
