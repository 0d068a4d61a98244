"""Sample CommonCrawl input: WET and WARC files (per-record gzip members, as CommonCrawl
writes them) with pages built to give every stage something to drop:

- articles of several sites sharing navigation and footer lines ("Copyright 2019 ..." and
  "Copyright 2020 ..." normalise alike) for line dedup, and pages made only of them;
- near-empty pages (under 300 characters) for the length filter;
- German and French pages for language id;
- keyword spam and word salad for the perplexity buckets and the reference classifier;
- one page with invalid UTF-8, one record with a broken WARC header, a file cut short in
  the middle of a gzip member, a non-HTML and a 404 response in the WARC file.

Beside them, `reference/wikipedia.jsonl` holds encyclopedia-like pages (and short talk-page
notes, under the classifier's 1000-character minimum) standing in for
Wikipedia when the perplexity LM and the reference classifier are trained on sample data
(`pipeline models lm` and `pipeline models classifier` find it by default).
"""

from __future__ import annotations

import gzip
import json
import random
import uuid
from pathlib import Path

from pipeline.common.generated import mark_generated
from sources.samples.text import paragraph, sentence

SITES = ["dailyharbour.example", "valleynews.example", "oldtownherald.example"]
NAV = {
    "dailyharbour.example": ["Home | News | Sport | Culture | Contact", "Subscribe to our newsletter"],
    "valleynews.example": ["Home | Local | Weather | Events | About us", "Follow us on social media"],
    "oldtownherald.example": ["Front page | Politics | Arts | Letters", "Log in | Register"],
}
FOOTER = {
    "dailyharbour.example": "© {year} Daily Harbour Media. All rights reserved.",
    "valleynews.example": "Copyright © {year} Valley News Group. All rights reserved.",
    "oldtownherald.example": "© {year} The Old Town Herald · Privacy policy · Terms of use",
}

# The words of the German and French pages (for language id), by part of a sentence and language.
SUBJECTS = {
    "de": ["der Fluss", "die kleine Stadt", "das alte Museum", "unsere Mannschaft", "die Regierung",
           "ein junger Ingenieur", "die Schule", "der Bahnhof", "die Bibliothek", "der Bauer"],
    "fr": ["la rivière", "le petit village", "la vieille bibliothèque", "notre équipe", "le musée",
           "un jeune ingénieur", "le conseil municipal", "un agriculteur", "l'école", "le port"],
}
VERBS = {
    "de": ["baute", "beschrieb", "besuchte", "eröffnete", "untersuchte", "reparierte", "feierte"],
    "fr": ["a construit", "a décrit", "a visité", "a ouvert", "a étudié", "a réparé", "a célébré"],
}
OBJECTS = {
    "de": ["eine neue Brücke", "das nördliche Tal", "mehrere seltene Bücher", "das jährliche Fest", "eine genaue Karte",
           "die alten Mauern", "den öffentlichen Park", "einen langen Bericht"],
    "fr": ["un nouveau pont", "la vallée du nord", "plusieurs livres rares", "la fête annuelle", "une carte détaillée",
           "les anciens murs", "le jardin public", "un long rapport"],
}
TAILS = {
    "de": ["im Frühling jenes Jahres", "nach einer langen Debatte", "mit Hilfe vieler Freiwilliger",
           "vor dem ersten Schnee", "während der Sommermonate", "trotz des starken Regens"],
    "fr": ["au printemps de cette année", "après un long débat", "avec l'aide de nombreux bénévoles",
           "avant la première neige", "pendant les mois d'été", "malgré la forte pluie"],
}
SPAM_WORDS = ["cheap", "best", "price", "buy", "now", "discount", "casino", "bonus", "free", "online",
              "loans", "pills", "deal", "click", "win", "offer", "shipping", "replica", "watches", "viagra"]
PLACES = ["Northbridge", "Eastmoor", "Westfield", "Lakeside", "Highcliff", "Redwater", "Stonehaven", "Ashford"]
KINDS = ["market town", "river port", "mountain village", "university city", "fishing harbour"]
REGIONS = ["the northern province", "the eastern lowlands", "the central valley", "the western coast"]
FORUM_OPENERS = ["honestly i think", "lol i guess", "tbh my feeling is", "omg i swear", "imo", "thanks but i reckon"]
FORUM_TOPICS = ["the new update", "my phone", "this game", "the last patch", "my laptop", "the season finale"]
FORUM_VERDICTS = ["is totally broken", "is way better now", "kinda sucks", "works fine for me", "is so overrated",
                  "crashed again"]
FORUM_TAILS = ["anyway thanks for reading", "just my two cents", "cant wait for the next one", "whatever lol",
               "does anyone else have this", "fr fr"]


