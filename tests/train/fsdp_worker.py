"""One rank of the sharded-build test (tests/train/test_fsdp_build.py): run under torchrun, or
alone for the 1-process reference.

    python -m torch.distributed.run --nproc-per-node 2 tests/train/fsdp_worker.py OUT_DIR

Builds the model through `Parallel.build_model` (meta device, fully_shard per block, to_empty,
init from the seed) with the peak resident memory reset just before, and writes
`OUT_DIR/rank-R.json`: the peak growth of resident memory while building, the bytes of parameter
storage this rank holds, the optimizer state's bytes after one step, the FSDP mixed-precision
policy. Rank 0 (and the lone process) also saves the whole initial weights to OUT_DIR/weights.pt,
gathered after the measurement, for the test to compare.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import torch
from torch.distributed.tensor import DTensor

from train.cli import end_without_teardown
from train.config import TrainConfig
from train.loop import build_optimizer
from train.model import ModelArgs
from train.parallel import join, leave

# About 55M parameters (222 MB in fp32); its largest tensor (the embeddings) is 8 MB, so a rank
# holding half the model plus one whole tensor stays far below the whole model.
ARGS = ModelArgs(dim=512, n_layers=16, n_heads=8, vocab_size=4096, multiple_of=256, max_seq_len=64)
WARM_UP = ModelArgs(dim=64, n_layers=2, n_heads=8, vocab_size=256, multiple_of=32, max_seq_len=64)


def kib(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024


def local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if isinstance(t, DTensor) else t


def main(out: Path) -> None:
    par = join("fsdp", "cpu")
    # A small build first touches the code and allocator arenas every build touches (tens of MB
    # of RSS whatever the model's size): what is measured next is the model's own memory.
    par.build_model(WARM_UP, seed=7)
    before = kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark restarts from here
    model = par.build_model(ARGS, seed=7)
    peak_growth = kib("VmHWM") - before
    param_bytes = sum(local(p).numel() * local(p).element_size() for p in model.parameters())
    optimizer = build_optimizer(model, TrainConfig(), par.device)
    model(torch.randint(0, ARGS.vocab_size, (1, 8))).float().mean().backward()
    optimizer.step()
    optimizer_bytes = sum(local(v).numel() * local(v).element_size() for state in optimizer.state.values()
                          for k, v in state.items() if k != "step")
    policy = model._get_fsdp_state()._mp_policy if par.fsdp else None
    report = {
        "world_size": par.world_size, "peak_growth_bytes": peak_growth, "param_bytes": param_bytes,
        "model_bytes": sum(p.numel() * 4 for p in model.parameters()),
        "largest_param_bytes": max(p.numel() * 4 for p in model.parameters()),
        "optimizer_bytes": optimizer_bytes,
        "optimizer_params_are_the_models": {id(p) for g in optimizer.param_groups for p in g["params"]}
        == {id(p) for p in model.parameters()},
        "param_dtypes": sorted({str(p.dtype) for p in model.parameters()}),
        "mp_param_dtype": str(policy.param_dtype) if policy is not None else None,
        "sharded": all(isinstance(p, DTensor) for p in model.parameters()),
    }
    # Not part of the measurement: the whole initial weights, gathered to compare with one process.
    model_again = par.build_model(ARGS, seed=7)
    weights = {name: (p.full_tensor() if isinstance(p, DTensor) else p).detach().clone()
               for name, p in model_again.named_parameters()}
    if par.is_main:
        torch.save(weights, out / "weights.pt")
    (out / f"rank-{par.rank}.json").write_text(json.dumps(report))
    par.barrier()  # as `train` does before leaving
    leave()


if __name__ == "__main__":
    # Ended as `train` ends a rank: without the interpreter's teardown, where one can abort.
    end_without_teardown(lambda: main(Path(sys.argv[1])))
