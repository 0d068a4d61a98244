"""Every bench in bench/ runs to its tables on a fresh clone, at a tiny size: a bench that crashes
(a peer's moved module, a comparison that times nothing) tells nothing. The figures themselves
are the benches' to print, never asserted here (speed targets live in the benches)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO, subprocess_env

pytestmark = pytest.mark.slow

RATIO = r"\d+\.\d\d"


def bench(*argv: str) -> str:
    """Run `bench/ARGV` with this interpreter; its standard output (exit 0 or the test fails)."""
    done = subprocess.run([sys.executable, *argv], cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.stdout


def rows(output: str, title: str) -> list[list[str]]:
    """The body rows of the Markdown table under the heading that starts with `title`."""
    section = output.split(f"\n## {title}", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


def test_engine_bench_compares_the_same_bytes_fresh_and_warm() -> None:
    out = bench("bench/engine.py", "--documents", "4000", "--repeat", "1", "--workers", "1", "2")
    engine = ["herd engine, 1 worker(s)", "herd engine, 2 worker(s)"]
    for mode, bare in [("each run in a new process", ["bare loop (same bytes, same writer thread)"]),
                       ("every run in this bench's process", ["bare loop (same bytes, same writer thread)",
                                                              "bare loop in a worker forked from this process"])]:
        table = rows(out, f"Engine overhead: 4,000 documents of 2 KB, no-op stage; {mode}")
        assert [row[0] for row in table] == bare + engine
        assert all(re.fullmatch(RATIO, row[-1]) for row in table)
        assert table[len(bare) - 1][-1] == "1.00"  # the reference of the ratios: the last bare row


def test_commoncrawl_bench_times_the_run_against_the_library_calls_it_makes() -> None:
    out = bench("bench/commoncrawl.py", "--pages", "300", "--warc-pages", "20", "--hashes", "2000", "--repeats", "1",
                "--no-datatrove", "--real", "")
    names = [row[0] for row in rows(out, "one WET file, 300 pages")]
    for mode in ["", " (in this bench's process)"]:  # each in a new process, then both in the bench's
        assert "end to end: run_source, 1 worker" + mode in names
        assert "bare: the library calls herd makes, on its arguments" + mode in names
    assert re.search(rf"end to end / the library calls it makes \(median of the rounds' ratios\): {RATIO} \(target "
                     rf">= 0.85\), each in a new process; {RATIO} both in this bench's process", out)
    by_pass = re.search(r"the worker's CPU by pass \(timings.json, medians\): ([\d.]+) \+ ([\d.]+) \+ ([\d.]+) = "
                        r"([\d.]+) s", out)
    assert by_pass, out  # CommonCrawl's three passes, each with some CPU
    assert all(float(seconds) > 0 for seconds in by_pass.groups())
    assert rows(out, "one WARC file, 20 HTML pages")[0][1] == "20"


def test_tokenizer_train_scale_and_sources_benches_print_their_tables() -> None:
    out = bench("bench/tokenizer.py", "--mb", "0.5", "--repeats", "1", "--vocab-size", "2000")
    assert [row[0] for row in rows(out, "Encoding")][-2:] == ["tokenizer encode, 1 worker(s)",
                                                            "tokenizer encode, 2 worker(s)"]
    out = bench("bench/train.py", "--steps", "2", "--warmup", "1", "--rounds", "1", "--vocab", "2242")
    assert rows(out, "CPU: our training step")[0][0].startswith("tiny cpu fp32 vocab 2242")
    out = bench("bench/scale.py", "--sources", "c4", "--factors", "1", "2", "--base", "1", "--no-real", "--rounds", "1",
                "--plan")
    assert [row[0] for row in rows(out, "Scaling")] == ["c4", "c4"]
    out = bench("bench/sources.py", "--sources", "c4", "--copies", "1", "--rounds", "1", "--skip-near-dedup")
    assert rows(out, "Sources")[0][0] == "c4"
    assert rows(out, "C4 quality filter")[0][0] == "herd C4Quality"


def test_wikipedia_bench_measures_the_real_dumps_or_says_they_are_absent() -> None:
    out = bench("bench/wikipedia.py", "--rounds", "1")
    if (REPO / "../shared/realdata/wikipedia").is_dir():
        table = rows(out, "Wikipedia, ")
        assert [row[0] for row in table] == ["herd: reader + stages", "bare: bz2 + lxml + mwparserfromhell"]
        assert re.search(rf"bare CPU / herd CPU, median of the rounds: {RATIO}", out)
    else:
        assert "the real Wikipedia dumps are absent, nothing measured" in out


def test_hostile_text_and_near_dedup_benches_print_their_tables() -> None:
    out = bench("bench/hostile_text.py", "--rounds", "1")
    assert len(rows(out, "Hostile text inputs")) >= 8
    out = bench("bench/near_dedup.py", "--pairs", "2", "--words", "1000", "--rounds", "1", "--inputs", "0.05")
    assert [row[0] for row in rows(out, "source throughput, 1 worker")] == ["wikipedia", "books", "arxiv"]