def _sentence_from(rng: random.Random, *parts: list[str]) -> str:
    words = " ".join(rng.choice(p) for p in parts)
    return words[0].upper() + words[1:] + "."


def foreign(rng: random.Random, lang: str, sentences: int) -> str:
    """`sentences` sentences in `lang` ("de" or "fr")."""
    parts = (SUBJECTS[lang], VERBS[lang], OBJECTS[lang], TAILS[lang])
    return " ".join(_sentence_from(rng, *parts) for _ in range(sentences))


def encyclopedic(rng: random.Random) -> str:
    """A Wikipedia-like page: a lead sentence, then prose paragraphs."""
    place = rng.choice(PLACES)
    lead = (f"{place} is a {rng.choice(KINDS)} in {rng.choice(REGIONS)}. "
            f"It was first recorded in {rng.randint(1100, 1900)} and had a population of "
            f"{rng.randint(1000, 90000)} at the last census.")
    return "\n".join([lead] + [paragraph(rng, rng.randint(4, 7)) for _ in range(rng.randint(3, 5))])


def forum_post(rng: random.Random, sentences: int) -> str:
    """Chatty forum English: fluent for a language model that has seen such text, and nothing
    like a reference page for the classifier."""
    return " ".join(_sentence_from(rng, FORUM_OPENERS, FORUM_TOPICS, FORUM_VERDICTS, FORUM_TAILS)
                    for _ in range(sentences))


def article_page(rng: random.Random, site: str) -> str:
    """An English article between its site's menu and footer. As on real pages (all but 9 of the
    130 real CommonCrawl pages of ../shared/realdata hold a character past ASCII), the text is
    not pure ASCII: its first paragraph opens with a quoted sentence in curly quotes and an em
    dash, and the footer says ©, so the normalisers' non-ASCII paths run on the sample."""
    year = rng.choice([2018, 2019, 2020, 2021])
    body = [sentence(rng).rstrip(".")] + [paragraph(rng, rng.randint(3, 6)) for _ in range(rng.randint(2, 4))]
    quoted, _, rest = body[1].partition(". ")
    body[1] = f"\u201c{quoted}\u201d \u2014 {rest}" if rest else f"\u201c{quoted}\u201d"
    return "\n".join(NAV[site] + body + [FOOTER[site].format(year=year)])


def spam_page(rng: random.Random) -> str:
    lines = [" ".join(rng.choice(SPAM_WORDS) for _ in range(rng.randint(12, 25))) for _ in range(rng.randint(6, 10))]
    return "\n".join(lines)


def word_salad_page(rng: random.Random) -> str:
    words = " ".join(paragraph(rng, 4) for _ in range(3)).split()
    rng.shuffle(words)
    return "\n".join(" ".join(words[i : i + 20]) for i in range(0, len(words), 20))


def near_empty_page(rng: random.Random) -> str:
    return rng.choice(["Page not found.", "Coming soon: " + sentence(rng), "Loading...", sentence(rng)])


