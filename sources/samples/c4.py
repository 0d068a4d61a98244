"""Sample input of C4: allenai/c4-style json.gz files with pages for every quality rule.

Good pages are generated prose; bad ones trip one rule each (lorem ipsum, a curly bracket,
too few sentences) or carry lines a rule removes (menus without punctuation, javascript and
cookie notices, citation markers, an over-long word). One line is malformed JSON, one is not
UTF-8, and one file is a truncated gzip archive.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Callable

from sources.samples.text import paragraph, sentence

FILES = 2
PAGES_PER_FILE = 40


def good_page(rng: random.Random) -> str:
    return "\n".join(paragraph(rng, rng.randint(2, 4)) for _ in range(rng.randint(2, 4)))


# What each bad kind of page adds to (or makes of) a good page's body.
BAD_PAGES: dict[str, Callable[[random.Random, str], str]] = {
    # navigation lines: no terminal punctuation, too few words
    "menu": lambda rng, body: f"Home\nAbout us | Contact\n{body}\nShare this page",
    "javascript": lambda rng, body: f"{body}\nPlease enable JavaScript in your browser to see the map.",
    "cookies": lambda rng, body: (f"This website uses cookies to improve your experience.\n{body}\n"
                                  "Read our privacy policy for details."),
    "citations": lambda rng, body: (body.replace(". ", ".[1] ", 2)
                                    + "\nThe archive is open to visitors every day.[edit]"),
    "long_word": lambda rng, body: f"{body}\nThe token {'x' * 1200} was pasted here by mistake.",
    "lorem_ipsum": lambda rng, body: f"{body}\nLorem ipsum dolor sit amet, placeholder text for the template.",
    "curly_bracket": lambda rng, body: f"{body}\nThe style rule body {{ color: red; }} stayed in the page.",
    "few_sentences": lambda rng, body: f"{sentence(rng)} {sentence(rng)}\nClick here",
}


def page(rng: random.Random, kind: str) -> str:
    """A page of `kind`: good, or the name of the rule it exercises."""
    body = good_page(rng)
    return BAD_PAGES[kind](rng, body) if kind in BAD_PAGES else body


KINDS = ["good"] * 6 + list(BAD_PAGES)


def write(folder: Path, seed: int) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(FILES):
        lines: list[bytes] = []
        for i in range(PAGES_PER_FILE):
            kind = KINDS[i % len(KINDS)]
            row = {
                "text": page(rng, kind),
                "timestamp": f"2019-04-{1 + i % 28:02d}T12:{i % 60:02d}:00Z",
                "url": f"https://site{rng.randint(1, 999)}.example.org/{kind}/{i}",
            }
            lines.append(json.dumps(row).encode())
        lines.insert(7, b'{"text": "an unfinished line')
        lines.insert(11, b'{"text": "caf\xe9 au lait", "url": "https://latin1.example.org/"}')
        name = f"c4-train.{f:05d}-of-{FILES + 1:05d}.json.gz"
        (folder / name).write_bytes(gzip.compress(b"\n".join(lines) + b"\n", mtime=0))
    # A download cut short: the last file stops in the middle of its gzip stream.
    whole = gzip.compress(b"\n".join(json.dumps({"text": good_page(rng)}).encode() for _ in range(20)), mtime=0)
    (folder / f"c4-train.{FILES:05d}-of-{FILES + 1:05d}.json.gz").write_bytes(whole[: len(whole) // 2])
