"""Parallelism applied from outside the model, for any number of processes (1 included).

    train --model tiny ...                                                 one process
    torchrun --nproc-per-node 8 --no-python train --model 7b --run-dir R   FSDP2 over 8 ranks
    torchrun --nproc-per-node 8 --no-python train --model 65b --tp 4 ...   FSDP x tensor parallel

The same `train` command runs under torchrun; a world size of 1 is a `Parallel` whose
collectives do nothing, so the training loop has one code path. The ranks form a 2D device mesh
(`dp` x `tp`, as torchtitan does): rank r is data-parallel rank r // tp and tensor-parallel
rank r % tp.

`build_model` applies, in torchtitan's order, on a model built on the meta device (nothing
allocated): tensor-parallel styles (column-wise wq/wk/wv/w1/w3 and the output layer, row-wise
wo/w2 and the embeddings, sequence parallel norms), activation checkpointing, compilation,
`fully_shard` per block and then the root; then `to_empty` allocates this rank's shards only and
every parameter is drawn whole on the CPU from the run's seed, in the model's init order, one at
a time, and this rank's part kept: the initial weights are a 1-process run's, and no rank ever
holds the whole model. DDP (`--strategy ddp`) instead replicates the materialised model.

Data: the global batch of a step is `dp x accumulation` micro-batches; micro-batch g is drawn
from (seed, step, g), and data-parallel rank d takes g = d * accum + m for its m-th: the global
batch is the one a single process draws, whatever the world size, so losses match a 1-process
run. Ranks of one tensor-parallel group draw the same micro-batches. Gradient accumulation
syncs once per step (FSDP2's `set_requires_gradient_sync`, DDP's `no_sync`).

Precision: on CUDA, FSDP's MixedPrecisionPolicy (bf16 parameters and compute, fp32 gradient
reduction), or bf16 autocast for one process or DDP; fp32 on CPUs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.tensor import DTensor, Replicate, Shard
from torch.distributed.tensor.parallel import (
    ColwiseParallel,
    PrepareModuleInput,
    RowwiseParallel,
    SequenceParallel,
    parallelize_module,
)

from pipeline.common.errors import UserError
from train.apply import apply_activation_checkpointing, apply_compile
from train.config import env_world
from train.model import ModelArgs, Transformer

STRATEGIES = ("fsdp", "ddp")

# Which dimension of each weight tensor parallelism splits (nn.Linear weights are (out, in)):
# column-wise layers split their outputs (dim 0), row-wise ones their inputs (dim 1); the
# embedding table is split by vocabulary rows. Norm weights are replicated. `train plan` sizes
# shards from this table too.
TP_SPLIT_DIM = {
    "tok_embeddings.weight": 0, "output.weight": 0,
    "attention.wq.weight": 0, "attention.wk.weight": 0, "attention.wv.weight": 0, "attention.wo.weight": 1,
    "feed_forward.w1.weight": 0, "feed_forward.w3.weight": 0, "feed_forward.w2.weight": 1,
}


@dataclass
class Parallel:
    """This process's place in the job; with world_size 1 every collective is a no-op."""

    strategy: str
    rank: int
    world_size: int
    tp: int
    device: torch.device
    mesh: DeviceMesh | None  # ("dp", "tp"); None for one process

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def dp_size(self) -> int:
        return self.world_size // self.tp

    @property
    def dp_rank(self) -> int:
        return self.rank // self.tp

    @property
    def fsdp(self) -> bool:
        return self.strategy == "fsdp" and self.dp_size > 1

    def micro_index(self, micro: int, accum: int) -> int:
        """The global index of this rank's `micro`-th micro-batch of a step."""
        return self.dp_rank * accum + micro

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        if self.world_size == 1:
            return value
        total = value.detach().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total / self.world_size

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when `flag` is true on at least one (a one-element all-reduce)."""
        if self.world_size == 1:
            return flag
        value = torch.tensor([int(flag)], dtype=torch.int32, device=self.comm_device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value` (a picklable object), in rank order, on every rank."""
        if self.world_size == 1:
            return [value]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    @property
    def comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA unless FSDP's mixed-precision policy casts already; fp32 on CPU."""
        if self.device.type == "cuda" and not self.fsdp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def accumulation(self, model: nn.Module, last: bool) -> Iterator[None]:
        """Forward and backward of one micro-batch; gradients are reduced across ranks only on the last."""
        if self.fsdp:
            model.set_requires_gradient_sync(last)
            yield
        elif self.strategy == "ddp" and self.dp_size > 1:
            with (contextlib.nullcontext() if last else model.no_sync()):
                yield
        else:
            yield

    def clip_grad_norm(self, model: nn.Module, max_norm: float) -> torch.Tensor:
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        # Over DTensors (FSDP, TP) the norm is a DTensor: its full value is a plain tensor.
        return norm.full_tensor() if isinstance(norm, DTensor) else norm

    # -- building the model -------------------------------------------------------------------

    def build_model(self, args: ModelArgs, seed: int, *, activation_checkpointing: str | bool = "none",
                    compile: bool = False) -> nn.Module:
        """The model, parallelised and initialised from `seed` (see the module docstring)."""
        with torch.device("meta"):
            model = Transformer(args)
        if self.tp > 1:
            apply_tensor_parallel(model, self.mesh["tp"])
        apply_activation_checkpointing(model, activation_checkpointing)  # `none` leaves it as is
        if compile:
            apply_compile(model)
        if self.fsdp:
            apply_fsdp(model, self.mesh["dp"], self.device)
        model.to_empty(device=self.device)
        init_from_seed(model, seed, self.device)
        if self.strategy == "ddp" and self.dp_size > 1:  # resolve() refuses ddp with --tp
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            return DistributedDataParallel(model, device_ids=device_ids)
        return model


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA device available")
    return torch.device(name)


