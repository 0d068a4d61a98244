"""The training loop: exact resume, golden losses of the debug model, divergence, metrics."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import pytest
import torch

from pipeline.common.errors import UserError
from tests.train.token_shards import write_llama1_tokens
from train import checkpoint
from train.config import TrainConfig, resolve
from train.loop import TrainingDiverged, build_optimizer, train
from train.parallel import join

GOLDEN = Path(__file__).with_name("golden_debug_losses.json")


class Killed(Exception):
    """Stands in for the process dying between two steps."""


def debug_config(tmp_path: Path, **changes) -> TrainConfig:
    tokens = tmp_path / "tokens"
    if not tokens.exists():
        write_llama1_tokens(tokens)
    base = TrainConfig(model="debug", data=str(tokens), run=str(tmp_path / "run"), steps=20, progress=False)
    return dataclasses.replace(base, **changes)


@pytest.mark.slow
def test_kill_and_resume_gives_the_same_losses_and_weights_as_a_straight_run(tmp_path: Path) -> None:
    straight = train(debug_config(tmp_path, run=str(tmp_path / "straight"), checkpoint_every=10))

    def kill_after_ten(step: int, loss: float, model: torch.nn.Module) -> None:
        if step == 9:
            raise Killed

    config = debug_config(tmp_path, run=str(tmp_path / "killed"), checkpoint_every=10)
    with pytest.raises(Killed):
        train(config, after_step=kill_after_ten)
    resumed = train(config, resume=True)

    assert resumed.start_step == 10
    assert resumed.losses == straight.losses[10:]  # bitwise
    rows = [json.loads(line) for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(20))
    assert [r["loss"] for r in rows] == straight.losses
    assert rows[-1]["tokens_drawn"] == json.loads(
        (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()[-1])["tokens_drawn"]
    a = checkpoint.load_model_state(straight.checkpoint)
    b = checkpoint.load_model_state(resumed.checkpoint)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_debug_model_first_steps_match_the_golden_losses(tmp_path: Path) -> None:
    result = train(debug_config(tmp_path, steps=10))
    if os.environ.get("HERD_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps({"about": "train --model debug, 10 steps, on tests/train/token_shards."
                                      "write_llama1_tokens(seed=0); regenerate with HERD_UPDATE_GOLDEN=1",
                                      "losses": result.losses}, indent=2) + "\n")
    golden = json.loads(GOLDEN.read_text())["losses"]
    assert result.losses == pytest.approx(golden, abs=1e-4)
    assert result.losses[0] == pytest.approx(math.log(256) + 0.5, abs=0.3)


@pytest.mark.slow
def test_metrics_config_and_checkpoint_land_in_the_run_folder(tmp_path: Path) -> None:
    result = train(debug_config(tmp_path, steps=6, checkpoint_every=2, keep_checkpoints=2, log_every=2))
    run = tmp_path / "run"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 2, 4, 5]
    last = rows[-1]
    assert set(last) >= {"step", "loss", "lr", "grad_norm", "tokens_per_s", "mfu", "tokens_drawn", "epochs"}
    assert sum(last["tokens_drawn"].values()) == last["tokens"] == 6 * 128
    sizes = {s: 4000 for s in last["tokens_drawn"]}  # write_llama1_tokens' default size
    assert last["epochs"] == {s: last["tokens_drawn"][s] / sizes[s] for s in sizes}
    assert last["mfu"] > 0  # against a CPU matmul peak measured while other processes may run
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["warmup_steps"] == 1 and config["model"]["vocab_size"] == 256
    assert config["grad_accum"] == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000004", "step-00000006"]
    assert result.checkpoint == run / "checkpoints" / "step-00000006"


@pytest.mark.slow
def test_batch_tokens_are_reached_by_gradient_accumulation(tmp_path: Path) -> None:
    train(debug_config(tmp_path, steps=2, batch_tokens=4 * 32 * 3))
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["grad_accum"] == 3
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert sum(rows[-1]["tokens_drawn"].values()) == 2 * 3 * 4 * 32


def test_batch_not_a_multiple_of_context_times_micro_batch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"batch of 100 tokens is not a multiple of context length x micro-batch "
                                        r"\(32 x 4 = 128\)"):
        train(debug_config(tmp_path, batch_tokens=100))


def test_weight_decay_applies_to_matrices_only(tmp_path: Path) -> None:
    resolved = resolve(TrainConfig(model="debug", steps=10))
    model = join("fsdp", "cpu").build_model(resolved.model, seed=0)
    decay, no_decay = build_optimizer(model, resolved.train, torch.device("cpu")).param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert {names[id(p)] for p in no_decay["params"]} == {"tok_embeddings.weight", "norm.weight"} | {
        f"layers.{i}.{n}.weight" for i in range(2) for n in ("attention_norm", "ffn_norm")}
    assert "output.weight" in {names[id(p)] for p in decay["params"]}


@pytest.mark.slow
def test_nan_loss_stops_with_the_step_and_saves_the_state(tmp_path: Path) -> None:
    def poison(step: int, loss: float, model: torch.nn.Module) -> None:
        if step == 2:
            with torch.no_grad():
                model.output.weight.fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match=r"loss is nan at step 3; .* saved in .*diverged-step-00000003"):
        train(debug_config(tmp_path), after_step=poison)
    saved = tmp_path / "run" / "checkpoints" / "diverged-step-00000003"
    assert (saved / "__0_0.distcp").is_file() and (saved / "manifest.json").is_file()


@pytest.mark.slow
def test_a_run_with_checkpoints_needs_resume_and_resume_needs_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no checkpoint to resume from"):
        train(debug_config(tmp_path, steps=2), resume=True)
    train(debug_config(tmp_path, steps=2))
    with pytest.raises(UserError, match="already holds checkpoints; pass --resume"):
        train(debug_config(tmp_path, steps=2))
    with pytest.raises(UserError, match="cannot resume with seed=5; the run was started with 0"):
        train(debug_config(tmp_path, steps=4, seed=5), resume=True)
    extended = train(debug_config(tmp_path, steps=4), resume=True)  # a longer run may continue
    assert extended.start_step == 2 and len(extended.losses) == 2


@pytest.mark.slow
def test_an_interrupt_saves_the_last_completed_step_for_resume(tmp_path: Path) -> None:
    def interrupt(step: int, loss: float, model: torch.nn.Module) -> None:
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(debug_config(tmp_path, steps=8), after_step=interrupt)
    assert checkpoint.latest(tmp_path / "run").name == "step-00000005"
    straight = train(debug_config(tmp_path, steps=8, run=str(tmp_path / "straight")))
    assert train(debug_config(tmp_path, steps=8), resume=True).losses == straight.losses[5:]
