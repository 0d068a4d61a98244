"""The only ways herd unpickles a checkpoint's bytes. Unpickling runs whatever the bytes ask for
(a `__reduce__` calling os.system), so no byte of a checkpoint reaches an unrestricted unpickler:

- DCP's index (`.metadata`, a plain pickle DCP itself reads with `pickle.load`) is read by
  `load_index`, an unpickler that builds DCP's index classes, torch dtypes and paths, and refuses
  any other global before constructing anything;
- `VerifiedIndexReader` hands DCP that index from bytes already checked, instead of letting DCP
  open `.metadata` (or a rank-local `__N.metadata`) itself;
- `WeightsOnlyLoadPlanner` reads the few non-tensor values in the shards (the optimizer's
  learning rate, betas, ...) with torch.load(weights_only=True): DCP's own planner uses
  weights_only=False for them. Tensors DCP already reads with weights_only=True.

The checksums of manifest.json catch damage; these catch a file crafted to pass them.
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any

import torch
from torch.distributed.checkpoint import DefaultLoadPlanner, FileSystemReader
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta
from torch.distributed.checkpoint.planner import ReadItem

_DCP_METADATA = "torch.distributed.checkpoint.metadata"
# Every global a DCP index refers to (torch 2.4-2.13): its dataclasses, the storage info of the
# file system writer, torch.Size, a layout looked up by name, the writer's path. Constructing
# any of them with any arguments only builds a value.
INDEX_GLOBALS = frozenset({
    (_DCP_METADATA, "Metadata"), (_DCP_METADATA, "TensorStorageMetadata"), (_DCP_METADATA, "BytesStorageMetadata"),
    (_DCP_METADATA, "ChunkStorageMetadata"), (_DCP_METADATA, "TensorProperties"),
    (_DCP_METADATA, "MetadataIndex"), (_DCP_METADATA, "StorageMeta"), (_DCP_METADATA, "_MEM_FORMAT_ENCODING"),
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
    ("torch", "Size"), ("torch.serialization", "_get_layout"),
    ("pathlib", "Path"), ("pathlib", "PosixPath"), ("pathlib", "WindowsPath"),
    ("pathlib", "PurePosixPath"), ("pathlib", "PureWindowsPath"),
})


class IndexRefused(Exception):
    """The bytes are no DCP index: a global it may not name, or no pickle at all."""


class _IndexUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # A dtype pickles as the global `torch.<name>` (torch.bfloat16).
        dtype = module == "torch" and isinstance(getattr(torch, name, None), torch.dtype)
        if (module, name) in INDEX_GLOBALS or dtype:
            return super().find_class(module, name)
        raise IndexRefused(f"it refers to {module}.{name}, which a DCP index never holds")

    def persistent_load(self, pid: Any) -> Any:
        raise IndexRefused("it holds a persistent reference, which a DCP index never holds")


def load_index(data: bytes) -> Metadata:
    """The DCP index pickled in `data`, built only from INDEX_GLOBALS; else IndexRefused."""
    try:
        index = _IndexUnpickler(io.BytesIO(data)).load()
    except IndexRefused:
        raise
    except Exception as e:  # truncated or garbled bytes: pickle raises many kinds
        raise IndexRefused(f"not a pickle ({type(e).__name__}: {e})") from None
    if not (isinstance(index, Metadata) and isinstance(index.state_dict_metadata, dict)
            and isinstance(index.storage_data, dict)):
        raise IndexRefused(f"it holds a {type(index).__name__}, not a DCP index")
    return index


class VerifiedIndexReader(FileSystemReader):
    """DCP's file system reader, whose index is `index_bytes` (checked already, read by
    `load_index`) rather than whatever `.metadata` holds when DCP would open it."""

    def __init__(self, path: str | os.PathLike, index_bytes: bytes) -> None:
        super().__init__(path)
        self.index_bytes = index_bytes

    # No **kwargs: DCP would then fall back to an unchecked rank-local `__N.metadata`.
    def read_metadata(self) -> Metadata:  # type: ignore[override]
        index = load_index(self.index_bytes)  # a fresh copy: DCP may change the one it gets
        if getattr(index, "storage_meta", None) is None:
            index.storage_meta = StorageMeta()
        index.storage_meta.load_id = self.load_id
        return index


class WeightsOnlyLoadPlanner(DefaultLoadPlanner):
    """DCP's default planner, except that non-tensor values pass the weights-only unpickler."""

    def load_bytes(self, read_item: ReadItem, value: io.BytesIO) -> None:
        accepted = torch.load(value, map_location="cpu", weights_only=True)
        # DCP's planner unpickles what it is given with weights_only=False and places it in the
        # state dict: give it bytes written here from the value just accepted, not the file's.
        rewritten = io.BytesIO()
        torch.save(accepted, rewritten)
        rewritten.seek(0)
        super().load_bytes(read_item, rewritten)
