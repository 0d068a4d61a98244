"""Where a run's checkpoints are and what they are called, without torch: `train export`,
`generate` and `eval` find the checkpoint a command names (or the latest) and refuse a wrong
one in a fraction of a second, before torch loads (train/checkpoint.py reads and writes them).

    <run>/checkpoints/step-NNNNNNNN/          one per saved step
    <run>/checkpoints/.replaced-step-NNNNNNNN/  a step's old copy while its re-save is renamed in
"""

from __future__ import annotations

from pathlib import Path

PREFIX = "step-"
REPLACED = ".replaced-"  # a step's old copy while the same step's new one is renamed into place


def checkpoint_root(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def step_name(step: int) -> str:
    return f"{PREFIX}{step:08d}"


def step_of(name: str) -> int | None:
    digits = name[len(PREFIX):]
    return int(digits) if name.startswith(PREFIX) and digits.isdigit() else None


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Finished step checkpoints, oldest first (temporary directories are ignored). A step whose
    re-save was killed between its two renames is its old copy, set aside under REPLACED."""
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return []
    found = {step: p for p in root.iterdir() if p.is_dir() and (step := step_of(p.name)) is not None}
    for aside in root.glob(f"{REPLACED}{PREFIX}*"):
        step = step_of(aside.name[len(REPLACED):])
        if step is not None and step not in found and aside.is_dir():
            found[step] = aside
    return [found[step] for step in sorted(found)]


def latest(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None
