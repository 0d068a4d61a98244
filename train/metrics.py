"""Training metrics: metrics.jsonl rows and model FLOPs utilisation.

MFU = achieved model FLOPs / peak FLOPs, with the model FLOPs per token from
`train.model.flops_per_token` (6 x non-embedding parameters + attention). The peak is the
dense bf16 tensor-core figure of a known GPU, or `--peak-flops` when given. Anywhere else (a
CPU, an unknown GPU) the peak is unknown and MFU is left out: a peak guessed by timing a matmul
would make the ratio say nothing about the hardware.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pipeline.common.errors import InputError
from pipeline.common.files import write_text_atomic
from pipeline.common.warn import warn

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


@dataclass(frozen=True)
class LoggedSpan:
    """Steps trained with one set of logging settings, from `first` to where the next span starts
    (a resume may change --log-every, --eval-every and --steps): which of them have a row in
    metrics.jsonl. A checkpoint keeps the spans of the steps it holds (train/loop.py)."""

    first: int
    log_every: int
    eval_every: int  # 0: never
    steps: int  # the --steps of the command that trained them: the row of the last is always written
    # Whether documents.jsonl got each step's rows (--log-documents); False where a checkpoint of an
    # older herd did not say, so that no row is expected that may never have been written.
    documents: bool = False

    def has_row(self, step: int) -> bool:
        """The loop's rule (train/loop.py): every --log-every steps, the last step, and the step
        whose end is a held-out evaluation."""
        return (step % self.log_every == 0 or step + 1 == self.steps
                or (self.eval_every > 0 and (step + 1) % self.eval_every == 0))

    def has_documents(self, step: int) -> bool:
        """Whether documents.jsonl holds the step's rows: every step, under --log-documents."""
        return self.documents

    def to_json(self) -> dict[str, int | bool]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, value: dict[str, int | bool]) -> LoggedSpan:
        return cls(**value)  # type: ignore[arg-type]


def logged_steps(spans: list[LoggedSpan], end: int,
                 has_row: Callable[[LoggedSpan, int], bool] = LoggedSpan.has_row) -> list[int]:
    """The steps before `end` that have a row (in metrics.jsonl; `LoggedSpan.has_documents`: in
    documents.jsonl), when the steps from each span's first on (to the next's) were trained with
    its settings."""
    ordered = sorted(spans, key=lambda span: span.first)
    steps = []
    for span, following in zip(ordered, [*ordered[1:], None]):
        stop = min(end, following.first if following is not None else end)
        steps.extend(step for step in range(span.first, stop) if has_row(span, step))
    return steps


class MetricsLog:
    """Appends one JSON object per logged step to <run>/metrics.jsonl (documents.jsonl too).

    Resuming from the checkpoint of step C, the rows of steps from C on are dropped (they are
    trained again). `expected`: the steps before C that were logged (`logged_steps`); those whose
    rows are gone (the file cut short, rows deleted, the whole file) are named in one warning
    line on stderr. They cannot be written again, and a damaged log does not stop the training."""

    def __init__(self, path: Path, resume_from_step: int | None, expected: list[int] | None = None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[tuple[int, str]] = []
        if resume_from_step is None:
            path.write_text("")
        elif path.exists():
            # Steps after the checkpoint were lost with the crash and will be run again. Replaced
            # whole: a kill while rewriting in place would lose the rows of the steps kept. Left as
            # it is when it holds those rows alone (a finished run asked again rewrites nothing).
            kept, text = _rows_before(path, resume_from_step)
            rows = "".join(line + "\n" for _, line in kept)
            if rows != text:
                write_text_atomic(path, rows)
        if resume_from_step is not None and expected:
            present = {step for step, _ in kept}
            missing = [step for step in expected if step not in present]  # `expected`: steps before the checkpoint
            if missing:
                warn(f"warning: {path}: {missing_rows(missing)}")
        self.file = open(path, "a")

    def write(self, row: dict[str, Any]) -> None:
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _rows_before(path: Path, step: int) -> tuple[list[tuple[int, str]], str]:
    """The lines of `path` for steps before `step`, each with its step, and the file's text as read
    (read once: documents.jsonl holds a row per sequence). A last line cut short is the row a
    killed run was writing (after its last checkpoint, so a row to be written again) and is
    dropped; a line that does not parse anywhere else is damage, one InputError naming the file
    and the line."""
    text = path.read_text(errors="replace")
    lines = text.splitlines()
    kept = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row_step = json.loads(line)["step"]
            earlier = row_step < step
        except (ValueError, KeyError, TypeError):
            if number == len(lines) and not text.endswith("\n"):
                break
            raise InputError(str(path), f"line {number} is not a row of a step (damaged); move the file aside "
                             "to resume without the earlier rows") from None
        if earlier:
            kept.append((row_step, line))
    return kept, text


def missing_rows(steps: list[int], shown: int = 8) -> str:
    """Which rows are missing (`steps`, sorted), in a few words; past `shown` groups of steps
    (`step_groups`), how many steps more."""
    groups = step_groups(steps)
    text = ", ".join(group for group, _ in groups[:shown])
    more = sum(count for _, count in groups[shown:])
    if more:
        text += f" and {more} more"
    if len(steps) == 1:
        return f"the row of step {text} is missing (cut or deleted); it cannot be written again"
    return f"the rows of steps {text} are missing (cut or deleted); they cannot be written again"


def step_groups(steps: list[int]) -> list[tuple[str, int]]:
    """`steps` (sorted) as groups, each written out with how many steps it holds: a run of
    consecutive steps as "9-19", of steps at an equal spacing (every --log-every) as
    "0, 5, ..., 95", any other step alone. Two consecutive steps, or three spaced, stay apart:
    "9, 10" and "0, 5, 10" say it as briefly."""
    groups, start = [], 0
    while start < len(steps):
        end = start + 1  # the group is steps[start:end]
        if end < len(steps):
            spacing = steps[end] - steps[start]
            while end < len(steps) and steps[end] - steps[end - 1] == spacing:
                end += 1
            if end - start < (3 if spacing == 1 else 4):
                end = start + 1
        first, last, count = steps[start], steps[end - 1], end - start
        if count == 1:
            groups.append((f"{first}", 1))
        elif last - first == count - 1:
            groups.append((f"{first}-{last}", count))
        else:
            groups.append((f"{first}, {steps[start + 1]}, ..., {last}", count))
        start = end
    return groups


def read_metrics(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
