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
naming the file.

Every reader goes through `open_checkpoint`, which checks every file against manifest.json
(each rank a share of the shards) before any byte is unpickled: a missing, cut or altered file
is an InputError naming it. Nothing is then unpickled but the very bytes whose sha256 was checked,
and never by an unrestricted unpickler (train/checkpoint_unpickling.py): DCP's .metadata with an
unpickler of DCP's index classes only, state.pt with torch.load(weights_only=True). A damaged
latest checkpoint stops `--resume` with a line saying whether an older one is intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.filesystem import FileSystem, FileSystemWriter
from torch.distributed.checkpoint.metadata import Metadata, TensorStorageMetadata
from torch.distributed.checkpoint.state_dict import (
    get_model_state_dict,
    get_state_dict,
    set_model_state_dict,
    set_state_dict,
)

from pipeline.common.errors import InputError
from pipeline.common.files import file_sha256, plain_name
from train.checkpoint_unpickling import IndexRefused, VerifiedIndexReader, WeightsOnlyLoadPlanner, load_index
from train.checkpoint_paths import REPLACED, checkpoint_root, list_checkpoints
from train.checkpoint_paths import latest, step_name  # noqa: F401  (callers find them here too)
from train.parallel import Parallel

STATE = "state.pt"
MANIFEST = "manifest.json"
MODEL_KEY = "model"  # DCP keys: "model.<parameter name>", "optimizer.state.<name>.exp_avg", ...
OPTIMIZER_KEY = "optimizer"


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


def save(par: Parallel, run_dir: Path, name: str, model: nn.Module, optimizer: torch.optim.Optimizer | None,
         state: dict[str, Any]) -> Path:
    """Write `<run>/checkpoints/<name>` atomically (collective: every rank calls it); return its path.
    Without an optimizer, the model's weights only (see VerifiedCheckpoint.weights_only)."""
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
        if optimizer is None:
            saved: dict[str, Any] = {MODEL_KEY: get_model_state_dict(model)}
        else:
            model_state, optimizer_state = get_state_dict(model, optimizer)
            saved = {MODEL_KEY: model_state, OPTIMIZER_KEY: optimizer_state}
        writer = FileSystemWriter(tmp)
        writer.fs = recording
        with _quiet():
            dcp.save(saved, storage_writer=writer, no_dist=par.world_size == 1)
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
        _replace(tmp, final)
    par.barrier()  # no rank runs ahead (or prunes) before the checkpoint exists
    return final


def _replace(tmp: Path, final: Path) -> None:
    """Rename the finished `tmp` to `final`. The same step saved again (a resumed run re-reaching
    it) sets the old copy aside first and deletes it last: a kill at any point leaves the step
    whole under one of the two names (list_checkpoints finds the aside one)."""
    aside = final.with_name(f"{REPLACED}{final.name}")
    if final.exists():
        if aside.exists():  # left by a kill after an earlier rename-in: final is the newer copy
            shutil.rmtree(aside)
        os.rename(final, aside)
    os.rename(tmp, final)
    shutil.rmtree(aside, ignore_errors=True)


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


def prune(run_dir: Path, keep: int) -> None:
    """Remove all but the newest `keep` step checkpoints, and stale temporary directories."""
    root = checkpoint_root(run_dir)
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for aside in root.glob(f"{REPLACED}*"):  # an old copy whose replacement was renamed in before a kill
        if (root / aside.name[len(REPLACED):]).is_dir():
            shutil.rmtree(aside, ignore_errors=True)
    found = list_checkpoints(run_dir)
    for old in found[:max(0, len(found) - keep)]:
        shutil.rmtree(old)


