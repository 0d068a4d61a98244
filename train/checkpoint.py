"""Checkpoints: one directory per step, sharded with torch.distributed.checkpoint (DCP),
written atomically, verified by checksums on load. One format for every world size.

    <run>/checkpoints/step-00000100/
        __0_0.distcp, __1_0.distcp, ...  model and optimizer state: each rank writes the shards
                                         it holds, in parallel, one file per rank (nothing is
                                         gathered to one process)
        .metadata                        DCP's index: which file holds which part of each tensor
        state.pt                         step, data-loader counters, RNG states, the resolved config
        manifest.json                    sha256 and size of each file above

A checkpoint of any world size resumes at any other: DCP reads each rank's parts of each tensor
from wherever they were written (resharding on load), and one process reads whole tensors.
Export, generation and evaluation read the model's tensors one at a time (`model_tensors`).

A checkpoint is written to a hidden temporary directory and renamed into place, so a crash
while saving leaves the previous checkpoints intact and never a half-written one under a step
name; a save that fails (disk full) removes its temporary directory and raises an OSError
naming the file. Loading recomputes every checksum first (each rank a share of the files): a
truncated or corrupt file is a UserError naming the file, found before DCP unpickles .metadata.
state.pt is read with torch.load(weights_only=True) (no arbitrary unpickling).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.filesystem import FileSystem, FileSystemReader, FileSystemWriter
from torch.distributed.checkpoint.metadata import TensorStorageMetadata
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from pipeline.common.errors import InputError
from pipeline.common.files import file_sha256
from train.parallel import Parallel

PREFIX = "step-"
STATE = "state.pt"
MANIFEST = "manifest.json"
MODEL_KEY = "model"  # DCP keys: "model.<parameter name>", "optimizer.state.<name>.exp_avg", ...


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


def save(par: Parallel, run_dir: Path, name: str, model: nn.Module, optimizer: torch.optim.Optimizer,
         state: dict[str, Any]) -> Path:
    """Write `<run>/checkpoints/<name>` atomically (collective: every rank calls it); return its path."""
    root = checkpoint_root(run_dir)
    final = root / name
    tmp = root / f".tmp-{name}"
    if par.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    par.barrier()
    failure, mine = None, {}
    recording = _RecordingFileSystem()
    try:
        model_state, optimizer_state = get_state_dict(model, optimizer)
        writer = FileSystemWriter(tmp)
        writer.fs = recording
        with _quiet():
            dcp.save({MODEL_KEY: model_state, "optimizer": optimizer_state}, storage_writer=writer,
                     no_dist=par.world_size == 1)
        if par.is_main:
            _save_file(state, tmp / STATE, final / STATE)
        # Each rank hashes the file it wrote; rank 0 adds the rest and writes the manifest.
        mine = {p.name: _describe(p) for p in tmp.glob(f"__{par.rank}_*.distcp")}
    except (Exception, CheckpointException) as e:  # DCP's exception derives from BaseException
        # torch.save inside DCP turns a failed write (disk full) into a RuntimeError without
        # errno: the recording file system kept the OSError itself.
        failure = _os_error(e) or (recording.errors[0] if recording.errors else None)
        if failure is None:
            raise
        if not str(failure.filename or "").startswith(str(final)):
            failure = OSError(failure.errno, os.strerror(failure.errno), str(final / f"__{par.rank}_0.distcp"))
    failures = [f for f in par.gather(failure) if f is not None]
    if failures:
        if par.is_main:
            shutil.rmtree(tmp, ignore_errors=True)  # a failed save (disk full) leaves nothing behind
        raise failures[0]
    described = {k: v for part in par.gather(mine) for k, v in part.items()}
    if par.is_main:
        for extra in (".metadata", STATE):
            described[extra] = _describe(tmp / extra)
        manifest = {"name": name, "step": state.get("step"), "world_size": par.world_size,
                    "files": dict(sorted(described.items()))}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        _fsync(tmp / MANIFEST, tmp / STATE, tmp / ".metadata")
        if final.exists():  # the same step saved again (a resumed run re-reaching it): replace it
            shutil.rmtree(final)
        os.rename(tmp, final)
    par.barrier()  # no rank runs ahead (or prunes) before the checkpoint exists
    return final


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """DCP warns on every single-process save and load that it assumes one process: we mean it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def _describe(path: Path) -> dict[str, Any]:
    return {"sha256": file_sha256(path), "bytes": path.stat().st_size}


def _os_error(error: BaseException) -> OSError | None:
    """The OSError with an errno behind `error`: itself, its causes, or a DCP rank's failure."""
    seen: list[BaseException] = [error]
    while seen:
        e = seen.pop()
        if isinstance(e, OSError) and e.errno is not None:
            return e
        seen += [c for c in (e.__cause__, e.__context__, getattr(e, "exception", None)) if c is not None]
        failures = getattr(e, "failures", None)
        if isinstance(failures, dict):
            seen += [f for f in failures.values() if isinstance(f, BaseException)]
            seen += [f.exception for f in failures.values() if isinstance(getattr(f, "exception", None), BaseException)]
    return None


