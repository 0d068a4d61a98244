"""Performance transforms applied to a built model from outside it: activation checkpointing
and torch.compile (DDP/FSDP belong here too, next to these).

Activation checkpointing, per transformer block, in one of three modes:

- `none`: autograd keeps every tensor the backward pass needs, in every block.
- `full`: a block keeps only its input; its whole forward runs again in the backward pass.
- `selective`: what the LLaMA paper describes ("save the activations that are expensive to
  compute, such as the outputs of linear layers"): a block keeps its input and the outputs of its
  matrix products and attention kernels, and recomputes only the cheap element-wise operations
  between them (norms, rotary, SiLU, products and sums), which cost a few percent of its FLOPs.
  Under tensor parallelism the outputs of reduce-scatters are kept too: recomputing them would
  repeat the communication, not just arithmetic.

train/plan.py sizes each mode. All three keep the model's state-dict names: checkpoint_wrapper
strips its `_checkpoint_wrapped_module.` prefix through state-dict hooks, and `Module.compile()`
compiles in place instead of wrapping, so checkpoints and exports see the reference LLaMA names.
"""

from __future__ import annotations

import functools

import torch
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
from torch.utils.checkpoint import create_selective_checkpoint_contexts

from train.model import Transformer
from train.model_args import CHECKPOINTING_MODES, checkpointing_mode

def _kept_by_selective() -> list[torch._ops.OpOverload]:
    """The operators whose outputs `selective` keeps: matrix products (nn.Linear is aten.mm on the
    flattened tokens), every attention kernel SDPA may pick (CUDA flash, memory-efficient, cuDNN,
    and the CPU's flash), and tensor parallelism's reduce-scatter."""
    aten = torch.ops.aten
    return [aten.mm.default, aten.addmm.default, aten.bmm.default,
            aten._scaled_dot_product_flash_attention.default,
            aten._scaled_dot_product_efficient_attention.default,
            aten._scaled_dot_product_cudnn_attention.default,
            aten._scaled_dot_product_flash_attention_for_cpu.default,
            torch.ops._c10d_functional.reduce_scatter_tensor.default]


def apply_activation_checkpointing(model: Transformer, mode: str | bool = "full") -> None:
    """Wrap each transformer block for `mode` (see the module docstring); `none` leaves it as is."""
    mode = checkpointing_mode(mode)
    if mode not in CHECKPOINTING_MODES:
        raise ValueError(f"activation checkpointing {mode!r}: expected one of {', '.join(CHECKPOINTING_MODES)}")
    if mode == "none":
        return
    # The RNG state is not saved for the recomputation: the model has no dropout, nothing random.
    options = {"preserve_rng_state": False}
    if mode == "selective":
        options["context_fn"] = functools.partial(create_selective_checkpoint_contexts, _kept_by_selective())
    for index, block in enumerate(model.layers):
        model.layers[index] = checkpoint_wrapper(block, **options)


def apply_compile(model: Transformer) -> None:
    """Compile each block separately: the blocks are identical, so one graph is reused and
    compile time does not grow with depth."""
    for block in model.layers:
        block.compile(fullgraph=True)
