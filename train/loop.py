"""The training loop: a resolved config in, a trained run folder out.

`train_step` is one optimizer step, a function of its own that tests and benchmarks call
directly; `open_run` builds (or restores) what the steps work on; `train` is the flat loop
between them: schedule, step, metrics, progress, checkpoints.

The same loop runs in one process and in each of N under torchrun: `Parallel` (train/parallel.py)
builds the (sharded) model and does the collectives, which are no-ops for one process.

At a step boundary the loop may also evaluate the held-out loss (`--eval-every`, through
train/heldout.py) and, after a SIGTERM, SIGINT or SIGHUP to any rank, save a checkpoint and end on every
rank at the same step (train/preemption.py).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from pipeline.common.errors import UserError
from pipeline.corpus.mixture import load_mixture
from train import checkpoint
from train.checkpoint_paths import step_of
from train.config import ResolvedConfig, TrainConfig, check_resume_compatible, with_started_warmup, write_config
from train.data import MixtureLoader, open_mixture
from train.heldout import HeldOut, heldout_losses, open_heldout
from train.metrics import LoggedSpan, MetricsLog, logged_steps, peak_flops
from train.model import flops_per_token
from train.parallel import Parallel, join
from train.provenance import step_rows
from train.preemption import StopRequest
from train.schedule import learning_rate


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the state that produced it was saved for diagnosis."""


class NonFiniteLoss(Exception):
    """A step's loss is NaN or infinite; raised before the optimizer steps, so the model and the
    optimizer still hold the state that produced it."""

    def __init__(self, loss: float) -> None:
        super().__init__(f"loss is {loss}")
        self.loss = loss


@dataclass
class TrainResult:
    run_dir: Path
    start_step: int
    steps: int
    losses: list[float] = field(default_factory=list)  # one per step run in this call
    checkpoint: Path | None = None
    # Held-out losses (eval/<source>, eval/mixture) by number of steps done; on every rank.
    evals: dict[int, dict[str, float]] = field(default_factory=dict)
    completed: int = 0  # steps done when this call ended
    # "SIGTERM", "SIGINT" or "SIGHUP" when it ended before `steps` on that signal, with a checkpoint
    # (train/preemption.py).
    stopped_by: str = ""


@dataclass(frozen=True)
class StepResult:
    loss: float  # the mean over the step's micro-batches and ranks
    grad_norm: torch.Tensor  # 0-dim, before clipping; float() it only when logged: each read is a host sync


AfterStep = Callable[[int, float, nn.Module], None]
Batch = tuple[torch.Tensor, torch.Tensor]  # (inputs, targets), each (micro_batch, seq_len) token ids


def build_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only: not on norm weights, not on the embedding table.
    Built once, over the parameters as sharded (a rank's optimizer state is its shards' only)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.ndim >= 2 and "tok_embeddings" not in name:
            decay.append(param)
        else:
            no_decay.append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = device.type in ("cuda", "cpu")  # one kernel over all parameters instead of a Python loop
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=fused)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, micro_batches: Iterable[Batch], *,
               accumulation: int, lr: float, grad_clip: float, par: Parallel) -> StepResult:
    """One optimizer step at learning rate `lr` over `accumulation` micro-batches: forward and
    backward of each, gradient clipping to `grad_clip`, the update. Raises NonFiniteLoss instead
    of updating when the loss is NaN or infinite.

    `micro_batches` may be lazy: each is drawn just before its forward pass."""
    # Set before anything else: a checkpoint saved on divergence holds this step's rate.
    for group in optimizer.param_groups:
        group["lr"] = lr
    device = par.device
    loss_sum = torch.zeros((), device=device)
    seen = 0
    for micro, (inputs, targets) in enumerate(micro_batches):
        inputs = inputs.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        with par.accumulation(model, micro == accumulation - 1):
            with par.autocast():
                loss = model(inputs, targets)
            # Each micro-batch's mean counts 1/accumulation so the gradient is the whole batch's
            # mean (DDP and FSDP average over ranks on top).
            (loss / accumulation).backward()
        loss_sum += loss.detach()
        seen += 1
    if seen != accumulation:
        raise ValueError(f"train_step: {seen} micro-batches for an accumulation of {accumulation}")
    grad_norm = par.clip_grad_norm(model, grad_clip)
    loss_sum = par.mean(loss_sum)
    # The one host sync per step: the NaN check has to see the loss before the update.
    step_loss = (loss_sum / accumulation).item()
    if not math.isfinite(step_loss):
        raise NonFiniteLoss(step_loss)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return StepResult(loss=step_loss, grad_norm=grad_norm)