def join(strategy: str, device: str, tp: int = 1) -> Parallel:
    """This process's Parallel: a no-op one alone, else join torchrun's job (gloo on CPUs, NCCL on GPUs)."""
    if strategy not in STRATEGIES:
        raise UserError(f"--strategy {strategy}: expected one of {', '.join(STRATEGIES)}")
    rank, world_size, local_rank = env_world()
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA device available")
    if world_size == 1:
        return Parallel(strategy, 0, 1, tp, pick_device(device), None)
    if use_cuda:
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    else:
        chosen = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world_size)
    mesh = init_device_mesh(chosen.type, (world_size // tp, tp), mesh_dim_names=("dp", "tp"))
    return Parallel(strategy, rank, world_size, tp, chosen, mesh)


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def apply_tensor_parallel(model: Transformer, mesh: DeviceMesh) -> None:
    """Megatron-style tensor parallelism with sequence-parallel norms (torchtitan's plan).

    Between blocks the residual stream is split along the sequence (Shard(1)); attention and
    the feed-forward gather it whole, compute their head / hidden slices, and reduce-scatter
    back. The output layer returns whole logits on every rank.
    """
    parallelize_module(model, mesh, {
        "tok_embeddings": RowwiseParallel(input_layouts=Replicate(), output_layouts=Shard(1)),
        "norm": SequenceParallel(),
        "output": ColwiseParallel(input_layouts=Shard(1), output_layouts=Replicate()),
    })
    for block in model.layers:
        parallelize_module(block, mesh, {
            "attention_norm": SequenceParallel(),
            "attention": PrepareModuleInput(input_layouts=(Shard(1), None, None),
                                            desired_input_layouts=(Replicate(), None, None)),
            "attention.wq": ColwiseParallel(),
            "attention.wk": ColwiseParallel(),
            "attention.wv": ColwiseParallel(),
            "attention.wo": RowwiseParallel(output_layouts=Shard(1)),
            "ffn_norm": SequenceParallel(),
            "feed_forward": PrepareModuleInput(input_layouts=(Shard(1),), desired_input_layouts=(Replicate(),)),
            "feed_forward.w1": ColwiseParallel(),
            "feed_forward.w3": ColwiseParallel(),
            "feed_forward.w2": RowwiseParallel(output_layouts=Shard(1)),
        })


def apply_fsdp(model: Transformer, mesh: DeviceMesh, device: torch.device) -> None:
    """fully_shard per block, so one block's parameters are gathered at a time, then the root
    (embeddings, final norm, output layer)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = (MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
              if device.type == "cuda" else MixedPrecisionPolicy())
    for block in model.layers:
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)


@torch.no_grad()
def init_from_seed(model: Transformer, seed: int, device: torch.device) -> None:
    """Initialise the allocated (possibly sharded) parameters as one process would.

    Each parameter is drawn whole on the CPU under `seed`, in the model's init order, into one
    scratch buffer the size of the largest parameter, and this rank's block of it copied in:
    besides the shards, at most one whole parameter is in memory at a time.
    """
    model.init_rope(device)
    torch.manual_seed(seed)
    plan = model.init_plan()
    drawn_elsewhere = [p for p, _ in plan if isinstance(p, DTensor) or p.device.type != "cpu"]
    scratch = torch.empty(max((p.numel() for p in drawn_elsewhere), default=0))
    for param, init in plan:
        if isinstance(param, DTensor) or param.device.type != "cpu":
            whole = scratch[:param.numel()].view(param.shape)
            init(whole)
            # Each rank drew the same tensor: it keeps its own block, with no communication.
            local = param.to_local() if isinstance(param, DTensor) else param
            local.copy_(_local_block(whole, param))
        else:
            init(param)


def _local_block(whole: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """This rank's block of a whole tensor laid out like `param` (a view, no copy)."""
    if not isinstance(param, DTensor):
        return whole
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    shape, offset = compute_local_shape_and_global_offset(param.shape, param.device_mesh, param.placements)
    block = whole
    for dim, (start, size) in enumerate(zip(offset, shape)):
        block = block.narrow(dim, start, size)
    return block
