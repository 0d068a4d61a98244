"""From raw sample files to a few training steps, through the real commands."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import script, subprocess_env


def run(command: str, args: list[str], cwd: Path) -> str:
    done = subprocess.run([script(command), *args], cwd=cwd, env=subprocess_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"{command} {' '.join(args)}:\n{done.stderr}"
    return done.stdout


COMMANDS = [
    ("pipeline", ["sample", "--sources", "c4", "wikipedia"]),
    *(("pipeline", ["run", source, "--workers", "1", "--no-progress"]) for source in ("c4", "wikipedia")),
    ("tokenizer", ["train", "--mixture", "two.toml", "--vocab-size", "600", "--allow-smaller-vocab", "--threads", "1"]),
    ("tokenizer", ["encode", "--model", "data/tokenizer/two.model", "--workers", "1", "--no-progress"]),
    ("train", ["--mixture", "two.toml", "--model", "debug", "--steps", "8", "--no-progress"]),
]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_raw_sample_to_corpus_to_tokens_to_training_steps(tmp_path: Path) -> None:
    (tmp_path / "two.toml").write_text('name = "two"\n[proportions]\nc4 = 0.5\nwikipedia = 0.5\n')
    out = [run(command, args, tmp_path) for command, args in COMMANDS][-1]
    assert "steps 0-8 done" in out
    # The same commands again, as an operator reruns a day's script: each finds its work done and
    # says so (exit 0), and no input, corpus, token or run file changes.
    kept = {folder: _files(tmp_path / folder) for folder in ("data/raw", "data/corpus", "data/tokens", "runs")}
    again = [run(command, args, tmp_path) for command, args in COMMANDS]
    assert all("(already complete)" in again[i] for i in (1, 2)), again[1:3]
    assert again[-1].strip() == "train: runs/two-debug already finished 8 steps; nothing to do"
    assert {folder: _files(tmp_path / folder) for folder in kept} == kept
    run_dir = tmp_path / "runs" / "two-debug"
    config = json.loads((run_dir / "config.json").read_text())
    meta = json.loads((tmp_path / "data" / "tokens" / "c4" / "meta.json").read_text())
    assert config["model"]["vocab_size"] == meta["vocab_size"] <= 600
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and set(rows[-1]["epochs"]) == {"c4", "wikipedia"}
    assert rows[-1]["loss"] < rows[0]["loss"]