@dataclass
class RunState:
    """What a checkpoint saves (besides the global RNG states): the model, the optimizer and the
    loader's counters, with the config and the process group that say where and how."""

    resolved: ResolvedConfig
    par: Parallel
    model: nn.Module
    optimizer: torch.optim.Optimizer
    loader: MixtureLoader
    # How the run's steps were logged, this command's last (`logged_spans`): a resume from the
    # checkpoint knows which rows of metrics.jsonl it should find.
    logged: list[LoggedSpan] = field(default_factory=list)
    # Whether this command writes the run's config.json (`record_config`): not when it asked again
    # for a finished run as it was, whose record stays as it is.
    records_config: bool = False

    def record_config(self) -> None:
        """Write config.json, once everything that may refuse the command is open: a command refused
        (a mixture without held-out splits, a damaged metrics.jsonl) writes nothing, so the command
        that made a finished run still finds it finished."""
        if self.records_config:
            write_config(self.resolved, self.resolved.run_dir / "config.json")

    def save(self, name: str, completed_steps: int) -> Path:
        state = {"step": completed_steps, "loader": self.loader.state_dict(completed_steps),
                 "rng": checkpoint.rng_state(), "config": self.resolved.to_json(),
                 "logged": [span.to_json() for span in self.logged]}
        return checkpoint.save(self.par, self.resolved.run_dir, name, self.model, self.optimizer, state)

    def save_step(self, completed_steps: int) -> Path:
        """The checkpoint after `completed_steps`; the oldest beyond --keep-checkpoints are removed."""
        saved = self.save(checkpoint.step_name(completed_steps), completed_steps)
        if self.par.is_main:
            checkpoint.prune(self.resolved.run_dir, self.resolved.train.keep_checkpoints)
        return saved


def logged_spans(saved: dict[str, Any] | None, cfg: TrainConfig, start_step: int) -> list[LoggedSpan]:
    """How the steps before `start_step` were logged, from the checkpoint's state `saved` (None: a
    new run), then this command's settings from `start_step` on. A checkpoint of an older herd kept
    no record: its config's settings are taken for all its steps."""
    spans = []
    if saved is not None and "logged" in saved:
        spans = [LoggedSpan.from_json(span) for span in saved["logged"]]
    elif saved is not None and start_step > 0:
        then = saved["config"]["train"]
        spans = [LoggedSpan(0, then.get("log_every", 1), then.get("eval_every", 0), then.get("steps", start_step),
                            then.get("log_documents", False))]
    now = LoggedSpan(start_step, cfg.log_every, cfg.eval_every, cfg.steps, cfg.log_documents)
    if spans and dataclasses.replace(spans[-1], first=start_step) == now:
        return spans  # resumed as it was started: the same span goes on
    return [*spans, now]


# Settings that change how a run shows its progress, not what it trains.
PRESENTATION = ("progress",)


