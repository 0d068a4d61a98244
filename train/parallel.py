"""Data parallelism applied from outside the model: DDP or FSDP2 (`fully_shard`), under torchrun.

    torchrun --nproc-per-node 8 -m train.parallel --strategy fsdp --mixture llama1 --model 7b

takes every `train` flag plus `--strategy ddp|fsdp` (and `--run-dir` for `--run`, which
torchrun's parser would take for its own `--run-path`). What changes against one process:

- Data: the global batch of a step is `ranks x accumulation` micro-batches, micro-batch g drawn
  by the loader from (seed, step, g); rank r takes g = r * accum + m for its m-th micro-batch.
  Every rank reads different sequences, and the global batch is the one a single process with
  the same batch size draws, whatever the world size: losses match a 1-process run.
- Gradient accumulation syncs once per step: DDP's `no_sync()` and FSDP2's
  `set_requires_gradient_sync(False)` skip the all-reduce / reduce-scatter on all but the last
  micro-batch.
- Checkpoints are full (unsharded) state dicts in the single-process format, gathered to rank 0
  and written by it alone: a checkpoint of any world size resumes at any other, including 1.
- Rank 0 alone writes config.json, metrics.jsonl and checkpoints and shows progress; the loss
  and tokens drawn it reports are summed over ranks.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist
from torch import nn

from pipeline.common.errors import UserError

STRATEGIES = ("ddp", "fsdp")


@dataclass
class Parallel:
    """This process's place in a torchrun job and the strategy it applies."""

    strategy: str
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def micro_index(self, micro: int, accum: int) -> int:
        """The global index of this rank's `micro`-th micro-batch of a step."""
        return self.rank * accum + micro

    def barrier(self) -> None:
        dist.barrier()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        total = value.detach().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total / self.world_size

    def sum_counts(self, counts: dict[str, int]) -> dict[str, int]:
        names = sorted(counts)
        values = torch.tensor([counts[n] for n in names], dtype=torch.int64, device=self.comm_device)
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return dict(zip(names, (int(v) for v in values.tolist())))

    @property
    def comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")


def env_world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) outside it."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def init(strategy: str, device: str = "auto") -> Parallel:
    """Join the torchrun job: gloo on CPUs, NCCL on GPUs (one per local rank)."""
    if strategy not in STRATEGIES:
        raise UserError(f"--strategy {strategy}: expected one of {', '.join(STRATEGIES)}")
    rank, world_size, local_rank = env_world()
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: no CUDA device available")
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    else:
        chosen = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world_size)
    return Parallel(strategy, rank, world_size, local_rank, chosen)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


# -- applying the strategy -------------------------------------------------------------------

BuildOptimizer = Callable[[nn.Module], torch.optim.Optimizer]


def parallelize(model: nn.Module, optimizer: torch.optim.Optimizer, par: Parallel,
                build_optimizer: BuildOptimizer) -> tuple[nn.Module, torch.optim.Optimizer]:
    """Wrap `model` for `par.strategy`; returns the module to call and the optimizer to step.

    Apply after activation checkpointing and compilation (torchtitan's order). DDP keeps the
    parameters, so the optimizer (and any state loaded into it) stays. FSDP2 swaps them for
    sharded DTensors, so a new optimizer is built over the shards and the old one's state,
    full tensors in the single-process format, is scattered into it.
    """
    if par.strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [par.device.index] if par.device.type == "cuda" else None
        # DDP broadcasts rank 0's parameters: ranks start identical even if their inits differed.
        return DistributedDataParallel(model, device_ids=device_ids), optimizer

    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    full_state = optimizer.state_dict()
    names = _parameter_names(model, optimizer)
    mesh = init_device_mesh(par.comm_device.type, (par.world_size,))
    # One unit per block, so only one block's parameters are gathered at a time; the root unit
    # holds the embeddings, final norm and output layer.
    for block in _blocks(model):
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    sharded = build_optimizer(model)
    if full_state["state"]:
        set_optimizer_state_dict(model, sharded, _by_name(full_state, names),
                                 options=StateDictOptions(full_state_dict=True))
    else:
        _copy_group_settings(full_state, sharded)
    return model, sharded


def _blocks(model: nn.Module) -> list[nn.Module]:
    layers = getattr(model, "layers", None)
    return list(layers) if layers is not None else []


@contextlib.contextmanager
def accumulation(model: nn.Module, par: Parallel, last: bool) -> Iterator[None]:
    """Forward and backward of one micro-batch; gradients are reduced across ranks only on the last."""
    if par.strategy == "ddp":
        with (contextlib.nullcontext() if last else model.no_sync()):
            yield
    else:
        model.set_requires_gradient_sync(last)
        yield


def grad_norm_value(norm: torch.Tensor) -> torch.Tensor:
    """clip_grad_norm_ over FSDP2's DTensors returns a DTensor: its full value, a plain tensor."""
    return norm.full_tensor() if hasattr(norm, "full_tensor") else norm


