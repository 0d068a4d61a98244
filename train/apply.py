"""Performance transforms applied to a built model from outside it: activation checkpointing
and torch.compile (DDP/FSDP belong here too, next to these).

Both keep the model's state-dict names unchanged: checkpoint_wrapper strips its
`_checkpoint_wrapped_module.` prefix through state-dict hooks, and `Module.compile()` compiles
in place instead of wrapping, so checkpoints and exports see the reference LLaMA names.
"""

from __future__ import annotations

from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

from train.model import Transformer


def apply_activation_checkpointing(model: Transformer) -> None:
    """Recompute each transformer block's activations in the backward pass instead of storing them."""
    for index, block in enumerate(model.layers):
        model.layers[index] = checkpoint_wrapper(block, preserve_rng_state=False)


def apply_compile(model: Transformer) -> None:
    """Compile each block separately: the blocks are identical, so one graph is reused and
    compile time does not grow with depth."""
    for block in model.layers:
        block.compile(fullgraph=True)
