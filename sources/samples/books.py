"""Sample Books input: Project Gutenberg-form plain-text files (with a generated stand-in for
the header, the licence and the footer) under `gutenberg/`, and Books3-style JSON lines under
`books3/`, with near-duplicates on purpose.

Written books: A; A's copy with 5% of its words changed (gutenberg, a near-duplicate); A again
in books3 (a near-duplicate across sub-corpora); B sharing half of A's paragraphs (kept); two
distinct books; a zipped book. Bad: an empty file, a broken zip, a zip with a `../` member,
a malformed JSON line. The prose is generated (sources/samples/text.py templates with
generated names and years, so that books are as distinctive as real ones at the shingle level).
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from pathlib import Path

from sources.samples.text import sentence

SYLLABLES = ["ka", "lo", "mi", "ra", "te", "su", "no", "vi", "da", "re", "po", "an", "el", "is", "or",
             "ul", "be", "ta", "go", "fe", "ni", "sa", "mo", "li", "ve", "du", "ha", "ki", "zo", "me"]
# A generated stand-in for Project Gutenberg's header and licence: same markers and layout,
# none of its text.
HEADER = """The Project Gutenberg eBook of {title}

This sample file stands in for an eBook header. It says who may use the file and where
it came from, in the same place and the same shape as the real header does.

Title: {title}

Author: {author}

Release date: March 3, 2004 [eBook #{number}]

Language: English

*** START OF THE PROJECT GUTENBERG EBOOK {upper} ***

Produced by Sample Volunteers and the Online Proofreading Team.



"""
FOOTER = """



*** END OF THE PROJECT GUTENBERG EBOOK {upper} ***

Updated editions will replace the previous one.

START: FULL LICENSE

THE FULL SAMPLE LICENSE
PLEASE READ THIS BEFORE YOU DISTRIBUTE OR USE THIS WORK

This stand-in licence text has the length and the layout of a real one, so that a cleaner
which keeps it would be caught by the tests. Section 1. General terms of use. Section 2.
Information about the mission. Section 3. Information about the foundation.
"""


def name(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()


FUNCTION_WORDS = ["the", "of", "and", "to", "a", "in", "that", "he", "was", "it", "his", "with", "as", "for", "had",
                  "she", "her", "at", "by", "on", "not", "but", "from", "they", "which", "were", "all", "we"]
_VOCABULARY: list[str] = []
_WEIGHTS: list[float] = []


def _vocabulary() -> tuple[list[str], list[float]]:
    """Function words then 8,000 generated words, with Zipf weights like real prose."""
    if not _VOCABULARY:
        rng = random.Random(12345)
        words = list(FUNCTION_WORDS)
        seen = set(words)
        while len(words) < 8000 + len(FUNCTION_WORDS):
            word = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice([1, 2, 2, 3, 3, 4])))
            if word not in seen:
                seen.add(word)
                words.append(word)
        _VOCABULARY.extend(words)
        _WEIGHTS.extend(1.0 / (rank + 2) for rank in range(len(words)))
    return _VOCABULARY, _WEIGHTS


def book_sentence(rng: random.Random) -> str:
    """A sentence of Zipf-distributed words: as varied at the phrase level as real books,
    which matters to shingle-based near-duplicate detection; one in ten is a template
    sentence of sources/samples/text.py."""
    if rng.random() < 0.1:
        return sentence(rng)
    vocabulary, weights = _vocabulary()
    words = rng.choices(vocabulary, weights, k=rng.randint(6, 18))
    return " ".join(words).capitalize() + rng.choice([".", ".", ".", "?", "!", ";"])


def book_text(rng: random.Random, words: int = 6000) -> str:
    """Paragraphs of generated prose, about `words` words long."""
    paragraphs, count = [], 0
    while count < words:
        p = " ".join(book_sentence(rng) for _ in range(rng.randint(3, 7)))
        paragraphs.append(p)
        count += len(p.split())
    return "\n\n".join(paragraphs)


def change_words(text: str, fraction: float, rng: random.Random) -> str:
    """`text` with `fraction` of its words (paragraph breaks kept) replaced by generated ones."""
    paragraphs = [p.split(" ") for p in text.split("\n\n")]
    positions = [(i, j) for i, p in enumerate(paragraphs) for j in range(len(p))]
    for i, j in rng.sample(positions, round(len(positions) * fraction)):
        paragraphs[i][j] = name(rng).lower()
    return "\n\n".join(" ".join(p) for p in paragraphs)


def share_paragraphs(text: str, fraction: float, rng: random.Random) -> str:
    """A text whose first `fraction` of paragraphs are `text`'s and the rest new."""
    paragraphs = text.split("\n\n")
    keep = round(len(paragraphs) * fraction)
    fresh = book_text(rng, len(text.split())).split("\n\n")
    return "\n\n".join(paragraphs[:keep] + fresh[: len(paragraphs) - keep])


def gutenberg_file(title: str, author: str, number: int, body: str) -> str:
    upper = title.upper()
    return (HEADER.format(title=title, author=author, number=number, upper=upper) + body
            + FOOTER.format(upper=upper))


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            # A fixed date, so that the sample is the same bytes on every run.
            archive.writestr(zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def write(folder: Path, seed: int) -> None:
    rng = random.Random(seed)
    gutenberg, books3 = folder / "gutenberg", folder / "books3"
    gutenberg.mkdir(parents=True, exist_ok=True)
    books3.mkdir(parents=True, exist_ok=True)
    a = book_text(rng)
    books = {
        "pg1001.txt": ("The Alder Valley", a),
        "pg1002.txt": ("The Alder Valley, Second Edition", change_words(a, 0.05, rng)),
        "pg1003.txt": ("Half of the Valley", share_paragraphs(a, 0.5, rng)),
        "pg1004.txt": ("The Stone Tower", book_text(rng)),
    }
    for number, (file_name, (title, body)) in enumerate(books.items(), start=1001):
        (gutenberg / file_name).write_text(gutenberg_file(title, "Sample Author", number, body))
    (gutenberg / "pg1005.zip").write_bytes(
        zipped({"pg1005.txt": gutenberg_file("The Harbour", "Sample Author", 1005, book_text(rng)).encode()}))
    (gutenberg / "pg1006.txt").write_text("")
    (gutenberg / "pg1007.zip").write_bytes(b"PK\x03\x04 not really a zip archive")
    (gutenberg / "pg1008.zip").write_bytes(zipped({"../outside.txt": b"escape", "pg1008.txt": gutenberg_file(
        "The Orchard", "Sample Author", 1008, book_text(rng)).encode()}))
    rows = [
        json.dumps({"title": "The Alder Valley", "text": a}),
        json.dumps({"title": "The Museum", "text": book_text(rng)}),
        "{broken json",
    ]
    (books3 / "books3-part-00.jsonl").write_text("\n".join(rows) + "\n")
