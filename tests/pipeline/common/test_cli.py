"""The dispatcher every CLI shares (pipeline/common/cli.py) and the alias a renamed flag keeps."""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import types
from collections.abc import Iterator

import pytest

from pipeline.common.cli import Command, add_renamed, main, parse
from tests.conftest import subprocess_env

RAN: list[tuple[str, argparse.Namespace]] = []


def _command_module(name: str, doc: str) -> types.ModuleType:
    module = types.ModuleType(name, doc)

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        new = parser.add_argument("--corpus", default="data/corpus")
        add_renamed(parser, new, "--output", "--data")

    def run(args: argparse.Namespace) -> None:
        RAN.append((name, args))

    module.add_arguments, module.run = add_arguments, run  # type: ignore[attr-defined]
    return module


@pytest.fixture
def commands() -> Iterator[list[Command]]:
    """Two commands and a group of one, as modules that exist only in sys.modules."""
    fakes = {name: _command_module(name, f"The {name} command.") for name in ("fake_one", "fake_two", "fake_leaf")}
    group = types.ModuleType("fake_group", "A group of commands.")
    group.COMMANDS = [Command("leaf", "fake_leaf", "the leaf")]  # type: ignore[attr-defined]
    group.METAVAR = "KIND"  # type: ignore[attr-defined]
    fakes["fake_group"] = group
    sys.modules.update(fakes)
    RAN.clear()
    yield [Command("one", "fake_one", "does one thing"), Command("two", "fake_two", "does another"),
           Command("group", "fake_group", "holds a leaf")]
    for name in fakes:
        del sys.modules[name]


def test_help_lists_every_command_without_importing_one(capsys: pytest.CaptureFixture) -> None:
    lazy = [Command("run", "no.such.module", "runs"), Command("stats", "no.such.other", "counts")]
    with pytest.raises(SystemExit) as exit_info:
        main("prog", "What prog does.", lazy, ["--help"], "rerun")
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert "What prog does." in out
    assert "commands (each with its own --help):\n  run    runs\n  stats  counts\n" in out


def test_a_command_runs_with_the_arguments_its_module_adds(commands: list[Command],
                                                           capsys: pytest.CaptureFixture) -> None:
    main("prog", "", commands, ["two", "--corpus", "c"], "rerun")
    assert [(name, vars(args)) for name, args in RAN] == [("fake_two", {"corpus": "c"})]
    assert capsys.readouterr().err == ""
    main("prog", "", commands, ["one"], "rerun")
    assert vars(RAN[-1][1]) == {"corpus": "data/corpus"}


def test_a_group_dispatches_one_level_down(commands: list[Command], capsys: pytest.CaptureFixture) -> None:
    main("prog", "", commands, ["group", "leaf", "--corpus", "x"], "rerun")
    assert [(name, vars(args)) for name, args in RAN] == [("fake_leaf", {"corpus": "x"})]
    with pytest.raises(SystemExit) as exit_info:
        main("prog", "", commands, ["group", "nope"], "rerun")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "prog: error: prog group nope: unknown kind (known: leaf)\n"
    with pytest.raises(SystemExit):
        main("prog", "", commands, ["group", "leaf", "--help"], "rerun")
    assert capsys.readouterr().out.startswith("usage: prog group leaf [-h] [--corpus CORPUS]\n\nThe fake_leaf command.")


