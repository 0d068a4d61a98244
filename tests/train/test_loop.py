"""The training loop: exact resume, golden losses of the debug model, divergence, metrics; one
training step on its own (gradient accumulation, no update on a non-finite loss)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import pytest
import torch

from pipeline.common.errors import UserError
from tests.float_tolerance import assert_float32_close
from tests.train.token_shards import write_llama1_tokens
from train import checkpoint
from train.config import ResolvedConfig, TrainConfig, resolve
from train.loop import NonFiniteLoss, TrainingDiverged, build_optimizer, train, train_step
from train.parallel import join

GOLDEN = Path(__file__).with_name("golden_debug_losses.json")


class Killed(Exception):
    """Stands in for the process dying between two steps."""


def debug_config(tmp_path: Path, **changes) -> ResolvedConfig:
    tokens = tmp_path / "tokens"
    if not tokens.exists():
        write_llama1_tokens(tokens)
    base = TrainConfig(model="debug", data=str(tokens), run=str(tmp_path / "run"), steps=20, progress=False)
    return resolve(dataclasses.replace(base, **changes))


@pytest.mark.slow
def test_kill_and_resume_gives_the_same_losses_and_weights_as_a_straight_run(tmp_path: Path) -> None:
    straight = train(debug_config(tmp_path, run=str(tmp_path / "straight"), checkpoint_every=10, log_documents=True))

    def kill_after_ten(step: int, loss: float, model: torch.nn.Module) -> None:
        if step == 9:
            raise Killed

    config = debug_config(tmp_path, run=str(tmp_path / "killed"), checkpoint_every=10, log_documents=True)
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
    # The documents trained on: the same lines (the killed run's steps 0-9 once, then 10-19).
    logged = (tmp_path / "killed" / "documents.jsonl").read_text()
    assert logged == (tmp_path / "straight" / "documents.jsonl").read_text()
    rows = [json.loads(line) for line in logged.splitlines()]
    assert [r["step"] for r in rows] == [step for step in range(20) for _ in range(4)]
    for row in rows:  # write_llama1_tokens: documents of 50 tokens, ids <source>-<k>
        first, last = row["start"] // 50, (row["start"] + 32) // 50
        assert row["documents"] == [f"{row['source']}-{k}" for k in range(first, last + 1)]
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
    assert set(last) >= {"step", "loss", "lr", "grad_norm", "tokens_per_s", "tokens_drawn", "epochs"}
    assert sum(last["tokens_drawn"].values()) == last["tokens"] == 6 * 128
    # Epochs count windows of 33 tokens at stride 32 in write_llama1_tokens' 4000 tokens a source (was:
    # tokens drawn over tokens held, when positions were drawn at random).
    windows = (4000 - 1) // 32
    assert last["epochs"] == {s: last["tokens_drawn"][s] / (32 * windows) for s in last["tokens_drawn"]}
    assert "mfu" not in last  # a CPU's peak is unknown: no MFU without --peak-flops
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


class GradientsSeen(torch.optim.SGD):
    """SGD that keeps the gradients and learning rate its step was given."""

    def step(self, closure=None):  # noqa: ANN001, ANN201  (torch's signature)
        self.gradients = {id(p): p.grad.clone() for group in self.param_groups for p in group["params"]}
        self.lr_seen = self.param_groups[0]["lr"]
        return super().step(closure)


def _debug_model() -> torch.nn.Module:
    return join("fsdp", "cpu").build_model(resolve(TrainConfig(model="debug", steps=10)).model, seed=0)


def _random_batch(rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    window = torch.randint(0, 256, (rows, 33), generator=torch.Generator().manual_seed(7))
    return window[:, :-1], window[:, 1:]


def test_train_step_accumulates_micro_batches_to_the_whole_batch_gradient() -> None:
    inputs, targets = _random_batch(4)
    # The oracle: one plain forward and backward of the whole batch on an identical model.
    reference = _debug_model()
    whole_loss = reference(inputs, targets)
    whole_loss.backward()
    gradients = {name: p.grad.clone() for name, p in reference.named_parameters()}
    whole_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in gradients.values()]))

    model = _debug_model()
    optimizer = GradientsSeen(model.parameters(), lr=1.0)
    halves = [(inputs[:2], targets[:2]), (inputs[2:], targets[2:])]
    result = train_step(model, optimizer, iter(halves), accumulation=2, lr=0.5, grad_clip=1e9,
                        par=join("fsdp", "cpu"))

    assert optimizer.lr_seen == 0.5
    assert result.loss == pytest.approx(whole_loss.item(), rel=1e-6)
    assert_float32_close(result.grad_norm, whole_norm, msg="grad norm")
    for name, param in model.named_parameters():
        assert_float32_close(optimizer.gradients[id(param)], gradients[name], msg=name)
        assert param.grad is None  # cleared for the next step


def test_train_step_on_a_non_finite_loss_raises_before_the_update() -> None:
    model = _debug_model()
    with torch.no_grad():
        model.output.weight.fill_(float("nan"))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with pytest.raises(NonFiniteLoss) as raised:
        train_step(model, optimizer, [_random_batch(4)], accumulation=1, lr=1e-3, grad_clip=1.0,
                   par=join("fsdp", "cpu"))
    assert math.isnan(raised.value.loss)
    assert optimizer.state == {}  # AdamW never stepped
    for name, param in model.named_parameters():
        assert torch.allclose(param.detach(), before[name], rtol=0, atol=0, equal_nan=True), name


def test_train_step_refuses_fewer_micro_batches_than_its_accumulation() -> None:
    model = _debug_model()
    with pytest.raises(ValueError, match="1 micro-batches for an accumulation of 2"):
        train_step(model, torch.optim.SGD(model.parameters(), lr=0.1), [_random_batch(2)], accumulation=2,
                   lr=0.1, grad_clip=1.0, par=join("fsdp", "cpu"))


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
    written = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in sorted((tmp_path / "run").rglob("*"))
               if path.is_file()}
    # Asked again as it was (an operator rerunning the same command): finished, nothing to do,
    # every file as it was, none written again (metrics.jsonl was, with the same rows).
    again = train(debug_config(tmp_path, steps=2, progress=True))  # how progress shows is no other run
    assert again.start_step == 2 and again.losses == []
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in sorted((tmp_path / "run").rglob("*"))
            if path.is_file()} == written
    # Other settings, or more steps, without --resume: refused.
    for other in (debug_config(tmp_path, steps=2, seed=5), debug_config(tmp_path, steps=3)):
        with pytest.raises(UserError, match="already holds checkpoints; pass --resume"):
            train(other)
    with pytest.raises(UserError, match="cannot resume with seed=5; the run was started with 0"):
        train(debug_config(tmp_path, steps=4, seed=5), resume=True)
    extended = train(debug_config(tmp_path, steps=4), resume=True)  # a longer run may continue
    assert extended.start_step == 2 and len(extended.losses) == 2
    # Resumed with fewer steps than it has done: refused, and nothing written, so that the command
    # that made the run still finds it finished.
    written = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in sorted((tmp_path / "run").rglob("*"))
               if path.is_file()}
    with pytest.raises(UserError) as refused:
        train(debug_config(tmp_path, steps=3), resume=True)
    assert str(refused.value) == (f"{tmp_path / 'run'}: at step 4, past --steps 3; nothing to train "
                                  "(ask for more than 4 steps to continue it)")
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in sorted((tmp_path / "run").rglob("*"))
            if path.is_file()} == written
    assert train(debug_config(tmp_path, steps=4)).losses == []  # asked again as it was: finished


@pytest.mark.slow
def test_a_command_refused_after_the_checkpoint_is_read_writes_nothing(tmp_path: Path) -> None:
    """A held-out evaluation over tokens without held-out splits is refused once the run is
    opened: the refused resume rewrote config.json (steps 4, eval_every 1), so the command that made
    the finished run found it no longer finished; a refused new run left config.json and an empty
    metrics.jsonl."""
    with pytest.raises(UserError, match="no source of the mixture has a held-out split"):
        train(debug_config(tmp_path, run=str(tmp_path / "new"), steps=2, eval_every=1))
    assert not (tmp_path / "new").exists()
    train(debug_config(tmp_path, steps=2))
    written = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in sorted((tmp_path / "run").rglob("*"))
               if path.is_file()}
    with pytest.raises(UserError, match="no source of the mixture has a held-out split"):
        train(debug_config(tmp_path, steps=4, eval_every=1), resume=True)
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in sorted((tmp_path / "run").rglob("*"))
            if path.is_file()} == written
    assert train(debug_config(tmp_path, steps=2)).losses == []  # still finished as it was asked


@pytest.mark.slow
def test_a_resume_refuses_a_mixture_file_edited_since_the_run_started(tmp_path: Path) -> None:
    mixture = tmp_path / "two.toml"
    mixture.write_text('name = "two"\n[proportions]\nc4 = 0.5\nwikipedia = 0.5\n')
    train(debug_config(tmp_path, mixture=str(mixture), steps=2))
    mixture.write_text('name = "two"\n[proportions]\nc4 = 0.9\nwikipedia = 0.1\n')  # the same name, other shares
    with pytest.raises(UserError) as refused:
        train(debug_config(tmp_path, mixture=str(mixture), steps=4), resume=True)
    assert str(refused.value) == (
        f"{tmp_path / 'run' / 'checkpoints' / 'step-00000002'}: the mixture {str(mixture)!r} draws other shares than "
        "when the run started (c4 0.5 -> 0.9, wikipedia 0.5 -> 0.1): the windows drawn so far followed the old ones; "
        "put the mixture back, or start a new run (--run NEW) to train on this one")
    mixture.write_text('name = "two"\n[proportions]\nc4 = 0.5\nwikipedia = 0.5\n')  # put back: it resumes
    assert train(debug_config(tmp_path, mixture=str(mixture), steps=4), resume=True).start_step == 2


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


@pytest.mark.slow
def test_an_interrupt_inside_an_update_leaves_the_last_good_checkpoint_as_it_was(tmp_path: Path) -> None:
    """A KeyboardInterrupt that lands once the optimizer has applied step 4 (counted as done only
    after train_step returns): saving then would file 5 updates under step 4, over the good one."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    config = debug_config(tmp_path, steps=8, checkpoint_every=2)
    updates: list[None] = []

    def interrupt_the_fifth_update(optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        updates.append(None)
        if len(updates) == 5:
            raise KeyboardInterrupt

    handle = register_optimizer_step_post_hook(interrupt_the_fifth_update)
    try:
        with pytest.raises(KeyboardInterrupt):
            train(config)
    finally:
        handle.remove()
    saved = checkpoint.list_checkpoints(tmp_path / "run")
    assert [p.name for p in saved] == ["step-00000002", "step-00000004"]
    assert checkpoint.read_state(saved[-1])["step"] == 4
    straight = train(debug_config(tmp_path, steps=8, checkpoint_every=2, run=str(tmp_path / "straight")))
    resumed = train(config, resume=True)
    assert resumed.start_step == 4 and resumed.losses == straight.losses[4:]  # bitwise: step 4 applied once


def test_mfu_is_logged_against_the_peak_given(tmp_path: Path) -> None:
    train(debug_config(tmp_path, steps=2, peak_flops=1e12))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    flops_per_step = [row["mfu"] * 1e12 / row["tokens_per_s"] for row in rows]
    # MFU = model FLOPs per token x tokens per second / the peak given: the same FLOPs per token each step.
    assert len(rows) == 2 and flops_per_step[0] > 0
    assert flops_per_step[1] == pytest.approx(flops_per_step[0], rel=1e-9)


@pytest.mark.slow
def test_a_resume_with_more_steps_keeps_the_default_warmup_and_stretches_the_cosine(tmp_path: Path) -> None:
    # The debug preset's default warmup is a tenth of a short run: 2 steps of 20, 3 of 30.
    train(debug_config(tmp_path, steps=20))
    extended = train(debug_config(tmp_path, steps=30), resume=True)
    assert extended.start_step == 20 and len(extended.losses) == 10
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["train"]["warmup_steps"] == 2
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(30))
    peak, floor = 3e-3, 3e-3 * 0.1  # the debug preset's rate; cosine to a tenth of it

    def rate(step: int, warmup: int, total: int) -> float:  # train/schedule.py's formula, written out
        if step < warmup:
            return peak * (step + 1) / warmup
        return floor + (peak - floor) * (1 + math.cos(math.pi * (step - warmup) / (total - 1 - warmup))) / 2

    # Steps 0-19 decayed to the floor at step 19; from step 20 the cosine of 30 steps, warmup 2 as before.
    assert [row["lr"] for row in rows] == pytest.approx(
        [rate(step, 2, 20) for step in range(20)] + [rate(step, 2, 30) for step in range(20, 30)], rel=1e-12)
    # The same command again is the finished run; a warmup given that differs is still refused.
    assert train(debug_config(tmp_path, steps=30)).losses == []
    with pytest.raises(UserError) as refused:
        train(debug_config(tmp_path, steps=40, warmup_steps=3), resume=True)
    assert str(refused.value) == (f"{run / 'checkpoints' / 'step-00000030'}: cannot resume with warmup_steps=3; "
                                  "the run was started with 2")


