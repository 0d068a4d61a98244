"""The report's numbers, read from hand-made corpora and checked against an independent reading
of the same shards (pyarrow, plain Python) and of stats.json."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pipeline.commands.run import run_source
from pipeline.report import facts as facts_module
from pipeline.report.facts import LENGTH_BIN_EDGES, FloatSample, read_source_facts
from sources.jsonl import Jsonl, JsonlConfig

DOCS = {  # id -> text; min_chars 20 drops the three shorter ones
    "a": "x" * 25,
    "b": "é" * 300,  # 600 UTF-8 bytes
    "c": "short",
    "d": "y" * 5000,
    "e": "<script>alert(1)</script>",  # 25 characters: kept, and escaped wherever shown
    "f": "tiny",
    "g": "",
}


def corpus(tmp_path: Path, keep_dropped: bool) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "docs.jsonl").write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in DOCS.items()))
    run_source(Jsonl(JsonlConfig(min_chars=20)), str(raw), str(tmp_path / "corpus"), workers=1, show_progress=False, keep_dropped=keep_dropped)
    return tmp_path / "corpus" / "jsonl"


def texts_of(paths: list[Path]) -> list[str]:
    out = []
    for path in paths:
        with pa.memory_map(str(path)) as source:
            out += pa.ipc.open_stream(source).read_all().column("text").to_pylist()
    return out


def bins_of(texts: list[str]) -> np.ndarray:
    """Per quarter decade of UTF-8 bytes, counted one document at a time."""
    counts = np.zeros(len(LENGTH_BIN_EDGES) - 1, np.int64)
    for text in texts:
        position = math.log10(max(len(text.encode()), 1))
        counts[min(int(position // 0.25), len(counts) - 1)] += 1
    return counts


def test_stages_lengths_bytes_and_examples_match_the_shards_and_stats(tmp_path: Path) -> None:
    folder = corpus(tmp_path, keep_dropped=True)
    facts = read_source_facts(folder, examples_per_reason=2)
    stats = json.loads((folder / "stats.json").read_text())
    assert [(s.name, s.documents_in, s.documents_out, s.dropped) for s in facts.stages] == \
        [(s["name"], s["in"], s["out"], s["dropped"]) for s in stats["stages"]]
    assert (facts.documents_read, facts.documents_kept) == (7, 4)

    kept_texts = texts_of(sorted(folder.glob("shard-*.arrow")))
    dropped_texts = texts_of(sorted((folder / "dropped").glob("shard-*.arrow")))
    assert sorted(kept_texts) == sorted(DOCS[k] for k in "abde")
    assert facts.kept.documents == 4 and facts.kept.text_bytes == 25 + 600 + 5000 + 25
    assert facts.kept.length_counts.tolist() == bins_of(kept_texts).tolist()
    assert facts.dropped is not None and facts.dropped.documents == 3
    assert facts.dropped.length_counts.tolist() == bins_of(dropped_texts).tolist()
    # The drops, by stage and reason, with their bytes: "short" + "tiny" + "".
    assert dict(facts.dropped_bytes) == {("min_chars", "too_short"): 9}
    shown = facts.examples[("min_chars", "too_short")]
    assert len(shown) == 2 and {e.doc_id for e in shown} <= {"c", "f", "g"}


def test_without_keep_dropped_there_is_no_dropped_side(tmp_path: Path) -> None:
    facts = read_source_facts(corpus(tmp_path, keep_dropped=False))
    assert facts.dropped is None and facts.examples == {} and facts.kept.documents == 4


def test_a_float_sample_keeps_every_kth_value_within_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(facts_module, "MAX_SAMPLED", 100)
    sample = FloatSample()
    values = np.arange(1000, dtype=np.float64)
    for chunk in np.array_split(values, 37):  # uneven batches
        sample.add(np.concatenate([chunk, [np.nan]]))  # non-finite values are not values
    kept = sample.array()
    assert len(kept) <= 100
    assert sample.stride == 16  # 1000 values halved until at most 100 are held
    assert kept.tolist() == values[::16].tolist()


def test_columns_with_a_value_per_document_are_no_categories(tmp_path: Path) -> None:
    facts = read_source_facts(corpus(tmp_path, keep_dropped=False))
    facts.kept.categories["license"] = Counter({"mit": 3, "apache-2.0": 1})
    facts.kept.categories["title"] = Counter({"t1": 1, "t2": 1, "t3": 1, "t4": 1})
    assert list(facts.categories()) == ["license"]
