"""Checkpoints: one directory per step, written atomically, verified by checksums on load.

    <run>/checkpoints/step-00000100/
        model.pt       model state dict (clean names: no compile or checkpoint-wrapper prefixes)
        optimizer.pt   AdamW state dict
        state.pt       step, data-loader counters, RNG states, the resolved config
        manifest.json  sha256 and size of each file above

A checkpoint is written to a hidden temporary directory and renamed into place, so a crash
while saving leaves the previous checkpoints intact and never a half-written one under a step
name; a save that fails (disk full) removes its temporary directory and raises an OSError
naming the file. Loading recomputes every checksum first: a truncated or corrupt file is a UserError
naming the file. torch.load runs with weights_only=True (no arbitrary unpickling).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.common.errors import InputError
from pipeline.common.files import file_sha256

FILES = ("model.pt", "optimizer.pt", "state.pt")
PREFIX = "step-"


def checkpoint_root(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        # weights_only loads accept tensors and plain containers, not numpy arrays.
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(run_dir: Path, name: str, model_state: dict[str, Any], optimizer_state: dict[str, Any],
         state: dict[str, Any]) -> Path:
    """Write a checkpoint directory `<run>/checkpoints/<name>` atomically; return its path."""
    root = checkpoint_root(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    tmp = root / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    manifest: dict[str, Any] = {"name": name, "step": state.get("step"), "files": {}}
    try:
        for filename, payload in zip(FILES, (model_state, optimizer_state, state)):
            path = tmp / filename
            _save_file(payload, path, final / filename)
            manifest["files"][filename] = {"sha256": file_sha256(path), "bytes": path.stat().st_size}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        _fsync_dir_files(tmp)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed save (disk full) leaves nothing behind
        if isinstance(e, OSError) and e.filename is None and e.errno is not None:
            raise OSError(e.errno, os.strerror(e.errno), str(final / "manifest.json")) from e
        raise
    if final.exists():  # the same step saved again (a resumed run re-reaching it): replace it
        shutil.rmtree(final)
    os.rename(tmp, final)
    return final


def step_name(step: int) -> str:
    return f"{PREFIX}{step:08d}"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Finished step checkpoints, oldest first (temporary directories are ignored)."""
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def latest(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def prune(run_dir: Path, keep: int) -> None:
    """Remove all but the newest `keep` step checkpoints, and stale temporary directories."""
    root = checkpoint_root(run_dir)
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    found = list_checkpoints(run_dir)
    for old in found[:max(0, len(found) - keep)]:
        shutil.rmtree(old)


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """{'model': ..., 'optimizer': ..., 'state': ...} after verifying every checksum."""
    manifest_path = path / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except FileNotFoundError:
        raise InputError(str(manifest_path), "missing: not a finished checkpoint") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise InputError(str(manifest_path), "corrupt checkpoint manifest") from None
    loaded: dict[str, Any] = {}
    for filename, key in zip(FILES, ("model", "optimizer", "state")):
        file = path / filename
        if filename not in files:
            raise InputError(str(manifest_path), f"does not list {filename}")
        if not file.is_file():
            raise InputError(str(file), "missing from checkpoint")
        expected = files[filename]
        if file.stat().st_size != expected["bytes"]:
            raise InputError(str(file), f"truncated or corrupt checkpoint file: {file.stat().st_size} bytes, "
                             f"manifest says {expected['bytes']}")
        if file_sha256(file) != expected["sha256"]:
            raise InputError(str(file), "corrupt checkpoint file: sha256 does not match manifest.json")
        loaded[key] = torch.load(file, map_location=map_location, weights_only=True)
    return loaded


class _RecordingFile:
    """A file torch.save writes through: torch turns a failed write into a RuntimeError without
    errno ("unexpected pos"); this keeps the OSError (disk full) so it can be reported as such."""

    def __init__(self, file: Any) -> None:
        self.file = file
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.file.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.file.flush()


def _save_file(payload: dict[str, Any], path: Path, final: Path) -> None:
    """torch.save to `path`; a write that fails is an OSError naming `final`, the file meant."""
    recording = None
    try:
        with open(path, "wb") as file:
            recording = _RecordingFile(file)
            torch.save(payload, recording)
    except (OSError, RuntimeError) as e:
        error = recording.error if recording is not None and recording.error is not None else e
        if isinstance(error, OSError) and error.errno is not None:
            raise OSError(error.errno, os.strerror(error.errno), str(final)) from e
        raise



def _fsync_dir_files(folder: Path) -> None:
    """Flush file contents before the rename makes the checkpoint visible."""
    for path in folder.iterdir():
        with open(path, "rb+") as f:
            os.fsync(f.fileno())