def sample_pages(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """(url, text) of `count` pages in a realistic mix (about half good English articles)."""
    pages = []
    for n in range(count):
        site = rng.choice(SITES)
        roll = rng.random()
        if roll < 0.45:
            text = article_page(rng, site)
        elif roll < 0.55:
            text = "\n".join(forum_post(rng, rng.randint(2, 3)) for _ in range(rng.randint(3, 4)))
        elif roll < 0.60:
            text = "\n".join(NAV[site] + [FOOTER[site].format(year=rng.choice([2019, 2020]))])
        elif roll < 0.67:
            text = near_empty_page(rng)
        elif roll < 0.74:
            text = foreign(rng, "de", rng.randint(8, 14))
        elif roll < 0.81:
            text = foreign(rng, "fr", rng.randint(8, 14))
        elif roll < 0.90:
            text = spam_page(rng)
        else:
            text = word_salad_page(rng)
        pages.append((f"https://{site}/{n:05d}-{rng.getrandbits(32):08x}.html", text))
    return pages


# --- WARC encoding -------------------------------------------------------------------------


def _record_id(rng: random.Random) -> str:
    return f"<urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}>"


def warc_record(rng: random.Random, kind: str, url: str | None, body: bytes, content_type: str,
                date: str = "2020-02-17T10:12:31Z", payload_type: str | None = None) -> bytes:
    head = ["WARC/1.0", f"WARC-Type: {kind}"]
    if url:
        head.append(f"WARC-Target-URI: {url}")
    head += [f"WARC-Date: {date}", f"WARC-Record-ID: {_record_id(rng)}", f"Content-Type: {content_type}"]
    if payload_type:  # CommonCrawl's WARC-Identified-Payload-Type (the detected MIME type)
        head.append(f"WARC-Identified-Payload-Type: {payload_type}")
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body + b"\r\n\r\n"


def write_members(path: Path, records: list[bytes]) -> None:
    """One gzip member per record, as CommonCrawl does (so a reader can seek to any record)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for record in records:
            f.write(gzip.compress(record, compresslevel=6, mtime=0))


def wet_records(rng: random.Random, pages: list[tuple[str, str]]) -> list[bytes]:
    """WET records as Common Crawl writes them: the page title is the first line of the text."""
    info = warc_record(rng, "warcinfo", None, b"isPartOf: CC-MAIN-sample\r\n", "application/warc-fields")
    return [info] + [warc_record(rng, "conversion", url, f"{_title(url)}\n{text}".encode(), "text/plain")
                     for url, text in pages]


def _title(url: str) -> str:
    site, page = url.split("/")[2], url.rsplit("/", 1)[1]
    return f"{page.split('-')[0]} - {site}"


def html_page(title: str, text: str, site: str) -> str:
    paragraphs = "".join(f"<p>{line}</p>\n" for line in text.split("\n"))
    nav = "".join(f"<li><a href='/'>{item}</a></li>" for item in NAV[site][0].split(" | "))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<script>var tracking = 1;</script></head><body><nav><ul>{nav}</ul></nav>"
            f"<main><article><h1>{title}</h1>\n{paragraphs}</article></main>"
            f"<footer><p>{FOOTER[site].format(year=2020)}</p></footer></body></html>")


def http_response(body: bytes, content_type: str, status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def warc_records(rng: random.Random, pages: list[tuple[str, str]]) -> list[bytes]:
    records = [warc_record(rng, "warcinfo", None, b"isPartOf: CC-MAIN-sample\r\n", "application/warc-fields")]
    for url, text in pages:
        site = url.split("/")[2]
        lines = text.split("\n")
        html = html_page(lines[0][:60], "\n".join(lines), site)
        records.append(warc_record(rng, "request", url, f"GET {url} HTTP/1.1\r\n\r\n".encode(), "application/http"))
        payload = http_response(html.encode(), "text/html; charset=utf-8")
        records.append(warc_record(rng, "response", url, payload, "application/http; msgtype=response",
                                   payload_type="text/html"))
    return records


def write(folder: Path, seed: int) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(2):
        records = wet_records(rng, sample_pages(rng, 120))
        if number == 0:
            # One page with invalid UTF-8 and one record whose header is broken.
            bad_text = ("Caf\xe9 " + paragraph(rng, 6)).encode("latin-1")
            records.insert(3, warc_record(rng, "conversion", "https://latin1.example/", bad_text, "text/plain"))
            records.insert(5, b"WARC/1.0\r\nWARC-Type conversion\r\nContent-Length: many\r\n\r\nlost text\r\n\r\n")
        write_members(folder / f"CC-MAIN-sample-{number:05d}.warc.wet.gz", records)

    # A download cut short: the gzip member of its 8th page ends early.
    records = wet_records(rng, sample_pages(rng, 10))
    cut = folder / "CC-MAIN-sample-00002.warc.wet.gz"
    write_members(cut, records)
    offset = sum(len(gzip.compress(r, compresslevel=6, mtime=0)) for r in records[:8])
    cut.write_bytes(cut.read_bytes()[: offset + 40])

    pages = [(url, text) for url, text in sample_pages(rng, 40)]
    records = warc_records(rng, pages)
    image = http_response(b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png")
    records.append(warc_record(rng, "response", "https://valleynews.example/logo.png", image,
                               "application/http; msgtype=response"))
    missing = http_response(b"<html><body>Not found</body></html>", "text/html", "404 Not Found")
    records.append(warc_record(rng, "response", "https://valleynews.example/gone", missing,
                               "application/http; msgtype=response"))
    write_members(folder / "CC-MAIN-sample-00000.warc.gz", records)

    # Reference pages, plus short talk-page notes: the language model learns those too, but
    # the classifier only takes reference pages of 1000+ characters, so chatty forum pages
    # score a fine perplexity and still look nothing like a reference page.
    texts = [encyclopedic(rng) for _ in range(300)] + [forum_post(rng, rng.randint(3, 5)) for _ in range(150)]
    reference = [json.dumps({"id": f"ref-{i}", "text": text}) for i, text in enumerate(texts)]
    (folder / "reference").mkdir(exist_ok=True)
    (folder / "reference" / "wikipedia.jsonl").write_text("\n".join(reference) + "\n")
    mark_generated(folder, ["CC-MAIN-sample-00000.warc.wet.gz", "CC-MAIN-sample-00001.warc.wet.gz",
                            "CC-MAIN-sample-00002.warc.wet.gz", "CC-MAIN-sample-00000.warc.gz",
                            "reference/wikipedia.jsonl"])