PICKLES = (".metadata", STATE)  # read whole, checked, and only those very bytes are unpickled


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """A checkpoint whose every file matched manifest.json when it was opened (`open_checkpoint`).

    Its two pickles were read once, whole, and only the very bytes whose sha256 was checked are
    unpickled (a file changed on disk afterwards never is): DCP's index by `load_index` (DCP's
    index classes only, again for each DCP load), state.pt by torch.load(weights_only=True). The
    shards were hashed too; DCP reads their tensors with weights_only=True and their other values
    through WeightsOnlyLoadPlanner. Bytes crafted to match a rewritten manifest are refused too.
    """

    path: Path
    index_bytes: bytes
    index: Metadata
    state: dict[str, Any]  # state.pt: step, data-loader position, RNG states, config

    def model_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name -> whole shape of every model tensor, from DCP's index."""
        prefix = MODEL_KEY + "."
        return {key[len(prefix):]: tuple(meta.size) for key, meta in self.index.state_dict_metadata.items()
                if key.startswith(prefix) and isinstance(meta, TensorStorageMetadata)}

    def model_tensors(self, names: list[str] | None = None) -> Iterator[tuple[str, torch.Tensor]]:
        """The model's whole tensors, read one at a time (one process): never the whole model at once."""
        shapes = self.model_shapes()
        for name in names if names is not None else list(shapes):
            meta = self.index.state_dict_metadata[f"{MODEL_KEY}.{name}"]
            if not isinstance(meta.properties.dtype, torch.dtype):  # only an index crafted to fit the manifest
                raise InputError(str(self.path / ".metadata"), f"not loaded: {name} has no dtype")
            tensor = torch.empty(shapes[name], dtype=meta.properties.dtype)
            self._dcp_load({MODEL_KEY: {name: tensor}}, no_dist=True)
            yield name, tensor

    @property
    def weights_only(self) -> bool:
        """A checkpoint of model weights and nothing else (`train import` writes one, step 0): no
        optimizer state in its index, no data-loader position or RNG state in state.pt. Resuming
        it starts a run's schedule fresh on those weights (train/loop.py)."""
        prefix = OPTIMIZER_KEY + "."
        return not any(key.startswith(prefix) for key in self.index.state_dict_metadata)

    def load_into(self, par: Parallel, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """The model and optimizer state into this rank's (possibly sharded) model and optimizer
        (collective). A weights-only checkpoint leaves the optimizer as built: fresh."""
        if self.weights_only:
            weights = get_model_state_dict(model)
            self._dcp_load({MODEL_KEY: weights}, no_dist=par.world_size == 1)
            set_model_state_dict(model, weights)
            return
        model_state, optimizer_state = get_state_dict(model, optimizer)
        state = {MODEL_KEY: model_state, OPTIMIZER_KEY: optimizer_state}
        self._dcp_load(state, no_dist=par.world_size == 1)
        set_state_dict(model, optimizer, model_state_dict=state[MODEL_KEY], optim_state_dict=state[OPTIMIZER_KEY])

    def _dcp_load(self, state: dict[str, Any], no_dist: bool) -> None:
        try:
            with _quiet():
                dcp.load(state, storage_reader=VerifiedIndexReader(self.path, self.index_bytes),
                         planner=WeightsOnlyLoadPlanner(), no_dist=no_dist)
        except (Exception, CheckpointException) as e:  # DCP's exception derives from BaseException
            # The files matched their checksums: only a manifest rewritten to fit gets here.
            raise InputError(str(self.path), "not loaded although its files match manifest.json: "
                             f"{_why(_dcp_failure(e))}") from None


def open_checkpoint(path: Path, par: Parallel | None = None) -> VerifiedCheckpoint:
    """Check every file of the checkpoint at `path` against manifest.json before anything in it is
    unpickled; a missing, cut or altered file is an InputError naming it. With `par` (collective),
    every rank checks the two small pickles it will unpickle and a share of the shards."""
    files = _manifest_files(path)
    rank, world = (par.rank, par.world_size) if par is not None else (0, 1)
    pickles: dict[str, bytes] = {}
    problem = None
    for filename in PICKLES:
        data, problem = _read_checked(path / filename, files[filename])
        if problem:
            break
        pickles[filename] = data
    shards = sorted(set(files) - set(PICKLES))
    if problem is None:
        for filename in shards[rank::world]:
            problem = _check_file(path / filename, files[filename])
            if problem:
                break
    problems = [p for p in (par.gather(problem) if par is not None else [problem]) if p]
    if problems:
        raise InputError(*problems[0])
    try:
        index = load_index(pickles[".metadata"])
    except IndexRefused as e:
        raise InputError(str(path / ".metadata"), f"not loaded: {e}") from None
    unlisted = sorted({str(info.relative_path) for info in index.storage_data.values()} - set(shards))
    if unlisted:  # DCP would read a file no checksum covers
        raise InputError(str(path / ".metadata"), f"not loaded: it names {unlisted[0]!r}, which manifest.json "
                         "does not list")
    return VerifiedCheckpoint(path, pickles[".metadata"], index, _load_state(path / STATE, pickles[STATE]))


def _load_state(file: Path, data: bytes) -> dict[str, Any]:
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # the weights-only unpickler's refusal, or no torch.save file at all
        raise InputError(str(file), f"not loaded: {_why(e)}") from None
    if not isinstance(state, dict):
        raise InputError(str(file), f"not loaded: it holds a {type(state).__name__}, not a checkpoint state")
    return state


def open_latest(run_dir: Path, par: Parallel | None = None) -> VerifiedCheckpoint | None:
    """The run's newest checkpoint, verified; None when it has none. A damaged one is never
    skipped silently: the error names it and says whether an older checkpoint is intact."""
    found = list_checkpoints(run_dir)
    if not found:
        return None
    try:
        return open_checkpoint(found[-1], par)
    except InputError as damaged:
        older = next((p for p in reversed(found[:-1]) if _is_intact(p, par)), None)
        aside = found[-1].with_name(f"damaged-{found[-1].name}")
        advice = (f"{older.name} is intact: rename {found[-1]} to {aside} to resume from it" if older
                  else "no older checkpoint is intact")
        raise InputError(damaged.path, f"{damaged.problem}; the latest checkpoint {found[-1].name} is damaged, "
                         f"{advice}") from None


def _is_intact(path: Path, par: Parallel | None) -> bool:
    try:
        open_checkpoint(path, par)
    except InputError:
        return False
    return True


def _manifest_files(path: Path) -> dict[str, dict[str, Any]]:
    """manifest.json's file list: plain names in the checkpoint folder, each with sha256 and size."""
    manifest_path = path / MANIFEST
    try:
        files = json.loads(manifest_path.read_text())["files"]
    except FileNotFoundError:
        raise InputError(str(manifest_path), "missing: not a finished checkpoint") from None
    except OSError as e:
        raise InputError(str(manifest_path), f"unreadable ({e.strerror})") from None
    except (ValueError, KeyError, TypeError):  # ValueError: bad JSON or bytes that are no UTF-8
        raise InputError(str(manifest_path), "corrupt checkpoint manifest") from None
    if not isinstance(files, dict) or not all(plain_name(n) and _file_entry(e) for n, e in files.items()):
        raise InputError(str(manifest_path), "corrupt checkpoint manifest")
    for required in PICKLES:
        if required not in files:
            raise InputError(str(manifest_path), f"does not list {required}")
    return files


def _file_entry(entry: Any) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
            and type(entry.get("bytes")) is int)


