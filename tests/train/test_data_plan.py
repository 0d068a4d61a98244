"""`train data`: the per-source table (exact epochs of the paper's 65b run from its Table 1, in
seconds), its JSON, a trace whose rows are one set per step for any world size and name the
documents each window covers, and bad input as one line with exit 2."""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction
from pathlib import Path

import pytest

from pipeline.corpus.mixture import LLAMA1
from tests.train.token_shards import write_llama1_tokens, write_source
from train.cli import main

PAPER_EPOCHS = {"commoncrawl": "1.10", "c4": "1.06", "github": "0.64", "wikipedia": "2.45", "books": "2.23",
                "arxiv": "1.06", "stackexchange": "1.03"}


def run_data(args: list[str], capsys: pytest.CaptureFixture) -> tuple[str, str]:
    main(["data", *args])
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_65b_at_1_4t_tokens_from_the_papers_table_draws_its_epochs(capsys: pytest.CaptureFixture) -> None:
    out, _ = run_data(["--model", "65b", "--available", "reference", "--json"], capsys)
    plan = json.loads(out)
    steps = 1_400_000_000_000 // (2048 * 2048)  # the 65b preset: 4M-token batches
    sequences = steps * 2048
    assert (plan["steps"], plan["seq_len"], plan["tokens"]) == (steps, 2048, sequences * 2048)
    for row in plan["sources"]:
        share = Fraction(str(LLAMA1.proportions[row["source"]]))
        available = round(LLAMA1.proportions[row["source"]] * 1.4e12 / float(PAPER_EPOCHS[row["source"]]))
        assert row["tokens_available"] == available
        assert row["windows"] == (available - 1) // 2048
        assert abs(row["sequences"] - share * sequences) < 1
        assert row["tokens_drawn"] == row["sequences"] * 2048
        assert row["epochs"] == row["sequences"] / row["windows"]
        assert row["times_each_window"] == [math.floor(row["epochs"]), math.ceil(row["epochs"])]
    table, _ = run_data(["--model", "65b", "--available", "reference"], capsys)
    for source, epochs in PAPER_EPOCHS.items():
        # Ours to four places, rounded to the paper's two.
        line = re.search(rf"^{source} .* (\d\.\d{{4}}) +\d or \d times +{re.escape(epochs)}$", table, re.M)
        assert line is not None, table
        assert f"{float(line.group(1)):.2f}" == epochs


def test_trace_rows_are_one_set_per_step_for_any_world_size_and_name_their_documents(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tokens = tmp_path / "tokens"
    write_llama1_tokens(tokens)  # documents of 48 ids + bos + eos = 50 tokens, ids <source>-<k>
    traces = {}
    for world_size in (1, 2, 4):
        trace = tmp_path / f"trace-{world_size}.jsonl"
        out, err = run_data(["--model", "debug", "--tokens", str(tokens), "--steps", "4", "--batch-tokens", "512",
                             "--world-size", str(world_size), "--trace", str(trace), "--no-progress"], capsys)
        assert "4 steps x 512 tokens" in out and "trace: 64 sequences" in err
        traces[world_size] = [json.loads(line) for line in trace.read_text().splitlines()]
    rows = traces[1]
    assert len(rows) == 4 * 16 and {r["length"] for r in rows} == {33}
    for row in rows:
        first, last = row["start"] // 50, (row["start"] + 32) // 50
        assert row["documents"] == [f"{row['source']}-{k}" for k in range(first, last + 1)]
        assert row["start"] % 32 == 0
    for world_size in (2, 4):
        assert {r["rank"] for r in traces[world_size]} == set(range(world_size))
        assert {r["micro"] for r in traces[world_size]} == set(range(4 // world_size))
        for step in range(4):
            def sequences(found: list[dict]) -> list[tuple[str, int]]:
                return sorted((r["source"], r["start"]) for r in found if r["step"] == step)
            assert sequences(traces[world_size]) == sequences(rows)


def test_shards_without_document_ids_trace_null_documents_with_a_note(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    write_source(tmp_path / "tokens" / "c4", [[5] * 100] * 4, vocab_size=300, with_ids=False)
    mixture = tmp_path / "c4only.toml"
    mixture.write_text("[proportions]\nc4 = 1.0\n")
    trace = tmp_path / "trace.jsonl"
    _, err = run_data(["--mixture", str(mixture), "--model", "debug", "--tokens", str(tmp_path / "tokens"),
                       "--steps", "2", "--trace", str(trace), "--no-progress"], capsys)
    assert err.count("note: token shards without document ids") == 1
    assert {json.loads(line)["documents"] for line in trace.read_text().splitlines()} == {None}


@pytest.mark.parametrize("content, message", [
    ("[1, 2]", "must be a JSON object of source -> tokens available"),
    ('{"c4": 5}', "no tokens for source 'commoncrawl' of mixture 'llama1'"),
    ("not json", "not a readable JSON file"),
    ('{"commoncrawl": 100000, "c4": 100000000000000000000000000000, "github": 100000, "wikipedia": 100000, '
     '"books": 100000, "arxiv": 100000, "stackexchange": 100000}',
     "tokens of 'c4' must be a positive integer up to 10^18, got 100000000000000000000000000000"),
    ('{"commoncrawl": 0, "c4": 1, "github": 1, "wikipedia": 1, "books": 1, "arxiv": 1, "stackexchange": 1}',
     "tokens of 'commoncrawl' must be a positive integer up to 10^18, got 0"),
])
def test_bad_available_file_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture, content: str,
                                                   message: str) -> None:
    available = tmp_path / "available.json"
    available.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "--model", "65b", "--available", str(available)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert f"{available}: {message}" in err and len(err.strip().splitlines()) == 1, err


def test_help_explains_the_plan(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["data", "--help"])
    out = capsys.readouterr().out
    for text in ("--available", "--trace", "--world-size", "--json", "exact"):
        assert text in out


@pytest.mark.parametrize(("flags", "message"), [
    (["--world-size", "0"], "--world-size must be at least 1, got 0"),
    (["--world-size", str(1 << 21)], f"--world-size must be at most 1048576, got {1 << 21}"),  # train's MAX_RANKS
])
def test_a_world_size_out_of_bounds_is_one_line_and_exit_2(flags: list[str], message: str,
                                                          capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "--model", "65b", "--available", "reference", *flags])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"train: error: {message}\n"
