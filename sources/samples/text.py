"""Generated English-like prose for samples and tests: a fixed vocabulary and simple grammar,
so that the text is fluent enough for language id and perplexity models to tell apart."""

from __future__ import annotations

import random

SUBJECTS = ["the river", "a small village", "the old library", "our team", "the museum", "a young engineer",
            "the committee", "the city council", "a local farmer", "the research group", "the orchestra",
            "the railway company", "a travelling merchant", "the school", "the harbour", "the garden"]
VERBS = ["built", "described", "visited", "opened", "studied", "repaired", "announced", "measured",
         "painted", "recorded", "expanded", "protected", "celebrated", "designed", "explored", "reported"]
OBJECTS = ["a new bridge", "the northern valley", "several rare books", "the annual festival",
           "a detailed map", "the ancient walls", "a modern laboratory", "the winter harvest",
           "a long report", "the coastal road", "three wooden boats", "the public park",
           "a collection of letters", "the mountain pass", "an early telescope", "the stone tower"]
TAILS = ["in the spring of that year", "after a long debate", "with help from many volunteers",
         "before the first snow", "during the summer months", "despite the heavy rain",
         "to the surprise of everyone", "for the first time", "over several decades",
         "with great care", "near the end of the century", "in a quiet ceremony"]


def sentence(rng: random.Random) -> str:
    return f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TAILS)}."


def paragraph(rng: random.Random, sentences: int = 5) -> str:
    return " ".join(sentence(rng) for _ in range(sentences))


def document(rng: random.Random, paragraphs: int = 3, sentences: int = 5) -> str:
    return "\n".join(paragraph(rng, sentences) for _ in range(paragraphs))