def finished_as_asked(run_dir: Path, resolved: ResolvedConfig) -> bool:
    """Whether the run in `run_dir` trained just what `resolved` asks, to its last step: its latest
    checkpoint is step --steps and its config.json is this config (token data and tokenizer
    included), but for how progress shows. Asking for it again is then asking for nothing."""
    latest = checkpoint.latest(run_dir)
    if latest is None or step_of(latest.name) != resolved.train.steps:
        return False
    try:
        recorded = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict):
        return False
    try:  # the warmup it kept when it was resumed with more steps
        resolved = with_started_warmup(resolved, recorded, run_dir / "config.json")
    except UserError:  # a config.json at odds with its checkpoint: not this run
        return False
    asked = json.loads(json.dumps(resolved.to_json()))  # as config.json holds it: lists, not tuples
    for config in (recorded, asked):
        if isinstance(config, dict) and isinstance(config.get("train"), dict):
            for key in PRESENTATION:
                config["train"].pop(key, None)
    return recorded == asked


def open_run(resolved: ResolvedConfig, par: Parallel, resume: bool) -> tuple[RunState, int, bool]:
    """The token data, model, optimizer and loader of a run, restored from its latest checkpoint
    when resuming; with the number of steps already done, and whether it resumed. Writes nothing:
    `RunState.record_config` writes the run's config.json. A finished run asked for again as it was (`finished_as_asked`) is resumed
    without --resume: there is nothing left to train, and the command says so (exit 0)."""
    cfg, run_dir = resolved.train, resolved.run_dir
    data = open_mixture(Path(cfg.data), load_mixture(cfg.mixture), skip_missing=cfg.skip_missing_sources)
    resolved = resolved.with_tokens(data.vocab_size, data.tokenizer_sha256, data.counts(),
                                    {source.name: share for source, share in zip(data.sources, data.proportions)})
    asked_again = not resume and finished_as_asked(run_dir, resolved)
    resume = resume or asked_again

    # Verified (every checksum) before anything in it is unpickled; a damaged one ends here.
    opened = checkpoint.open_latest(run_dir, par) if resume else None
    resume_from = opened.path if opened is not None else None
    if resume and resume_from is None:
        raise UserError(f"{run_dir}: no checkpoint to resume from")
    if not resume and checkpoint.latest(run_dir) is not None:
        raise UserError(f"{run_dir}: already holds checkpoints; pass --resume to continue it or --run for a new run")
    saved = opened.state if opened is not None else None
    # An imported model (train import) has trained no step here: this run's settings are its first.
    fresh_schedule = opened is not None and opened.weights_only
    if saved is not None and not fresh_schedule and int(saved["step"]) > cfg.steps:
        # Nothing to train, and not "finished": the run went further than asked (or was stopped
        # short of its own --steps). Refused before anything is written: its config.json still
        # says what the run is, so the command that made it still finds it finished.
        raise UserError(f"{run_dir}: at step {int(saved['step'])}, past --steps {cfg.steps}; nothing to train "
                        f"(ask for more than {int(saved['step'])} steps to continue it)")
    if saved is not None:  # before building anything: another model shape is one clear line
        if not fresh_schedule:  # an imported model has no warmup behind it: this run's is its first
            resolved = with_started_warmup(resolved, saved["config"], resume_from)
            cfg = resolved.train
        check_resume_compatible(saved["config"], resolved, resume_from, model_only=fresh_schedule)

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    # Tensor parallelism, activation checkpointing, compile and FSDP are applied on the meta
    # device; only this rank's shards are ever allocated. State-dict names stay the reference ones.
    model = par.build_model(resolved.model, cfg.seed, activation_checkpointing=cfg.activation_checkpointing,
                            compile=cfg.compile)
    optimizer = build_optimizer(model, cfg, par.device)
    loader = MixtureLoader(data.sources, data.proportions, seq_len=cfg.seq_len, micro_batch=cfg.micro_batch,
                           batch_tokens=cfg.batch_tokens, seed=cfg.seed)
    start_step = 0
    if opened is not None and saved is not None:
        opened.load_into(par, model, optimizer)
        if not fresh_schedule:
            loader.load_state_dict(saved["loader"])
            checkpoint.set_rng_state(saved["rng"])
        start_step = int(saved["step"])
    logged = logged_spans(None if fresh_schedule else saved, cfg, start_step)
    records = par.is_main and not asked_again  # asked again, the run's record stays as it was
    return RunState(resolved, par, model, optimizer, loader, logged, records), start_step, resume


