"""Peak memory of a few real CPU training steps, for tests/train/test_plan.py.

    python tests/train/memory_worker.py TOKENS RUN OUT.json [--activation-checkpointing]

Trains the tiny preset (context 512, micro-batch 8, vocabulary 8000) for 3 steps in one
process and writes the growth of the resident-memory high-water mark from just before the
run to the end of its last step (the first step allocates the optimizer state; every step
runs forward, backward and AdamW).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import torch

from train.config import TrainConfig, preset, resolve
from train.loop import train
from train.parallel import join

SHAPE = {"model": "tiny", "seq_len": 512, "micro_batch": 8}


def kib(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024


def main(tokens: str, run: str, out: str, activation_checkpointing: bool) -> None:
    config = resolve(TrainConfig(data=tokens, run=run, steps=3, batch_tokens=512 * 8, progress=False, device="cpu",
                                 activation_checkpointing=activation_checkpointing, **SHAPE))
    # A first short run touches the code and allocator arenas a run touches, whatever its size.
    join("fsdp", "cpu").build_model(preset("debug").model, seed=0)
    torch.set_num_threads(1)
    before = kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    peaks: list[int] = []
    train(config, after_step=lambda step, loss, model: peaks.append(kib("VmHWM") - before))
    Path(out).write_text(json.dumps({"peak_growth_bytes": peaks[-1], "peaks": peaks}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], "--activation-checkpointing" in sys.argv[4:])