# -- checkpoints: full state dicts in the single-process format ------------------------------------

def full_state_dicts(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Model and optimizer state as one process would save them (names without wrapper
    prefixes, the optimizer keyed by parameter index), complete on rank 0 (collective: every
    rank calls it)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    names = _parameter_names(model, optimizer)
    model_state = get_model_state_dict(model, options=options)
    optimizer_state = get_optimizer_state_dict(model, optimizer, options=options)
    if "param_groups" not in optimizer_state:  # ranks other than 0 receive nothing with cpu_offload
        return model_state, optimizer_state
    return model_state, _by_index(optimizer_state, names)


def save_checkpoint(par: Parallel, run_dir: Path, name: str, model: nn.Module,
                    optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> Path:
    from train import checkpoint

    model_state, optimizer_state = full_state_dicts(model, optimizer)
    path = checkpoint.checkpoint_root(run_dir) / name
    if par.is_main:
        path = checkpoint.save(run_dir, name, model_state, optimizer_state, state)
    par.barrier()  # no rank runs ahead (or prunes) before the checkpoint exists
    return path


def _parameter_names(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[list[str]]:
    """The clean name of every parameter in each optimizer group, in group order."""
    by_id = {id(p): _clean_name(n) for n, p in model.named_parameters()}
    return [[by_id[id(p)] for p in group["params"]] for group in optimizer.param_groups]


def _clean_name(name: str) -> str:
    for prefix in ("module.", "_orig_mod."):
        name = name.replace(prefix, "")
    return name.replace("_checkpoint_wrapped_module.", "")


def _by_name(state: dict, names: list[list[str]]) -> dict:
    """Index-keyed optimizer state (optimizer.state_dict()) -> name-keyed (torch.distributed.checkpoint)."""
    flat = [n for group in names for n in group]
    groups = [dict(g, params=list(group_names)) for g, group_names in zip(state["param_groups"], names)]
    return {"state": {flat[i]: v for i, v in state["state"].items()}, "param_groups": groups}


def _by_index(state: dict, names: list[list[str]]) -> dict:
    """Name-keyed optimizer state -> the index-keyed form a single process saves and loads."""
    index: dict[str, int] = {}
    groups = []
    for group_names, group in zip(names, _groups_in_order(state["param_groups"], names)):
        ids = []
        for n in group_names:
            index[n] = len(index)
            ids.append(index[n])
        groups.append(dict(group, params=ids))
    return {"state": {index[n]: v for n, v in state["state"].items() if n in index}, "param_groups": groups}


def _groups_in_order(groups: list[dict], names: list[list[str]]) -> list[dict]:
    by_first = {g["params"][0]: g for g in groups if g["params"]}
    return [by_first[group_names[0]] for group_names in names]


def _copy_group_settings(full_state: dict, optimizer: torch.optim.Optimizer) -> None:
    for saved, group in zip(full_state["param_groups"], optimizer.param_groups):
        group.update({k: v for k, v in saved.items() if k != "params"})


# -- the torchrun entry point ----------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from train.cli import build_parser as train_parser

    parser = train_parser()
    parser.prog = "torchrun --nproc-per-node N -m train.parallel"
    parser.description = ("Train with data parallelism under torchrun: every `train` flag, plus --strategy. "
                          "The batch (--batch-tokens) is global: it must be a multiple of "
                          "context x micro-batch x processes.")
    parser.add_argument("--strategy", default="fsdp", choices=STRATEGIES,
                        help="ddp: replicated weights, all-reduced gradients; fsdp: FSDP2 fully_shard per "
                        "block (default fsdp)")
    # torchrun's own parser reads `--run` as an ambiguous abbreviation of its --run-path.
    parser.add_argument("--run-dir", dest="run", help="the same as --run (which torchrun does not pass on)")
    return parser


def config_from_args(args: argparse.Namespace):
    from train.config import TrainConfig, load_overrides

    known = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in known}
    values["progress"] = False if args.no_progress else None
    return load_overrides(args.config, values)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    rank, world_size, _ = env_world()
    try:
        from train.config import resolve
        from train.loop import train

        config = config_from_args(args)
        resolve(config, world_size=world_size)  # the batch arithmetic, before any process waits on another
        par = init(args.strategy, config.device)
        try:
            result = train(config, resume=args.resume, parallel=par)
        finally:
            shutdown()
    except UserError as e:
        if rank == 0:  # every rank hits the same error: say it once
            print(f"train: error: {e}", file=sys.stderr)
        sys.exit(2)
    if rank == 0 and result.losses:
        print(f"train: {world_size} processes ({args.strategy}); steps {result.start_step}-{result.steps} done; "
              f"loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}; checkpoint {result.checkpoint}")


if __name__ == "__main__":
    main()