def evaluate_heldout(model: nn.Module, heldout: HeldOut, seq_len: int, sequences: int,
                     par: Parallel) -> dict[str, float]:
    """The held-out losses of train/heldout.py on the model being trained. Every rank scores the
    same windows with the same weights (FSDP gathers them whole for each forward), so every rank
    holds the same numbers; in the training's precision (bf16 autocast on a GPU)."""
    model.eval()
    try:
        with par.autocast():
            return heldout_losses(model, heldout, seq_len, sequences)
    finally:
        model.train()


def train(resolved: ResolvedConfig, *, resume: bool = False, after_step: AfterStep | None = None,
          parallel: Parallel | None = None, stop: StopRequest | None = None) -> TrainResult:
    """`resolved`: train.config.resolve's, for this job's number of processes. `parallel`: this
    rank's place in a torchrun job (train/parallel.py); default: this process alone. `stop`: the
    SIGTERM, SIGINT and SIGHUP counter the caller installed (the CLI, for the whole process); default: one
    installed for this call only."""
    cfg = resolved.train
    par = parallel or join(cfg.strategy, cfg.device, cfg.tp)
    if par.world_size != resolved.world_size:  # grad_accum is per rank: the batch would be another size
        raise ValueError(f"config resolved for {resolved.world_size} processes, trained in {par.world_size}")
    # Opened before anything is written: a mixture without held-out splits is one line, not a late
    # crash, and leaves the run folder as it was.
    heldout = open_heldout(Path(cfg.data), dict(load_mixture(cfg.mixture).proportions)) if cfg.eval_every else None
    run, start_step, resume = open_run(resolved, par, resume)
    # The run's own settings from here on: a resumed run may keep its started warmup (open_run).
    resolved, model, run_dir = run.resolved, run.model, resolved.run_dir
    cfg = resolved.train

    num_params = sum(p.numel() for p in model.parameters())
    model_flops_per_token = flops_per_token(resolved.model, cfg.seq_len, num_params)
    device_peak = peak_flops(par.device, cfg.peak_flops)
    metrics = MetricsLog(run_dir / "metrics.jsonl", resume_from_step=start_step if resume else None,
                         expected=logged_steps(run.logged, start_step)) if par.is_main else None
    # Provenance (train/provenance.py): rank 0 names every rank's sequences, computed from the step.
    documents = MetricsLog(run_dir / "documents.jsonl", resume_from_step=start_step if resume else None,
                           expected=logged_steps(run.logged, start_step, LoggedSpan.has_documents)) \
        if par.is_main and cfg.log_documents else None
    result = TrainResult(run_dir=run_dir, start_step=start_step, steps=cfg.steps)
    run.record_config()
    tokens_per_step = cfg.batch_tokens
    # In a log file (not a terminal) a bar redrawn every step would be one endless line: draw
    # it every 30 s there; metrics.jsonl has every step anyway.
    bar = tqdm(total=cfg.steps, initial=start_step, disable=not cfg.progress or not par.is_main, desc=run_dir.name,
               unit="step", dynamic_ncols=True, mininterval=0.1 if sys.stderr.isatty() else 30.0)
    completed = start_step
    # Set when the optimizer starts applying a step, cleared once `completed` counts it: an
    # interrupt in between finds the parameters neither before nor after the step.
    updating = [False]
    update_hook = run.optimizer.register_step_pre_hook(lambda *_: updating.__setitem__(0, True))
    model.train()
    last_time = time.perf_counter()
    own_stop = stop is None
    if stop is None:
        stop = StopRequest()
        stop.install()
    stop.started()  # a signal from here on waits for the step boundary, where the run is saved
    try:
        for step in range(start_step, cfg.steps):
            lr = learning_rate(step, peak=cfg.lr, warmup_steps=cfg.warmup_steps, total_steps=cfg.steps,
                               min_ratio=cfg.min_lr_ratio)
            micro_batches = (run.loader.batch(step, par.micro_index(micro, resolved.grad_accum))
                             for micro in range(resolved.grad_accum))
            try:
                done = train_step(model, run.optimizer, micro_batches, accumulation=resolved.grad_accum, lr=lr,
                                  grad_clip=cfg.grad_clip, par=par)
            except NonFiniteLoss as diverged:
                saved_at = run.save(f"diverged-{checkpoint.step_name(step)}", step)
                raise TrainingDiverged(f"loss is {diverged.loss} at step {step}; the model, optimizer and RNG "
                                       f"state before this step are saved in {saved_at}") from None
            completed = step + 1
            updating[0] = False
            if documents is not None:
                for row in step_rows(run.loader.sampler, step, step_sequences=run.loader.step_sequences,
                                     micro_batch=cfg.micro_batch, data_ranks=par.dp_size,
                                     documents=run.loader.documents_of if run.loader.has_document_ids else None):
                    documents.write(row)

            now = time.perf_counter()
            elapsed, last_time = now - last_time, now
            tokens_per_s = tokens_per_step / elapsed
            result.losses.append(done.loss)
            if heldout is not None and completed % cfg.eval_every == 0:
                result.evals[completed] = evaluate_heldout(model, heldout, cfg.seq_len, cfg.eval_sequences, par)
                last_time = time.perf_counter()  # the next step's time is the step's alone
            if step % cfg.log_every == 0 or completed == cfg.steps or completed in result.evals:
                drawn = run.loader.tokens_drawn(completed)  # exact, from the step: no collective
                if metrics is not None:
                    row = {
                        "step": step, "loss": done.loss, "lr": lr, "grad_norm": float(done.grad_norm),
                        "tokens_per_s": tokens_per_s,
                        "tokens": completed * tokens_per_step, "step_time_s": elapsed,
                        "tokens_drawn": drawn, "epochs": run.loader.epochs(completed),
                    }
                    if device_peak:  # a known peak only (train/metrics.py): no MFU on a CPU
                        row["mfu"] = model_flops_per_token * tokens_per_s / device_peak
                    row.update(result.evals.get(completed, {}))
                    metrics.write(row)
            bar.set_postfix(loss=f"{done.loss:.4f}", lr=f"{lr:.2e}", refresh=False)
            bar.update(1)
            saved_here = completed < cfg.steps and cfg.checkpoint_every > 0 and completed % cfg.checkpoint_every == 0
            if saved_here:
                result.checkpoint = run.save_step(completed)
            if after_step is not None:
                after_step(step, done.loss, model)
            # Every rank takes part at every step (one that skipped it would leave the others
            # waiting): a signal to any rank stops all of them after this same step.
            if completed < cfg.steps and par.any_rank(stop.requested):
                if not saved_here:
                    result.checkpoint = run.save_step(completed)
                # Only when stopping: which signal, for the line that ends the run (rank 0 may have had none).
                result.stopped_by = next((name for name in par.gather(stop.first) if name), "SIGTERM")
                break
        if not result.stopped_by:
            latest = checkpoint.latest(run_dir)
            if completed == start_step and latest is not None and step_of(latest.name) == completed:
                result.checkpoint = latest  # a finished run resumed: no step trained, nothing to save again
            else:
                result.checkpoint = run.save_step(completed)
    except KeyboardInterrupt:
        # Not a signal the StopRequest counted (that one stops at a step boundary), or a second
        # Ctrl-C: someone who will not wait for a save. Otherwise the parameters are those after
        # the last completed step, unless the interrupt fell inside an update, and are kept for
        # --resume. One process only: a save is collective, and other ranks are elsewhere.
        if completed > start_step and not updating[0] and not stop.requested and par.world_size == 1:
            run.save_step(completed)
        raise
    finally:
        update_hook.remove()
        if own_stop:
            stop.restore()
        bar.close()
        if metrics is not None:
            metrics.close()
        if documents is not None:
            documents.close()
    result.completed = completed
    return result