def _read_checked(file: Path, expected: dict[str, Any]) -> tuple[bytes, tuple[str, str] | None]:
    """The whole of a small file and None, or no bytes and (file, problem)."""
    problem = _size_problem(file, expected)
    if problem:
        return b"", problem
    try:
        data = file.read_bytes()
    except OSError as e:
        return b"", (str(file), f"unreadable checkpoint file ({e.strerror})")
    if len(data) != expected["bytes"]:  # changed since the size was read
        return b"", (str(file), f"truncated or corrupt checkpoint file: {len(data)} bytes, "
                                f"manifest says {expected['bytes']}")
    if hashlib.sha256(data).hexdigest() != expected["sha256"]:
        return b"", (str(file), "corrupt checkpoint file: sha256 does not match manifest.json")
    return data, None


def _check_file(file: Path, expected: dict[str, Any]) -> tuple[str, str] | None:
    problem = _size_problem(file, expected)
    if problem:
        return problem
    try:
        if file_sha256(file) != expected["sha256"]:
            return str(file), "corrupt checkpoint file: sha256 does not match manifest.json"
    except OSError as e:
        return str(file), f"unreadable checkpoint file ({e.strerror})"
    return None


def _size_problem(file: Path, expected: dict[str, Any]) -> tuple[str, str] | None:
    if not file.is_file():
        return str(file), "missing from checkpoint"
    size = file.stat().st_size
    if size != expected["bytes"]:
        return str(file), f"truncated or corrupt checkpoint file: {size} bytes, manifest says {expected['bytes']}"
    return None


def _dcp_failure(error: BaseException) -> BaseException:
    """The first rank's own exception inside DCP's CheckpointException, else `error`."""
    if isinstance(error, CheckpointException) and error.failures:
        return next(iter(error.failures.values()))[0]
    return error


def _why(error: BaseException) -> str:
    """Why a load failed, in one line. torch's weights-only refusal wraps its reason, the global
    it refused, in paragraphs of advice (with terminal colour codes): name that global."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    refused = re.search(r"GLOBAL ([\w.]+)", text)
    if refused:
        return f"it refers to {refused.group(1).rstrip('.')}, which the weights-only unpickler refuses"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__


def read_state(path: Path, par: Parallel | None = None) -> dict[str, Any]:
    """The checkpoint's state.pt (step, loader, rng, config) after verifying every checksum."""
    return open_checkpoint(path, par).state


def load_model_state(path: Path) -> dict[str, torch.Tensor]:
    """Every model tensor, whole, after verifying every checksum (for tests and small models)."""
    return dict(open_checkpoint(path).model_tensors())


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


