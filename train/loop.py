"""The training loop: one flat function from a TrainConfig to a trained run folder.

The same loop runs in one process and in each of N under torchrun: `Parallel` (train/parallel.py)
builds the (sharded) model and does the collectives, which are no-ops for one process.
"""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from pipeline.commands.mix import load_mixture
from pipeline.common.errors import UserError
from train import checkpoint
from train.config import TrainConfig, check_resume_compatible, resolve, write_config
from train.data import MixtureLoader, open_mixture
from train.metrics import MetricsLog, peak_flops
from train.model import flops_per_token
from train.parallel import Parallel, join
from train.schedule import learning_rate


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the state that produced it was saved for diagnosis."""


@dataclass
class TrainResult:
    run_dir: Path
    start_step: int
    steps: int
    losses: list[float] = field(default_factory=list)  # one per step run in this call
    checkpoint: Path | None = None


AfterStep = Callable[[int, float, nn.Module], None]


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


def train(config: TrainConfig, *, resume: bool = False, after_step: AfterStep | None = None,
          parallel: Parallel | None = None) -> TrainResult:
    """`parallel`: this rank's place in a torchrun job (train/parallel.py); default: this process alone."""
    par = parallel or join(config.strategy, config.device, config.tp)
    mixture = load_mixture(config.mixture)
    data = open_mixture(Path(config.data), mixture, skip_missing=config.skip_missing_sources)
    resolved = resolve(config, vocab_size=data.vocab_size, world_size=par.world_size,
                       tokenizer_sha256=data.tokenizer_sha256)
    cfg, run_dir, device = resolved.train, resolved.run_dir, par.device

    # Verified (every checksum) before anything in it is unpickled; a damaged one ends here.
    opened = checkpoint.open_latest(run_dir, par) if resume else None
    resume_from = opened.path if opened is not None else None
    if resume and resume_from is None:
        raise UserError(f"{run_dir}: no checkpoint to resume from")
    if not resume and checkpoint.latest(run_dir) is not None:
        raise UserError(f"{run_dir}: already holds checkpoints; pass --resume to continue it or --run for a new run")
    saved = opened.state if opened is not None else None
    if saved is not None:  # before building anything: another model shape is one clear line
        check_resume_compatible(saved["config"], resolved, resume_from)

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    # Tensor parallelism, activation checkpointing, compile and FSDP are applied on the meta
    # device; only this rank's shards are ever allocated. State-dict names stay the reference ones.
    model = par.build_model(resolved.model, cfg.seed, activation_checkpointing=cfg.activation_checkpointing,
                            compile=cfg.compile)
    optimizer = build_optimizer(model, cfg, device)
    loader = MixtureLoader(data.sources, data.proportions, seq_len=cfg.seq_len, micro_batch=cfg.micro_batch,
                           seed=cfg.seed)
    start_step = 0
    if opened is not None and saved is not None:
        opened.load_into(par, model, optimizer)
        loader.load_state_dict(saved["loader"])
        checkpoint.set_rng_state(saved["rng"])
        start_step = int(saved["step"])
        if not par.is_main:  # rank 0 carries the run's tokens drawn so far; the sum stays right
            loader.tokens_drawn = dict.fromkeys(loader.tokens_drawn, 0)
    if par.is_main:
        write_config(resolved, run_dir / "config.json")

    def save(name: str, completed_steps: int) -> Path:
        state = {"step": completed_steps, "loader": loader.state_dict(), "rng": checkpoint.rng_state(),
                 "config": resolved.to_json()}
        state["loader"]["tokens_drawn"] = par.sum_counts(loader.tokens_drawn)
        return checkpoint.save(par, run_dir, name, model, optimizer, state)

    def prune() -> None:
        if par.is_main:
            checkpoint.prune(run_dir, cfg.keep_checkpoints)

    num_params = sum(p.numel() for p in model.parameters())
    model_flops_per_token = flops_per_token(resolved.model, cfg.seq_len, num_params)
    device_peak = peak_flops(device, cfg.peak_flops)
    metrics = MetricsLog(run_dir / "metrics.jsonl", resume_from_step=start_step if resume_from else None) \
        if par.is_main else None
    result = TrainResult(run_dir=run_dir, start_step=start_step, steps=cfg.steps)
    tokens_per_step = cfg.batch_tokens
    # In a log file (not a terminal) a bar redrawn every step would be one endless line: draw
    # it every 30 s there; metrics.jsonl has every step anyway.
    bar = tqdm(total=cfg.steps, initial=start_step, disable=not cfg.progress or not par.is_main, desc=run_dir.name,
               unit="step", dynamic_ncols=True, mininterval=0.1 if sys.stderr.isatty() else 30.0)
    completed = start_step
    model.train()
    last_time = time.perf_counter()
    try:
        for step in range(start_step, cfg.steps):
            lr = learning_rate(step, peak=cfg.lr, warmup_steps=cfg.warmup_steps, total_steps=cfg.steps,
                               min_ratio=cfg.min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss_sum = torch.zeros((), device=device)
            for micro in range(resolved.grad_accum):
                inputs, targets = loader.batch(step, par.micro_index(micro, resolved.grad_accum))
                inputs = inputs.to(device, non_blocking=True)
                targets = targets.to(device, non_blocking=True)
                last = micro == resolved.grad_accum - 1
                with par.accumulation(model, last):
                    with par.autocast():
                        loss = model(inputs, targets)
                    # Each micro-batch's mean counts 1/accum so the gradient is the whole batch's mean
                    # (DDP and FSDP average over ranks on top).
                    (loss / resolved.grad_accum).backward()
                loss_sum += loss.detach()
            grad_norm = par.clip_grad_norm(model, cfg.grad_clip)
            loss_sum = par.mean(loss_sum)
            # The one host sync per step: the NaN check has to see the loss before the update.
            step_loss = (loss_sum / resolved.grad_accum).item()
            if not math.isfinite(step_loss):
                saved_at = save(f"diverged-{checkpoint.step_name(step)}", step)
                raise TrainingDiverged(f"loss is {step_loss} at step {step}; the model, optimizer and RNG state "
                                       f"before this step are saved in {saved_at}")
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            completed = step + 1

            now = time.perf_counter()
            elapsed, last_time = now - last_time, now
            tokens_per_s = tokens_per_step / elapsed
            result.losses.append(step_loss)
            if step % cfg.log_every == 0 or completed == cfg.steps:
                drawn = par.sum_counts(loader.tokens_drawn)
            if metrics is not None and (step % cfg.log_every == 0 or completed == cfg.steps):
                metrics.write({
                    "step": step, "loss": step_loss, "lr": lr, "grad_norm": float(grad_norm),
                    "tokens_per_s": tokens_per_s,
                    "mfu": model_flops_per_token * tokens_per_s / device_peak if device_peak else None,
                    "tokens": completed * tokens_per_step, "step_time_s": elapsed,
                    "tokens_drawn": drawn, "epochs": {s.name: drawn[s.name] / s.tokens for s in loader.sources},
                })
            bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.2e}", refresh=False)
            bar.update(1)
            if completed < cfg.steps and cfg.checkpoint_every and completed % cfg.checkpoint_every == 0:
                save(checkpoint.step_name(completed), completed)
                prune()
            if after_step is not None:
                after_step(step, step_loss, model)
        result.checkpoint = save(checkpoint.step_name(completed), completed)
        prune()
    except KeyboardInterrupt:
        # Parameters are consistent at the end of the last completed step: keep them for --resume.
        if completed > start_step:
            save(checkpoint.step_name(completed), completed)
            prune()
        raise
    finally:
        bar.close()
        if metrics is not None:
            metrics.close()
    return result
