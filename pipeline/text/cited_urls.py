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

# A URL runs to white space or a character wikitext uses as markup. It is found by its `//`
# (a pattern that opens with an optional scheme is tried at every character of the page, five
# times slower), then the scheme before it is taken in.
_URL_FROM_SLASHES = re.compile(r"//[^\s\[\]<>{}|\"']+")
_SCHEME = re.compile(r"https?:", re.IGNORECASE)
_ARCHIVE_PARAMETER = re.compile(r"archive-?url\s*=\s*$", re.IGNORECASE)
_TRAILING = ".,;:!?)'"
_WIKIMEDIA = re.compile(r"(?:^|\.)(?:wikipedia|wikimedia|wikidata|wiktionary|wikisource|wikiquote|wikibooks|"
                        r"wikinews|wikiversity|wikivoyage|mediawiki)\.org$")


def cited_urls(wikitext: str) -> list[str]:
    """External URLs of `wikitext` in order of first appearance, each once."""
    found: dict[str, None] = {}
    for match in _URL_FROM_SLASHES.finditer(wikitext):
        start = _url_start(wikitext, match.start())
        before = wikitext[max(0, start - 40) : start]
        if _ARCHIVE_PARAMETER.search(before):
            continue
        url = wikitext[start : match.end()].rstrip(_TRAILING)
        if url.startswith("//"):
            url = "https:" + url
        host = urlsplit(url).hostname or ""
        if "." not in host or _WIKIMEDIA.search(host):
            continue
        found.setdefault(url, None)
    return list(found)


def _url_start(text: str, slashes: int) -> int:
    """Where the URL whose `//` is at `slashes` starts: at its `http:` or `https:` when one is
    right before. (That scheme cannot belong to the URL before: a URL runs to a character no
    scheme holds.)"""
    for length in (6, 5):
        if slashes >= length and _SCHEME.fullmatch(text, slashes - length, slashes):
            return slashes - length
    return slashes


def url_key(url: str) -> str:
    """The form two URLs of one page share: no scheme, no `www.`, host lower-cased, no
    fragment, no trailing slash ("https://www.Example.org/a/#top" -> "example.org/a")."""
    parts = urlsplit(url.strip().strip("<>"))
    host = (parts.hostname or "").lower().removeprefix("www.")
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{path}{query}"