def test_unknown_or_missing_command_exits_2(commands: list[Command], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main("prog", "", commands, ["three"], "rerun")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "prog: error: prog three: unknown command (known: one, two, group)\n"
    with pytest.raises(SystemExit) as exit_info:
        main("prog", "", commands, [], "rerun")
    assert exit_info.value.code == 2
    assert "  one    does one thing\n" in capsys.readouterr().out
    assert RAN == []


def test_default_command_reads_flags_when_no_command_is_named(commands: list[Command],
                                                             capsys: pytest.CaptureFixture) -> None:
    main("prog", "", commands[1:], ["--corpus", "d"], "rerun", default="fake_one")
    main("prog", "", commands[1:], ["two"], "rerun", default="fake_one")
    assert [(name, vars(args)) for name, args in RAN] == [("fake_one", {"corpus": "d"}),
                                                          ("fake_two", {"corpus": "data/corpus"})]
    with pytest.raises(SystemExit):
        main("prog", "Trains.", commands[1:], ["--help"], "rerun", default="fake_one")
    out = capsys.readouterr().out
    assert "--corpus CORPUS" in out and "  two    does another\n" in out and "Trains." in out


def test_an_old_spelling_stores_into_the_new_flag_and_says_so_once(capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser(prog="prog run")
    new = parser.add_argument("--total-tokens", type=int, metavar="N")
    add_renamed(parser, new, "--tokens")
    assert parser.parse_args(["--tokens", "7"]).total_tokens == 7
    assert capsys.readouterr().err == "prog run: --tokens is deprecated; use --total-tokens\n"
    assert parser.parse_args(["--total-tokens", "8"]).total_tokens == 8
    assert parser.parse_args([]).total_tokens is None
    assert capsys.readouterr().err == ""
    assert "--tokens" not in parser.format_help()  # hidden: --help shows the one spelling to use


# Every renamed flag of the three CLIs: module, prog, arguments around it, old spelling, new, destination.
RENAMED = [
    ("pipeline.commands.run", "pipeline run", ["c4"], "--output", "--corpus", "corpus"),
    ("pipeline.commands.stats", "pipeline stats", [], "--output", "--corpus", "corpus"),
    ("pipeline.commands.verify", "pipeline verify", [], "--output", "--corpus", "corpus"),
    ("pipeline.commands.sample", "pipeline sample", [], "--out", "--raw", "raw"),
    ("pipeline.commands.mix", "pipeline mix", [], "--data", "--corpus", "corpus"),
    ("pipeline.commands.models.lm", "pipeline models lm", [], "--output", "--out", "out"),
    ("pipeline.commands.models.classifier", "pipeline models classifier", [], "--output", "--out", "out"),
    ("tokenizer.train", "tokenizer train", [], "--data", "--corpus", "corpus"),
    ("tokenizer.train", "tokenizer train", [], "--output", "--out", "out"),
    ("tokenizer.encode", "tokenizer encode", [], "--data", "--corpus", "corpus"),
    ("tokenizer.encode", "tokenizer encode", [], "--output", "--tokens", "tokens"),
    ("train.cli", "train", [], "--data", "--tokens", "data"),
    ("train.evaluate", "train eval", ["--run", "r"], "--data", "--tokens", "tokens"),
]


@pytest.mark.parametrize(("module", "prog", "around", "old", "new", "dest"), RENAMED)
def test_every_old_spelling_still_works_with_one_line(module: str, prog: str, around: list[str], old: str, new: str,
                                                      dest: str, capsys: pytest.CaptureFixture) -> None:
    command = importlib.import_module(module)
    assert getattr(parse(command, prog, [*around, old, "some/dir"]), dest) == "some/dir"
    assert capsys.readouterr().err == f"{prog}: {old} is deprecated; use {new}\n"
    assert getattr(parse(command, prog, [*around, new, "some/dir"]), dest) == "some/dir"
    assert capsys.readouterr().err == ""


def test_mix_tokens_is_the_old_spelling_of_the_total(capsys: pytest.CaptureFixture) -> None:
    from pipeline.commands import mix

    assert parse(mix, "pipeline mix", ["--tokens", "1.4T"]).total_tokens == 1_400_000_000_000
    assert capsys.readouterr().err == "pipeline mix: --tokens is deprecated; use --total-tokens\n"


# Every flag of the three CLIs that names a file or folder: module, prog, arguments around it, flag.
PATH_FLAGS = [
    *[("pipeline.commands.run", "pipeline run", ["c4"], flag) for flag in ("--input", "--corpus", "--config")],
    *[("pipeline.commands.plan", "pipeline plan", ["c4"], flag) for flag in ("--input", "--config")],
    ("pipeline.commands.stats", "pipeline stats", [], "--corpus"),
    ("pipeline.commands.verify", "pipeline verify", [], "--corpus"),
    ("pipeline.commands.sample", "pipeline sample", [], "--raw"),
    *[("pipeline.commands.mix", "pipeline mix", [], flag)
      for flag in ("--mixture", "--corpus", "--token-shards", "--tokenizer")],
    *[("pipeline.commands.report", "pipeline report", ["all"], flag)
      for flag in ("--corpus", "--out", "--tokens", "--mixture")],
    ("pipeline.commands.diff", "pipeline diff", ["c4", "--b", "b"], "--a"),
    ("pipeline.commands.diff", "pipeline diff", ["c4", "--a", "a"], "--b"),
    *[("pipeline.commands.remove", "pipeline remove", ["c4", "--ids", "ids.txt"], flag)
      for flag in ("--corpus", "--tokens", "--model")],
    ("pipeline.commands.remove", "pipeline remove", ["c4"], "--ids"),
    *[("pipeline.commands.audit", "pipeline audit", ["books"], flag) for flag in ("--corpus", "--raw")],
    *[("pipeline.commands.models.lm", "pipeline models lm", [], flag) for flag in ("--input", "--out")],
    *[("pipeline.commands.models.classifier", "pipeline models classifier", [], flag)
      for flag in ("--positives", "--cited-urls", "--cited-pages", "--negatives", "--out")],
    *[(f"pipeline.commands.download.{name}", f"pipeline download {name}", around, "--out") for name, around in [
        ("c4", []), ("wikipedia", ["--date", "20220701"]), ("commoncrawl", ["--snapshot", "CC-MAIN-2020-05"]),
        ("books", ["--ids", "1"]), ("arxiv", []), ("stackexchange", []), ("github", [])]],
    ("pipeline.commands.download.books", "pipeline download books", [], "--catalogue"),
    ("tokenizer.verify", "tokenizer verify", [], "--tokens"),
    *[("tokenizer.encode", "tokenizer encode", [], flag) for flag in ("--corpus", "--model", "--tokens")],
    *[("tokenizer.train", "tokenizer train", [], flag) for flag in ("--corpus", "--mixture", "--out")],
    *[("train.cli", "train", [], flag) for flag in ("--mixture", "--tokens", "--run", "--run-dir", "--config")],
    *[("train.data_plan", "train data", [], flag) for flag in ("--mixture", "--tokens", "--available", "--trace")],
    ("train.plot", "train plot", [], "--run"),
    ("train.plot", "train plot", ["--run", "r"], "--out"),
    ("train.export", "train export", ["--out", "o"], "--run"),
    *[("train.export", "train export", ["--run", "r"], flag) for flag in ("--out", "--tokenizer")],
    ("train.evaluate", "train eval", [], "--run"),
    *[("train.evaluate", "train eval", ["--run", "r"], flag) for flag in ("--tokens", "--mixture", "--out")],
    ("train.hf_import", "train import", ["--run", "r"], "--hf"),
    *[("train.hf_import", "train import", ["--hf", "h"], flag) for flag in ("--run", "--tokenizer")],
    ("train.generate", "train generate", ["--prompt", "x"], "--run"),
    ("train.generate", "train generate", ["--run", "r", "--prompt", "x"], "--tokenizer"),
]


@pytest.mark.parametrize(("module", "prog", "around", "flag"), PATH_FLAGS)
def test_an_empty_path_is_refused_by_every_path_flag(module: str, prog: str, around: list[str], flag: str,
                                                    capsys: pytest.CaptureFixture) -> None:
    # `Path("")` is the current folder: `--out ""` (an unset shell variable) wrote into it.
    with pytest.raises(SystemExit) as exit_info:
        parse(importlib.import_module(module), prog, [*around, flag, ""])
    assert exit_info.value.code == 2
    shown = "--run/--run-dir" if flag in ("--run", "--run-dir") and prog == "train" else flag  # every spelling
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"{prog}: error: argument {shown}: an empty path (it would mean the current folder); give a path")


@pytest.mark.parametrize("cli", ["pipeline.cli", "tokenizer.cli", "train.cli"])
def test_help_loads_no_torch(cli: str) -> None:
    code = (f"import sys\nfrom {cli} import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.stderr == "False\n"


THREADS_AFTER_NUMPY = "import os\nimport numpy\nprint(len(os.listdir('/proc/self/task')))"


def _threads_after_numpy(prelude: str, **env: str) -> int:
    clean = {k: v for k, v in subprocess_env().items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", prelude + THREADS_AFTER_NUMPY], env=clean | env,
                          capture_output=True, text=True, timeout=120, check=True)
    return int(done.stdout)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="OpenBLAS starts no thread of its own on one core")
def test_without_blas_threads_numpy_starts_no_thread_and_a_users_setting_is_kept() -> None:
    call = "from pipeline.common.cli import without_blas_threads\nwithout_blas_threads()\n"
    assert _threads_after_numpy("") > 1  # the control: OpenBLAS's spinning threads
    assert _threads_after_numpy(call) == 1
    assert _threads_after_numpy(call, OPENBLAS_NUM_THREADS="2") == 2


@pytest.mark.parametrize(("cli", "expected"), [("pipeline.cli", "1"), ("tokenizer.cli", "1"), ("train.cli", None)])
def test_pipeline_and_tokenizer_keep_blas_single_threaded_and_train_does_not(cli: str, expected: str | None) -> None:
    # train's torch may multiply matrices through OpenBLAS (on some machines): its threads stay.
    code = (f"import os\nfrom {cli} import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('OPENBLAS_NUM_THREADS'))")
    env = {k: v for k, v in subprocess_env().items() if k != "OPENBLAS_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          check=True)
    assert done.stdout.splitlines()[-1] == str(expected)


@pytest.mark.parametrize(("hint", "said"), [(None, "rerun to resume"), ("rerun to plan again", "rerun to plan again")])
def test_a_command_with_no_work_to_resume_says_its_own_hint_when_stopped(
        commands: list[Command], capsys: pytest.CaptureFixture, hint: str | None, said: str) -> None:
    """`pipeline plan` keeps nothing to resume from: its RERUN_HINT replaces the CLI's."""
    module = sys.modules["fake_leaf"]

    def stopped(args: argparse.Namespace) -> None:
        raise KeyboardInterrupt

    module.run = stopped  # type: ignore[attr-defined]
    if hint is not None:
        module.RERUN_HINT = hint  # type: ignore[attr-defined]
    with pytest.raises(SystemExit) as exit_info:
        main("prog", "What prog does.", commands, ["group", "leaf"], "rerun to resume")
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == f"prog: interrupted; {said}\n"
