"""Training metrics: metrics.jsonl rows and model FLOPs utilisation.

MFU = achieved model FLOPs / peak FLOPs, with the model FLOPs per token from
`train.model.flops_per_token` (6 x non-embedding parameters + attention). The peak is the
dense bf16 tensor-core figure of a known GPU, or `--peak-flops` when given. Anywhere else (a
CPU, an unknown GPU) the peak is unknown and MFU is left out: a peak guessed by timing a matmul
would make the ratio say nothing about the hardware.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from pipeline.common.errors import InputError
from pipeline.common.files import write_text_atomic

# Dense bf16 peak per device (vendor datasheets), matched by substring of the device name.
GPU_PEAK_FLOPS = {
    "H200": 989.5e12,
    "H100 PCIe": 756e12,
    "H100": 989.5e12,
    "GH200": 989.5e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10G": 70e12,
    "A10": 125e12,
    "RTX 4090": 165e12,
    "RTX 3090": 71e12,
    "V100": 125e12,
    "MI300X": 1307e12,
}


def peak_flops(device: torch.device, given: float = 0.0) -> float:
    """Peak FLOP/s of one device: `given` when positive, a known GPU's datasheet figure, else 0.0
    (unknown: no MFU)."""
    if given > 0:
        return given
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, flops in GPU_PEAK_FLOPS.items():
            if key in name:
                return flops
    return 0.0


class MetricsLog:
    """Appends one JSON object per logged step to <run>/metrics.jsonl (documents.jsonl too)."""

    def __init__(self, path: Path, resume_from_step: int | None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_from_step is None:
            path.write_text("")
        elif path.exists():
            # Steps after the checkpoint were lost with the crash and will be run again. Replaced
            # whole: a kill while rewriting in place would lose the rows of the steps kept.
            kept = _rows_before(path, resume_from_step)
            write_text_atomic(path, "".join(line + "\n" for line in kept))
        self.file = open(path, "a")

    def write(self, row: dict[str, Any]) -> None:
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _rows_before(path: Path, step: int) -> list[str]:
    """The lines of `path` for steps before `step`. A last line cut short is the row a killed run
    was writing (after its last checkpoint, so a row to be written again) and is dropped; a line
    that does not parse anywhere else is damage, one InputError naming the file and the line."""
    text = path.read_text(errors="replace")
    lines = text.splitlines()
    kept = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            earlier = json.loads(line)["step"] < step
        except (ValueError, KeyError, TypeError):
            if number == len(lines) and not text.endswith("\n"):
                break
            raise InputError(str(path), f"line {number} is not a row of a step (damaged); move the file aside "
                             "to resume without the earlier rows") from None
        if earlier:
            kept.append(line)
    return kept


def read_metrics(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
