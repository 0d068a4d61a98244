"""The `train` command: help for both forms, bad input as one line with exit 2, a short run, plot."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import file_states, script, subprocess_env
from tests.hostile.helpers import one_error, run_script
from tests.train.token_shards import write_llama1_tokens
from train.cli import main


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([script("train"), *args], cwd=cwd, env=subprocess_env(), capture_output=True, text=True,
                          timeout=300)


def exit_code(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code, capsys.readouterr().err


def test_only_rank_0_of_a_torchrun_says_a_bad_input_every_rank_meets(tmp_path: Path) -> None:
    args = [script("train"), "--tokens", str(tmp_path / "none"), "--run", str(tmp_path / "run")]
    outcomes = []
    for rank in ("0", "1"):  # torchrun's environment for each rank, read through train.config.env_world
        env = subprocess_env() | {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": "2"}
        done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        outcomes.append((done.returncode, done.stderr.strip()))
    # The debug preset's batch does not divide among two ranks: every rank finds it, rank 0 says it.
    assert outcomes == [(2, "train: error: batch of 1024 tokens is not a multiple of context length x micro-batch "
                            "x ranks (128 x 8 x 2 = 2048)"), (2, "")]


def test_help_explains_training_flags_and_subcommands(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    for text in ("--mixture", "--model", "--steps", "--resume", "train plot --run", "train export",
                 "train generate", "train eval"):
        assert text in out
    with pytest.raises(SystemExit):
        main(["plot", "--help"])
    assert "--run" in capsys.readouterr().out


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tokens = tmp_path / "tokens"
    write_llama1_tokens(tokens)
    run = str(tmp_path / "run")
    cases = [
        (["--model", "huge", "--tokens", str(tokens)], "unknown model preset 'huge' (known: debug, tiny, 1b, 7b, "
                                                      "13b, 33b, 65b)"),
        (["--tokens", str(tmp_path / "none"), "--run", run], f"{tmp_path / 'none'}: token shard folder does not exist"),
        (["--model", "debug", "--tokens", str(tokens), "--batch-tokens", "1000", "--run", run],
         "batch of 1000 tokens is not a multiple of context length x micro-batch (32 x 4 = 128)"),
        (["--mixture", "nope", "--tokens", str(tokens), "--run", run], "unknown mixture 'nope'"),
    ]
    for args, message in cases:
        code, err = exit_code(args, capsys)
        assert code == 2, args
        assert len(err.strip().splitlines()) == 1 and message in err, err
        assert not (tmp_path / "run").exists()  # the run folder its lock made is gone with it
    config = tmp_path / "bad.toml"
    config.write_text("stepz = 3\n")
    code, err = exit_code(["--config", str(config), "--tokens", str(tokens)], capsys)
    assert code == 2 and "bad.toml: unknown setting 'stepz'" in err
    config.write_text("[model]\ndim = 'wide'\n")
    code, err = exit_code(["--config", str(config), "--tokens", str(tokens)], capsys)
    assert code == 2 and "setting 'dim' must be int" in err


def test_a_file_that_is_no_regular_file_is_one_line_and_never_opened_nor_replaced(tmp_path: Path) -> None:
    # A FIFO with no writer blocks an open to read for ever, one with no reader an open to write
    # (hence the short timeout); an output renamed over a FIFO or a device would replace it.
    os.mkfifo(tmp_path / "fifo")
    run = tmp_path / "run"  # enough of a run folder for the commands to reach their files
    (run / "checkpoints" / "step-00000002").mkdir(parents=True)
    model = {"dim": 64, "n_layers": 2, "n_heads": 4, "vocab_size": 256, "multiple_of": 32, "max_seq_len": 64}
    (run / "config.json").write_text(json.dumps({"model": model, "train": {"seq_len": 64, "mixture": "llama1",
                                                                          "data": "tokens"}}))
    before = file_states(run)
    for args, line in [
        (["--config", "fifo"], "fifo: a FIFO, not a config file"),
        (["--mixture", "fifo", "--tokens", "tokens", "--run", "new"], "fifo: a FIFO, not a mixture file"),
        (["data", "--available", "fifo"], "fifo: a FIFO, not a JSON file"),
        (["data", "--available", "/dev/zero"], "/dev/zero: a device, not a JSON file"),
        (["data", "--available", "reference", "--trace", "fifo"], "fifo: a FIFO, not a trace file to write"),
        (["data", "--available", "reference", "--trace", "/dev/null"],
         "/dev/null: a device, not a trace file to write"),
        (["plot", "--run", "run", "--out", "fifo"], "fifo: a FIFO, not a PNG file to write"),
        (["eval", "--run", "run", "--out", "fifo"], "fifo: a FIFO, not a JSON file to write"),
        (["export", "--run", "run", "--tokenizer", "fifo", "--out", "x"], "fifo: a FIFO, not a tokenizer model"),
        (["generate", "--run", "run", "--tokenizer", "fifo", "--prompt", "Hi"],
         "fifo: a FIFO, not a tokenizer model"),
    ]:
        assert one_error(run_script("train", *args, cwd=tmp_path, timeout=30), "train") == line, args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "run"] and file_states(run) == before
    assert stat.S_ISFIFO((tmp_path / "fifo").lstat().st_mode) and stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.slow
def test_a_bad_config_is_refused_before_torch_loads(tmp_path: Path) -> None:
    """A typo in train.toml or a flag is one line at once: the config is checked before the
    seconds torch takes to import (a fresh process, so no earlier test has loaded it)."""
    (tmp_path / "bad.toml").write_text('strategy = "zero"\n')
    probe = ("import sys\nfrom train.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
             "    print(e.code, 'torch' in sys.modules)\n")
    # A config file's value, a flag's type, a flag's value, the batch arithmetic.
    for args in (["--config", str(tmp_path / "bad.toml")], ["--micro-batch", "-2"], ["--device", "gpu"],
                 ["--batch-tokens", "100"], ["--steps", "5", "--warmup-steps", "9"]):
        done = subprocess.run([sys.executable, "-c", probe, *args, "--model", "debug", "--tokens", str(tmp_path / "t"),
                               "--run", str(tmp_path / "run")], env=subprocess_env(), capture_output=True, text=True,
                              timeout=120)
        assert done.stdout.split() == ["2", "False"], done.stderr
        assert done.stderr.startswith("train: error: ") and done.stderr.count("\n") == 1, done.stderr


def test_a_token_shard_overwritten_since_the_encode_is_one_line_and_exit_2(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    from pipeline.common.files import seal

    tokens = tmp_path / "tokens"
    write_llama1_tokens(tokens)
    # What `tokenizer encode` records and seals for each .bin it writes (tokenizer/token_shards.py).
    shard = tokens / "c4" / "train-00000.bin"
    meta = json.loads((tokens / "c4" / "meta.json").read_text())
    sha256 = hashlib.sha256(shard.read_bytes()).hexdigest()
    meta["splits"]["train"]["shards"][0]["bin_sha256"] = sha256
    (tokens / "c4" / "meta.json").write_text(json.dumps(meta))
    seal(shard, f"sha256:{sha256}")
    with open(shard, "r+b") as f:  # one id changed in place: the same size
        f.seek(4)
        f.write(b"\x07")
    code, err = exit_code(["--model", "debug", "--steps", "2", "--tokens", str(tokens), "--run", str(tmp_path / "run"),
                           "--no-progress"], capsys)
    assert code == 2
    assert err.strip().splitlines() == [f"train: error: {shard}: sha256 differs from meta.json's (damaged since "
                                        "`tokenizer encode` wrote it, or from another encode)"]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_corrupt_checkpoint_on_resume_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tokens = tmp_path / "tokens"
    write_llama1_tokens(tokens)
    args = ["--model", "debug", "--steps", "2", "--tokens", str(tokens), "--run", str(tmp_path / "run"), "--no-progress"]
    main(args)
    capsys.readouterr()
    model_file = tmp_path / "run" / "checkpoints" / "step-00000002" / "__0_0.distcp"
    model_file.write_bytes(model_file.read_bytes()[:-100])
    code, err = exit_code([*args, "--steps", "4", "--resume"], capsys)
    assert code == 2
    assert err.strip().startswith(f"train: error: {model_file}: truncated or corrupt checkpoint file")


@pytest.mark.slow
def test_checkpoint_of_another_model_shape_is_one_line_and_exit_2(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    tokens = tmp_path / "tokens"
    write_llama1_tokens(tokens)
    args = ["--model", "debug", "--steps", "2", "--tokens", str(tokens), "--run", str(tmp_path / "run"), "--no-progress"]
    main(args)
    capsys.readouterr()
    wider = tmp_path / "wider.toml"
    wider.write_text("[model]\npreset = 'debug'\ndim = 128\n")
    code, err = exit_code([*args, "--steps", "4", "--resume", "--config", str(wider)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"train: error: {tmp_path / 'run' / 'checkpoints' / 'step-00000002'}: cannot resume with "
                          "model_overrides={'dim': 128}; the run was started with {}"), err


@pytest.mark.slow
def test_more_steps_resume_with_the_runs_warmup_and_a_warmup_given_otherwise_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tokens = tmp_path / "tokens"
    write_llama1_tokens(tokens)
    args = ["--model", "debug", "--tokens", str(tokens), "--run", str(tmp_path / "run"), "--no-progress"]
    main([*args, "--steps", "20"])  # the default warmup: a tenth of the run, 2 steps
    main([*args, "--steps", "30", "--resume"])  # a tenth of 30 would be 3: the run keeps its 2
    out, err = capsys.readouterr()
    assert out.splitlines()[-1].startswith("train: steps 20-30 done; ") and err == ""
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["warmup_steps"] == 2
    warmup = tmp_path / "warmup.toml"
    warmup.write_text("warmup_steps = 3\n")
    for given in (["--warmup-steps", "3"], ["--config", str(warmup)]):
        code, err = exit_code([*args, "--steps", "40", "--resume", *given], capsys)
        assert (code, err) == (2, f"train: error: {tmp_path / 'run' / 'checkpoints' / 'step-00000030'}: cannot "
                               "resume with warmup_steps=3; the run was started with 2\n")


def test_every_training_flag_is_a_train_config_field() -> None:
    """The flags are the one list: each lands in the TrainConfig field of its own name."""
    import dataclasses

    from train.cli import NOT_CONFIG, add_arguments
    from train.config import TrainConfig

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    dests = {a.dest for a in parser._actions if a.dest != "help"}
    assert dests - NOT_CONFIG <= fields, dests - NOT_CONFIG - fields


@pytest.mark.slow
def test_toml_config_and_cli_flags_resolve_into_the_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tokens = tmp_path / "tokens"
    write_llama1_tokens(tokens)
    config = tmp_path / "small.toml"
    config.write_text("lr = 0.001\nseed = 3\n[model]\npreset = \"tiny\"\nn_layers = 1\n")
    main(["--config", str(config), "--model", "debug", "--seed", "4", "--steps", "3", "--tokens", str(tokens),
          "--run", str(tmp_path / "run"), "--no-progress", "--log-every", "2"])
    resolved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert resolved["train"]["lr"] == 0.001 and resolved["train"]["seed"] == 4  # the flag beats the file
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "loss" in row] == [0, 2]  # every 2nd step, and the last
    assert resolved["model"]["n_layers"] == 1 and resolved["model"]["dim"] == 64
    assert "loss" in capsys.readouterr().out


@pytest.mark.slow
def test_train_then_plot_end_to_end(tmp_path: Path) -> None:
    write_llama1_tokens(tmp_path / "data" / "tokens")  # the default --data, relative to the working folder
    done = run_cli(["--mixture", "llama1", "--model", "debug", "--steps", "30", "--no-progress"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "steps 0-30 done" in done.stdout
    run = tmp_path / "runs" / "llama1-debug"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 30 and rows[-1]["loss"] < 0.7 * rows[0]["loss"]
    plotted = run_cli(["plot", "--run", "runs/llama1-debug"], tmp_path)
    assert plotted.returncode == 0, plotted.stderr
    png = (run / "training.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    missing = run_cli(["plot", "--run", "runs/nothing"], tmp_path)
    assert missing.returncode == 2 and missing.stderr.strip() == (
        "train: error: runs/nothing/metrics.jsonl: missing: not a training run folder (or no step has finished yet)")


@pytest.mark.parametrize(("steps", "summary"), [
    (1, r"loss of the one step \d+\.\d{4}; "),
    (5, r"mean loss of the first 2 steps \d+\.\d{4}, of the last 2 \d+\.\d{4} \(\d+\.\d% (lower|higher)\); "),
    (25, r"mean loss of the first 10 steps \d+\.\d{4}, of the last 10 \d+\.\d{4} \(\d+\.\d% (lower|higher)\); "),
])
def test_end_of_run_line_compares_windows_that_do_not_overlap(steps: int, summary: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    tokens = tmp_path / "tokens"
    write_llama1_tokens(tokens)
    main(["--model", "debug", "--steps", str(steps), "--tokens", str(tokens), "--run", str(tmp_path / "run"),
          "--no-progress"])
    (line,) = capsys.readouterr().out.splitlines()
    assert re.fullmatch(rf"train: steps 0-{steps} done; {summary}checkpoint \S+; metrics \S+metrics\.jsonl", line), line
    assert "mfu" not in line.lower()


def test_loss_summary_halves_a_short_run_and_says_which_way_the_loss_went() -> None:
    from train.cli import loss_summary

    assert loss_summary([3.0]) == "loss of the one step 3.0000"
    assert loss_summary([1.0, 2.0]) == "mean loss of the first 1 step 1.0000, of the last 1 2.0000 (100.0% higher)"
    assert loss_summary([5.0, 4.0, 3.0, 2.0, 1.0]) == \
        "mean loss of the first 2 steps 4.5000, of the last 2 1.5000 (66.7% lower)"
    losses = [float(25 - i) for i in range(25)]  # first 10: 25..16, last 10: 10..1
    assert loss_summary(losses) == "mean loss of the first 10 steps 20.5000, of the last 10 5.5000 (73.2% lower)"


def test_old_data_flag_still_trains_and_says_once_to_use_tokens(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tokens = tmp_path / "tokens"
    write_llama1_tokens(tokens)
    main(["--model", "debug", "--steps", "1", "--data", str(tokens), "--run", str(tmp_path / "run"), "--no-progress"])
    assert capsys.readouterr().err == "train: --data is deprecated; use --tokens\n"


@pytest.mark.slow
def test_export_generate_and_eval_refuse_a_wrong_run_checkpoint_or_flag_before_torch_loads(tmp_path: Path) -> None:
    """Each refusal is one line and exit 2 in a fresh process that never imported torch (seconds)."""
    run = tmp_path / "run"
    (run / "checkpoints" / "step-00000002").mkdir(parents=True)
    model = {"dim": 64, "n_layers": 2, "n_heads": 4, "vocab_size": 256, "multiple_of": 32, "max_seq_len": 64}
    (run / "config.json").write_text(json.dumps(
        {"model": model, "train": {"seq_len": 64, "mixture": "llama1", "data": str(tmp_path / "tokens")}}))
    (tmp_path / "taken").mkdir()
    cases = [
        (["export", "--run", str(tmp_path / "nothing"), "--out", "x"], "no such run folder"),
        (["export", "--run", str(run), "--out", str(tmp_path / "taken")], "taken: already exists"),
        (["export", "--run", str(run), "--checkpoint", "7", "--out", "x"], "step-00000007: no such checkpoint"),
        (["generate", "--run", str(run), "--checkpoint", "abc", "--prompt-ids", "1"], "--checkpoint 'abc': expected"),
        (["generate", "--run", str(run), "--prompt-ids", "1 x"], "--prompt-ids: expected integers"),
        (["generate", "--run", str(run), "--prompt-ids", "1 256"], "--prompt-ids: ids must be in [0, 256)"),
        (["generate", "--run", str(run), "--prompt", "Hi"], "the tokenizer its token shards name was not found"),
        (["eval", "--run", str(run), "--max-tokens", "0"], "--max-tokens at least 1"),
        (["eval", "--run", str(run), "--mixture", "nonesuch"], "nonesuch"),
    ]
    probe = ("import sys\nfrom train.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
             "    print(e.code, 'torch' in sys.modules)\n")
    for args, message in cases:
        done = subprocess.run([sys.executable, "-c", probe, *args], env=subprocess_env(), capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)
        assert done.stdout.split() == ["2", "False"], (args, done.stdout, done.stderr)
        assert done.stderr.count("\n") == 1 and message in done.stderr, (args, done.stderr)


@pytest.mark.parametrize(("body", "status", "out", "err"), [
    ("print('saved', end='')", 0, "saved", ""),  # buffered, unflushed: still written
    ("print('saved'); sys.exit(2)", 2, "saved\n", ""),
    ("print('refused', file=sys.stderr); sys.exit(130)", 130, "", "refused\n"),
    ("sys.exit('a message')", 1, "", "a message\n"),  # what Python itself does with one
    ("sys.exit(None)", 0, "", ""),
    ("raise ValueError('no handler')", 1, "", "ValueError: no handler\n"),  # the traceback's last line
])
def test_a_torchrun_rank_ends_with_its_commands_status_and_output_without_teardown(body: str, status: int, out: str,
                                                                                   err: str) -> None:
    # The atexit line is the teardown's first act: it must never be printed.
    program = ("import atexit, sys\nfrom train.cli import end_without_teardown\n"
               "atexit.register(lambda: print('ATEXIT RAN', file=sys.stderr))\n"
               f"def command():\n    {body}\nend_without_teardown(command)\n")
    result = subprocess.run([sys.executable, "-c", program], env=subprocess_env(), capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stdout) == (status, out)
    assert result.stderr.endswith(err) and "ATEXIT RAN" not in result.stderr
    assert result.stderr == err or result.stderr.startswith("Traceback (most recent call last):")