@pytest.mark.slow
def test_a_resume_names_the_metrics_rows_a_cut_or_deleted_log_lost(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    metrics = tmp_path / "run" / "metrics.jsonl"
    train(debug_config(tmp_path, steps=12, log_every=5))  # rows of steps 0, 5, 10 and the last, 11
    train(debug_config(tmp_path, steps=20), resume=True)  # every step from 12 on
    assert [json.loads(line)["step"] for line in metrics.read_text().splitlines()] == [0, 5, 10, 11, *range(12, 20)]
    assert capsys.readouterr().err == ""  # the rows of steps 1-4 were never written: none is missing
    # Cut inside the row of step 11, then the finished run asked for again.
    text = metrics.read_text()
    metrics.write_text(text[:text.index('{"step": 11,') + 20])
    assert train(debug_config(tmp_path, steps=20)).losses == []
    assert capsys.readouterr().err == (f"warning: {metrics}: the rows of steps 11-19 are missing (cut or deleted); "
                                       "they cannot be written again\n")
    # Deleted, then resumed for more steps: it trains on and logs the new steps.
    metrics.unlink()
    assert len(train(debug_config(tmp_path, steps=23), resume=True).losses) == 3
    assert capsys.readouterr().err == (f"warning: {metrics}: the rows of steps 0, 5, 10-19 are missing (cut or "
                                       "deleted); they cannot be written again\n")
    assert [json.loads(line)["step"] for line in metrics.read_text().splitlines()] == [20, 21, 22]


@pytest.mark.slow
def test_a_resume_names_the_documents_rows_a_cut_or_deleted_log_lost(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    documents = tmp_path / "run" / "documents.jsonl"

    def steps_logged() -> list[int]:
        return sorted({json.loads(line)["step"] for line in documents.read_text().splitlines()})

    train(debug_config(tmp_path, steps=6))  # no --log-documents: steps 0-5 have no rows, none is expected
    train(debug_config(tmp_path, steps=12, log_documents=True), resume=True)
    assert steps_logged() == list(range(6, 12))
    assert train(debug_config(tmp_path, steps=12, log_documents=True)).losses == []
    assert capsys.readouterr().err == ""
    # The rows of steps 9-11 cut away, then the finished run asked for again: named, nothing trained.
    lines = documents.read_text().splitlines(keepends=True)
    documents.write_text("".join(line for line in lines if json.loads(line)["step"] < 9))
    assert train(debug_config(tmp_path, steps=12, log_documents=True)).losses == []
    assert capsys.readouterr().err == (f"warning: {documents}: the rows of steps 9-11 are missing (cut or deleted); "
                                       "they cannot be written again\n")
    # Deleted, then resumed for more steps: the rows of 6-11 are named, the new steps logged.
    documents.unlink()
    assert len(train(debug_config(tmp_path, steps=14, log_documents=True), resume=True).losses) == 2
    assert capsys.readouterr().err == (f"warning: {documents}: the rows of steps 6-11 are missing (cut or deleted); "
                                       "they cannot be written again\n")
    assert steps_logged() == [12, 13]
