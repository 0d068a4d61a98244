"""Web pages nested 40,000 elements deep: main-content extraction takes time that grows with
the depth (25 s for 40,000 <div>), and the whole text indents nested lists by their depth
(1.6 GB for 40,000 unclosed <ul>). A page nested deeper than MAX_PAGE_DEPTH is dropped as
`html_too_deep` before any extraction, in seconds, and kept under --keep-dropped with its URL and
record id; pages of ordinary depth come out exactly as they do in a run without it."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from pipeline.engine.shards import read_corpus
from sources.samples.commoncrawl import http_response, sample_pages, warc_record, warc_records, write, write_members
from tests.hostile.helpers import assert_balanced, read_drops, run_script

pytestmark = pytest.mark.slow  # each test runs the CLI in subprocesses

DEPTH = 40_000
DEEP_PAGES = {  # url -> body: closed <div>s, and unclosed list items a line each
    "https://divs.example/": "<div>" * DEPTH + "the words at the bottom" + "</div>" * DEPTH,
    "https://lists.example/": "<ul><li>item" * DEPTH,
}


def _deep_pages(rng: random.Random) -> list[bytes]:
    records = []
    for url, body in DEEP_PAGES.items():
        html = f"<html><head><title>Deep {url}</title></head><body>{body}</body></html>"
        payload = http_response(html.encode(), "text/html; charset=utf-8")
        records.append(warc_record(rng, "response", url, payload, "application/http; msgtype=response",
                                   payload_type="text/html"))
    return records


def _pipeline_run(tmp_path: Path, raw: str, out: str) -> tuple[float, dict]:
    start = time.monotonic()
    done = run_script("pipeline", "run", "commoncrawl", "--input", raw, "--corpus", out, "--config", "models.toml",
                      "--workers", "1", "--no-progress", "--keep-dropped", cwd=tmp_path)
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    stats = json.loads((tmp_path / out / "commoncrawl" / "stats.json").read_text())
    assert_balanced(stats)
    return elapsed, stats


def test_a_page_nested_40000_deep_is_dropped_in_seconds_and_other_pages_are_unchanged(tmp_path: Path) -> None:
    write(tmp_path / "sample", seed=0)  # its reference text trains the models
    rng = random.Random(1)
    pages = warc_records(rng, sample_pages(rng, 30))
    write_members(tmp_path / "plain/CC-MAIN-x.warc.gz", pages)
    write_members(tmp_path / "deep/CC-MAIN-x.warc.gz", pages[:5] + _deep_pages(rng) + pages[5:])
    reference = "sample/reference/wikipedia.jsonl"
    # The classifier's negatives are read as a run reads pages: the deep pages are left out there too.
    for kind, *args in (("lm", "--input", reference), ("classifier", "--positives", reference, "--negatives", "deep")):
        done = run_script("pipeline", "models", kind, *args, "--out", "models", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    (tmp_path / "models.toml").write_text('[commoncrawl]\nmodels_dir = "models"\n')

    elapsed, stats = _pipeline_run(tmp_path, "deep", "with_deep")
    assert elapsed < 30, f"{elapsed:.1f} s"  # without the depth bound: minutes, and gigabytes
    assert read_drops(stats) == {"html_too_deep": 2}
    dropped = [(d.meta["url"], d.meta["title"], d.text, d.meta["drop_reason"])
               for d in read_corpus(tmp_path / "with_deep/commoncrawl/dropped") if d.meta["drop_stage"] == "read"]
    assert dropped == [(url, f"Deep {url}", "", "html_too_deep") for url in DEEP_PAGES]

    # Every other page: the same documents, the same counts as a run without the deep page.
    _, plain_stats = _pipeline_run(tmp_path, "plain", "without_deep")
    assert read_drops(plain_stats) == {}
    kept = [(d.id, d.text, d.meta) for d in read_corpus(tmp_path / "with_deep/commoncrawl")]
    assert kept and kept == [(d.id, d.text, d.meta) for d in read_corpus(tmp_path / "without_deep/commoncrawl")]
    assert [s["dropped"] for s in stats["stages"][1:]] == [s["dropped"] for s in plain_stats["stages"][1:]]
