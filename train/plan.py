"""`train plan`: memory per rank for a model on a cluster, from a meta-device model (nothing allocated).

    train plan --model 7b --world-size 8 --device-memory 80
    train plan --model 65b --world-size 2048 --tp 8 --activation-checkpointing selective --json

Per rank, for FSDP over world-size / tp data-parallel ranks and `--tp` tensor parallelism laid
out as train/parallel.py lays them out:

- parameters: fp32 master weights, each tensor split by tensor parallelism along the dimension
  train/parallel.py's TP_SPLIT_DIM names, then its dimension 0 split by FSDP (padded to a
  multiple of the data-parallel ranks, as fully_shard pads);
- gradients: fp32, sharded alike; optimizer: AdamW's two fp32 moments per parameter;
- FSDP buffers: the gathered parameters of two blocks (the one computing and the one
  prefetched, in the compute dtype) and one block's unsharded fp32 gradients before the
  reduce-scatter;
- activations: what each block keeps for the backward pass, from the formulas of
  `layer_activation_bytes` (below) for the activation-checkpointing mode of train/apply.py:
  `none` keeps every block's saved tensors; `selective` keeps every block's input and matrix-
  product and attention outputs, `full` every block's input only, and both recompute one block
  at a time in the backward pass, which then holds at most that block's saved tensors (`none`'s
  per layer) besides. Tensor parallelism with sequence parallelism divides a block's activations by
  tp (Korthikanti et al. 2022). Then the embedding output, final norm, output layer and
  cross-entropy, counted on meta tensors of the micro-batch's shape with a saved-tensors hook
  (distinct storages, summed, parameters left out). The output layer and loss: without
  tensor parallelism the fused loss of train/loss.py (one chunk of logits at a time, and the
  gradients it computes in the forward pass); with it, whole logits on every rank, and the
  backward pass starts with two more logits-sized fp32 gradients (the step's peak).

Compute dtype: bf16 on GPUs (FSDP's MixedPrecisionPolicy; norms and rotary run in fp32 inside),
fp32 on CPUs (`--precision fp32`). `--device-memory GIB` says whether the total fits.

The figures are live tensors. Allocators keep some slack on top: on CPUs glibc's adaptive mmap
threshold holds freed blocks in its heap, about a third more resident memory after a few steps
of the tiny preset (`MALLOC_MMAP_THRESHOLD_=1048576` makes the resident size follow the plan).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, with_config

from pipeline.common.config import STRICT, flag_name, validate

from train.config import MAX_MICRO_BATCH, MAX_RANKS, MAX_SEQ_LEN, MAX_VOCAB

GIB = 1024**3


@with_config(STRICT)
@dataclass(frozen=True)
class PlanShape:
    """The schema of `train plan`'s numeric flags; 0 is the preset's own value."""

    world_size: Annotated[int, Field(ge=1, le=MAX_RANKS)]
    tp: Annotated[int, Field(ge=1, le=MAX_RANKS)]
    seq_len: Annotated[int, Field(ge=0, le=MAX_SEQ_LEN)]
    micro_batch: Annotated[int, Field(ge=0, le=MAX_MICRO_BATCH)]
    vocab_size: Annotated[int, Field(ge=0, le=MAX_VOCAB)]


@dataclass(frozen=True)
class MemoryPlan:
    model: str
    world_size: int
    tp: int
    seq_len: int
    micro_batch: int
    activation_checkpointing: str  # none, selective or full (train/apply.py)
    precision: str
    params_total: int
    params_per_rank: int
    param_bytes_per_rank: int
    grad_bytes_per_rank: int
    optimizer_bytes_per_rank: int
    buffer_bytes_per_rank: int
    activation_bytes_per_rank: int
    total_bytes_per_rank: int
    # What one block keeps until the backward pass in each mode, on one rank.
    layer_activation_bytes: dict[str, int] = dataclasses.field(default_factory=dict)

    def fits(self, device_bytes: float) -> bool:
        return self.total_bytes_per_rank <= device_bytes


def plan(model: str, world_size: int, *, tp: int = 1, seq_len: int = 0, micro_batch: int = 0,
         activation_checkpointing: str | bool = "none", precision: str = "bf16",
         vocab_size: int = 0) -> MemoryPlan:
    """`activation_checkpointing`: none, selective or full (a bool: full or none, as it was)."""
    import torch

    from train.config import check_layout, preset
    from train.model import Transformer
    from train.model_args import CHECKPOINTING_MODES, checkpointing_mode
    from train.parallel import TP_SPLIT_DIM

    p = preset(model)
    seq_len = seq_len or p.seq_len
    micro_batch = micro_batch or p.micro_batch
    args = dataclasses.replace(p.model, max_seq_len=max(p.model.max_seq_len, seq_len),
                               vocab_size=vocab_size or p.model.vocab_size)
    check_layout(args, world_size, tp, seq_len)
    dp = world_size // tp
    compute = torch.bfloat16 if precision == "bf16" else torch.float32

    with torch.device("meta"):
        shapes = {name: tuple(t.shape) for name, t in Transformer(args).named_parameters()}
    params_total = sum(math.prod(s) for s in shapes.values())
    per_rank = {name: _rank_numel(name, shape, tp, dp, TP_SPLIT_DIM) for name, shape in shapes.items()}
    params_per_rank = sum(per_rank.values())
    block_params = sum(math.prod(s) for n, s in shapes.items() if n.startswith("layers.0.")) // tp

    buffers = 0
    if dp > 1:
        buffers = 2 * block_params * compute.itemsize + block_params * 4

    mode = checkpointing_mode(activation_checkpointing)
    if mode not in CHECKPOINTING_MODES:
        raise ValueError(f"activation checkpointing {mode!r}: expected one of {', '.join(CHECKPOINTING_MODES)}")
    per_layer = {m: layer_activation_bytes(args, micro_batch, seq_len, compute.itemsize, m) // tp
                 for m in CHECKPOINTING_MODES}
    head = _head_saved(args, micro_batch, seq_len, compute, tp)
    recomputed = per_layer["none"] if mode != "none" else 0  # the one block the backward pass reruns
    activations = args.n_layers * per_layer[mode] + recomputed + head

    param_bytes = 4 * params_per_rank
    total = param_bytes + 4 * params_per_rank + 8 * params_per_rank + buffers + activations
    return MemoryPlan(model=model, world_size=world_size, tp=tp, seq_len=seq_len, micro_batch=micro_batch,
                      activation_checkpointing=mode, precision=precision,
                      params_total=params_total, params_per_rank=params_per_rank, param_bytes_per_rank=param_bytes,
                      grad_bytes_per_rank=4 * params_per_rank, optimizer_bytes_per_rank=8 * params_per_rank,
                      buffer_bytes_per_rank=buffers, activation_bytes_per_rank=activations,
                      total_bytes_per_rank=total, layer_activation_bytes=per_layer)


def layer_activation_bytes(args: Any, micro_batch: int, seq_len: int, itemsize: int, mode: str) -> int:
    """Bytes one transformer block (train/model.py) keeps from its forward to its backward pass.

    With T = micro_batch x seq_len tokens, d = dim, d_kv = kv_heads x head_dim, f the SwiGLU
    hidden size, h heads, e the compute dtype's bytes (2 for bf16, 4 for fp32):

    full: e T d, the block's input; the rest is recomputed.

    selective: e T (5d + 2 d_kv + 2f) + 4 b h s: the block's input (d), the outputs of the seven
    matrix products, wq (d), wk and wv (2 d_kv), wo (d), w1 and w3 (2f), w2 (d), and attention's
    output (d) with its fp32 log-sum-exp (b h s).

    none: (16 + 4e) T d + 2e T d_kv + 4e T f + 8T + 4 b h s + 8 s head_dim (+ 8d below fp32),
    what autograd saves, operator by operator:
      each RMSNorm (attention's and the feed-forward's) keeps its input in fp32 (4Td: the input
      itself in fp32, an fp32 copy in bf16), its rsqrt (4T), the normalised fp32 product (4Td)
      and its output in the compute dtype (eTd), read by the projections after it; below fp32
      also the fp32 copy of its weight (4d);
      attention keeps v (eT d_kv), q and k after the rotation (eTd + eT d_kv), the two complex
      rotation tables (2 x s x head_dim/2 complex64 = 8 s head_dim), its output (eTd) and its
      fp32 log-sum-exp (4 b h s); never the s x s scores (flash and memory-efficient kernels);
      SwiGLU keeps w1's output, its SiLU, w3's output and their product (4 eTf).
    The formulas are checked against the storages a real forward leaves alive, per block and
    mode, in tests/train/test_plan.py.
    """
    tokens = micro_batch * seq_len
    d, d_kv, f, heads = args.dim, args.kv_heads * args.head_dim, args.ffn_hidden_dim, args.n_heads
    e = itemsize
    log_sum_exp = 4 * micro_batch * heads * seq_len
    if mode == "full":
        return e * tokens * d
    if mode == "selective":
        return e * tokens * (5 * d + 2 * d_kv + 2 * f) + log_sum_exp
    norm_weights = 2 * 4 * d if e < 4 else 0
    return ((16 + 4 * e) * tokens * d + 2 * e * tokens * d_kv + 4 * e * tokens * f + 8 * tokens + log_sum_exp
            + 8 * seq_len * args.head_dim + norm_weights)


def _rank_numel(name: str, shape: tuple[int, ...], tp: int, dp: int, split_dims: dict[str, int]) -> int:
    """Elements of one parameter on one rank: split by tp, then dimension 0 by FSDP (padded)."""
    local = list(shape)
    key = name.split(".", 2)[2] if name.startswith("layers.") else name
    if tp > 1 and key in split_dims:
        dim = split_dims[key]
        local[dim] = math.ceil(local[dim] / tp)
    if dp > 1:
        local[0] = math.ceil(local[0] / dp)
    return math.prod(local)


class _SavedBytes:
    """Bytes autograd saves for backward: distinct storages, parameters left out (they are
    counted as weights)."""

    def __init__(self, module: Any) -> None:
        self.parameters = {p.untyped_storage()._cdata for p in module.parameters()}
        self.storages: dict[int, int] = {}
        self.kept: list[Any] = []

    def pack(self, tensor: Any) -> Any:
        self.kept.append(tensor)  # alive until counted: a freed storage's address is never reused
        storage = tensor.untyped_storage()
        if storage._cdata not in self.parameters:
            self.storages[storage._cdata] = storage.nbytes()
        return tensor

    @property
    def total(self) -> int:
        return sum(self.storages.values())


def _head_saved(args: Any, micro_batch: int, seq_len: int, dtype: Any, tp: int) -> int:
    """Embedding output, final norm, and the output layer with its cross-entropy.

    One process or FSDP: the fused loss (train/loss.py) keeps the gradients of the hidden states
    and of the output weight (fp32) from its forward pass, and holds one chunk of logits at a
    time. Tensor parallelism: the plain loss on whole logits, which the loop keeps."""
    import torch
    import torch.nn.functional as F

    from train.loss import chunk_rows
    from train.model import RMSNorm

    tokens = micro_batch * seq_len
    with torch.device("meta"):
        norm = RMSNorm(args.dim, args.norm_eps).to(dtype)
        output = torch.nn.Linear(args.dim, args.vocab_size, bias=False).to(dtype)
        h = torch.empty(micro_batch, seq_len, args.dim, dtype=dtype, requires_grad=True)
        targets = torch.zeros(tokens, dtype=torch.long)
    embedding_output = tokens * args.dim * dtype.itemsize
    saved = _SavedBytes(torch.nn.ModuleList([norm, output]))
    if tp == 1:
        with torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda t: t):
            norm(h)
        rows = min(tokens, chunk_rows(args.vocab_size, torch.device("cuda" if dtype != torch.float32 else "cpu")))
        chunk = rows * args.vocab_size * (4 + (dtype.itemsize if dtype != torch.float32 else 0))
        gradients = tokens * args.dim * dtype.itemsize + args.vocab_size * args.dim * 4
        return saved.total + embedding_output + gradients + chunk
    with torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda t: t):
        logits = output(norm(h))
        F.cross_entropy(logits.flatten(0, 1).float(), targets)
    # At the start of the backward pass the loss's gradient flows through log-softmax: its
    # incoming and outgoing gradients are two more logits-sized fp32 tensors, the peak of the step.
    backward_peak = 2 * logits.numel() * 4
    return saved.total + logits.numel() * logits.element_size() + embedding_output + backward_peak


# GPU memory is sized in binary units whatever the label: an "80 GB" H100 holds 80 GiB of HBM
# (79.2 GiB as torch reports it), so GB and GiB are the same unit here.
MEMORY_UNITS = {"": GIB, "g": GIB, "gb": GIB, "gib": GIB, "t": 1024 * GIB, "tb": 1024 * GIB, "tib": 1024 * GIB,
                "m": 1024**2, "mb": 1024**2, "mib": 1024**2}
MEMORY_SIZE = re.compile(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*", re.IGNORECASE)


def device_memory_gib(text: str) -> float:
    """`--device-memory` in GiB: a number of GiB, or a size with its unit (80, 80GB, 141GiB, 0.5T)."""
    match = MEMORY_SIZE.fullmatch(text)
    unit = MEMORY_UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise argparse.ArgumentTypeError(f"{text!r} is no memory size (a number of GiB, or e.g. 80GB, 141GiB)")
    gib = float(match.group(1)) * unit / GIB
    if not (math.isfinite(gib) and gib > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: the memory per device must be a positive size")
    return gib


DESCRIPTION = (
    "Memory per rank (parameters, gradients, optimizer state, FSDP buffers, activations) for a preset "
    "on a cluster, computed from a meta-device model: nothing is allocated."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="preset: debug, tiny, 1b, 7b, 13b, 33b, 65b")
    parser.add_argument("--world-size", type=int, required=True, help="processes (GPUs) in all")
    parser.add_argument("--tp", type=int, default=1, help="tensor-parallel degree (default 1)")
    parser.add_argument("--seq-len", type=int, help="context length (default: the preset's)")
    parser.add_argument("--micro-batch", type=int, help="sequences per forward (default: the preset's)")
    parser.add_argument("--vocab-size", type=int, help="vocabulary (default: the preset's, 32000)")
    parser.add_argument("--activation-checkpointing", nargs="?", const="full", default="none",
                        choices=("none", "selective", "full"), help="none (default), selective (keep matrix-product "
                        "and attention outputs, recompute the element-wise rest) or full (keep each block's input, "
                        "recompute the block); the flag alone is full")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16",
                        help="compute dtype: bf16 on GPUs (default), fp32 on CPUs")
    parser.add_argument("--device-memory", type=device_memory_gib, metavar="SIZE",
                        help="memory per device, say whether the plan fits: GiB by default, or with a unit "
                        "(80GB, 141GiB, 0.5T; GB means GiB, as GPU memory is sized)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")


# Left out, the preset's value (0 below); given as 0, refused: it planned the preset's shape, as if
# the flag were not there (below 0: the schema's line).
PRESET_DEFAULTED = {"seq_len": 0, "micro_batch": 0, "vocab_size": 0}


def run(args: argparse.Namespace) -> None:
    from train.config import refuse_preset_markers

    refuse_preset_markers({name: getattr(args, name) for name in PRESET_DEFAULTED}, PRESET_DEFAULTED)
    for name in PRESET_DEFAULTED:
        if getattr(args, name) is None:
            setattr(args, name, 0)
    shape = PlanShape(**{f.name: getattr(args, f.name) for f in dataclasses.fields(PlanShape)})
    validate(PlanShape, shape, "", name=flag_name)
    result = plan(args.model, args.world_size, tp=args.tp, seq_len=args.seq_len, micro_batch=args.micro_batch,
                  activation_checkpointing=args.activation_checkpointing, precision=args.precision,
                  vocab_size=args.vocab_size)
    out: dict[str, Any] = dataclasses.asdict(result)
    if args.device_memory:
        out["device_memory_bytes"] = int(args.device_memory * GIB)
        out["fits"] = result.fits(args.device_memory * GIB)
    if args.json:
        print(json.dumps(out))
        return
    print(f"train plan: {result.model}, {result.world_size} ranks ({result.world_size // result.tp} FSDP x "
          f"{result.tp} TP), micro-batch {result.micro_batch} x {result.seq_len} tokens, {result.precision}, "
          f"activation checkpointing {result.activation_checkpointing}")
    print(f"  parameters      {result.params_total / 1e9:10.3f} B in all, {result.params_per_rank / 1e6:,.1f} M "
          "per rank")
    for label, key in (("weights (fp32)", "param_bytes_per_rank"), ("gradients", "grad_bytes_per_rank"),
                       ("AdamW moments", "optimizer_bytes_per_rank"), ("FSDP buffers", "buffer_bytes_per_rank"),
                       ("activations", "activation_bytes_per_rank"), ("total per rank", "total_bytes_per_rank")):
        print(f"  {label:<16}{out[key] / GIB:10.2f} GiB")
    per_layer = ", ".join(f"{mode} {size / 2**20:,.1f} MiB" for mode, size in result.layer_activation_bytes.items())
    print(f"  (activations of one layer: {per_layer})")
    if args.device_memory:
        verdict = "fits" if out["fits"] else "does NOT fit"
        print(f"  {verdict} in {args.device_memory:.4g} GiB per device "
              f"({(out['device_memory_bytes'] - result.total_bytes_per_rank) / GIB:+.2f} GiB to spare)")
    sys.stdout.flush()