def _fsync(*paths: Path) -> None:
    """Flush what rank 0 wrote before the rename makes the checkpoint visible (DCP fsyncs its own)."""
    for path in paths:
        with open(path, "rb+") as f:
            os.fsync(f.fileno())


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


def verify(path: Path, par: Parallel | None = None) -> None:
    """Check every file against manifest.json; with `par`, each rank checks a share of them."""
    manifest_path = path / MANIFEST
    try:
        files = json.loads(manifest_path.read_text())["files"]
        names = sorted(files)
    except FileNotFoundError:
        raise InputError(str(manifest_path), "missing: not a finished checkpoint") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
        raise InputError(str(manifest_path), "corrupt checkpoint manifest") from None
    for required in (".metadata", STATE):
        if required not in files:
            raise InputError(str(manifest_path), f"does not list {required}")
    rank, world = (par.rank, par.world_size) if par is not None else (0, 1)
    problem = None
    for filename in names[rank::world]:
        problem = _check_file(path / filename, files[filename])
        if problem:
            break
    problems = [p for p in (par.gather(problem) if par is not None else [problem]) if p]
    if problems:
        raise InputError(*problems[0])


def _check_file(file: Path, expected: dict[str, Any]) -> tuple[str, str] | None:
    if not file.is_file():
        return str(file), "missing from checkpoint"
    if file.stat().st_size != expected["bytes"]:
        return str(file), (f"truncated or corrupt checkpoint file: {file.stat().st_size} bytes, "
                           f"manifest says {expected['bytes']}")
    if file_sha256(file) != expected["sha256"]:
        return str(file), "corrupt checkpoint file: sha256 does not match manifest.json"
    return None


def read_state(path: Path, par: Parallel | None = None) -> dict[str, Any]:
    """The checkpoint's state.pt (step, loader, rng, config) after verifying every checksum."""
    verify(path, par)
    return torch.load(path / STATE, map_location="cpu", weights_only=True)


def load_into(par: Parallel, path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Load the model and optimizer state into this rank's (possibly sharded) model and optimizer
    (collective). Call `read_state` first: it verifies the files."""
    model_state, optimizer_state = get_state_dict(model, optimizer)
    state = {MODEL_KEY: model_state, "optimizer": optimizer_state}
    with _quiet():
        dcp.load(state, storage_reader=FileSystemReader(path), no_dist=par.world_size == 1)
    set_state_dict(model, optimizer, model_state_dict=state[MODEL_KEY], optim_state_dict=state["optimizer"])


def model_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Name -> whole shape of every model tensor in the checkpoint, from DCP's metadata."""
    metadata = FileSystemReader(path).read_metadata()
    prefix = MODEL_KEY + "."
    return {key[len(prefix):]: tuple(meta.size) for key, meta in metadata.state_dict_metadata.items()
            if key.startswith(prefix) and isinstance(meta, TensorStorageMetadata)}


def model_tensors(path: Path, names: list[str] | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """The model's whole tensors, read one at a time (one process): never the whole model at once."""
    verify(path)
    metadata = FileSystemReader(path).read_metadata()
    shapes = model_shapes(path)
    for name in names if names is not None else list(shapes):
        meta = metadata.state_dict_metadata[f"{MODEL_KEY}.{name}"]
        tensor = torch.empty(shapes[name], dtype=meta.properties.dtype)
        with _quiet():
            dcp.load({MODEL_KEY: {name: tensor}}, storage_reader=FileSystemReader(path), no_dist=True)
        yield name, tensor


def load_model_state(path: Path) -> dict[str, torch.Tensor]:
    """Every model tensor, whole (for generation and evaluation on one device)."""
    return dict(model_tensors(path))


class _RecordingFileIO(io.FileIO):
    """A raw file that keeps the OSError of a failed write (disk full) for the error message."""

    errors: list[OSError]

    def write(self, data: Any) -> int:
        # A write cut short (the file-size limit reached) is retried so it fails with its errno.
        view = memoryview(data).cast("B")
        done = 0
        try:
            while done < len(view):
                done += super().write(view[done:])
        except OSError as e:
            self.errors.append(e)
            raise
        return done


class _RecordingFileSystem(FileSystem):
    """DCP's local file system, writing through _RecordingFileIO."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[OSError] = []

    @contextlib.contextmanager
    def create_stream(self, path: str | os.PathLike, mode: str) -> Iterator[io.IOBase]:
        if "w" not in mode:
            with super().create_stream(path, mode) as stream:
                yield stream
            return
        raw = _RecordingFileIO(path, "wb")
        raw.errors = self.errors
        with io.BufferedWriter(raw) as stream:
            yield stream


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


