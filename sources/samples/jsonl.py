"""Sample input of the passthrough source: JSON lines, a few of them broken on purpose."""

from __future__ import annotations

import json
import random
from pathlib import Path

from sources.samples.text import document


def write(folder: Path, seed: int) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for part in range(2):
        lines = [json.dumps({"id": f"p{part}-{i}", "text": document(rng, 2)}) for i in range(20)]
        lines.insert(5, "{not json")
        lines.insert(9, json.dumps({"id": "empty", "text": ""}))
        (folder / f"part-{part}.jsonl").write_text("\n".join(lines) + "\n")
