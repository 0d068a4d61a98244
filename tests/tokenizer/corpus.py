"""Generated multilingual corpus shards for the tokenizer tests: English-like prose from the
sample generator, plus German, French, Russian, Greek, Chinese and Japanese phrases, numbers and
code with tabs and runs of spaces. Written straight into the engine's shard format."""

from __future__ import annotations

import json
import random
from pathlib import Path

from pipeline.common.files import file_sha256
from pipeline.engine.document import Document
from pipeline.engine.shards import ShardWriter, build_schema, count_rows
from sources.samples.text import paragraph

PHRASES = [
    "Die kleine Stadt liegt am Ufer des Flusses und hat eine alte Brücke.",
    "Grüße aus Köln: wir öffnen das Museum täglich um neun Uhr.",
    "Le jardin est ouvert tous les jours, même pendant l'été très chaud.",
    "Où est la bibliothèque? Elle se trouve près de la gare centrale.",
    "Маленькая деревня стоит на берегу широкой реки.",
    "Привет, как дела? Сегодня в городе открыли новый музей.",
    "Η μικρή πόλη βρίσκεται δίπλα στη θάλασσα.",
    "东京是日本的首都，也是一个很大的城市。",
    "我们明天去图书馆看书，然后去公园散步。",
    "今日は天気がいいので、公園を散歩しました。",
    "El río atraviesa la ciudad y llega al mar en primavera.",
]
CODE = [
    "def area(width, height):\n\treturn width * height\n",
    "for (int i = 0; i < 10; i++) {\n    total += values[i];\n}\n",
    "if x  ==  3:\n        print('three')   # aligned\n",
]

# The held-out test set of decode(encode(x)) == x: scripts, digits, and whitespace runs.
TEST_SET = [
    "The committee measured the coastal road in 1987 and again in 2024.",
    "Grüße aus Köln, Привет мир, 東京は日本の首都です。",
    "  two leading spaces, then a tab\there and\t\ttwo tabs",
    "lines\nand\n\nblank lines\n\n\n  indented line\n",
    "trailing spaces   ",
    "mixed \t \n whitespace \n\t\n end",
    "numbers 12345 and 3.14159 and 1,000,000",
    "code:\n\tdef f(x):\n\t\treturn x  +  1\n",
    "Ελληνικά και Español y Français à côté",
    "🙂 emoji and the rare character 龘 and 𠜎",
    "",
    " ",
    "\n",
]


def document_text(rng: random.Random, language_mix: float = 0.4) -> str:
    parts = []
    for _ in range(rng.randint(2, 5)):
        roll = rng.random()
        if roll < language_mix:
            parts.append(" ".join(rng.choice(PHRASES) for _ in range(rng.randint(1, 3))))
        elif roll < language_mix + 0.1:
            parts.append(rng.choice(CODE))
        else:
            parts.append(paragraph(rng, rng.randint(2, 4)))
        if rng.random() < 0.5:
            parts.append(f"In {rng.randint(1800, 2030)} it cost {rng.randint(0, 99999)} coins, {rng.random():.3f} per unit.")
    return "\n".join(parts)


def write_source(root: Path, source: str, documents: int, seed: int = 0, shard_docs: int | None = None,
                 texts: list[str] | None = None) -> list[str]:
    """Write `documents` generated documents as corpus shards ROOT/<source>/shard-NNNNN.arrow
    plus a manifest like the engine's; returns the texts in order."""
    rng = random.Random(f"{source}:{seed}")
    folder = root / source
    folder.mkdir(parents=True, exist_ok=True)
    texts = texts if texts is not None else [document_text(rng) for _ in range(documents)]
    per_shard = shard_docs or max(1, len(texts))
    shards = []
    for number, start in enumerate(range(0, len(texts), per_shard)):
        writer = ShardWriter(folder, build_schema([]), prefix=f"tmp{number}", batch_rows=64)
        for i, text in enumerate(texts[start:start + per_shard], start):
            writer.write(Document(f"{source}-{i}", text, source))
        (path,) = writer.close()
        final = folder / f"shard-{number:05d}.arrow"
        path.rename(final)
        shards.append({"file": final.name, "documents": count_rows(final), "bytes": final.stat().st_size,
                       "sha256": file_sha256(final)})
    manifest = {"source": source, "documents": len(texts), "bytes": sum(s["bytes"] for s in shards), "shards": shards}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return texts
