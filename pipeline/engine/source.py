"""What a source module provides: how its raw files are found and read, and its stages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

import fsspec
import pyarrow as pa

from pipeline.common.errors import UserError
from pipeline.engine.document import Document, Skipped
from pipeline.engine.stage import Stage


@dataclass
class SourceConfig:
    """Base of every source's typed configuration; `[<source>]` tables in --config override it."""


class Source:
    """Base of the seven sources (and the passthrough `jsonl`).

    `read(path)` yields documents, or `Skipped(reason)` for a raw record it could not use,
    and raises `InputError` when the whole file is unusable. Readers must be deterministic:
    ids and order depend on the file alone, so reruns and other task splits agree.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[SourceConfig]] = SourceConfig
    # Glob patterns (relative to the input root, recursive) that make up the inputs.
    patterns: ClassVar[tuple[str, ...]] = ("**/*",)

    def __init__(self, config: SourceConfig | None = None) -> None:
        self.config = config if config is not None else self.config_class()

    def list_inputs(self, root: str) -> list[str]:
        """Every input file under `root` (a local path or fsspec URL), sorted and unique."""
        fs, _, (base,) = fsspec.get_fs_token_paths(root)
        if not fs.exists(base):
            raise UserError(f"{root}: input path does not exist")
        if fs.isfile(base):
            return [root]
        found: set[str] = set()
        for pattern in self.patterns:
            found.update(p for p in fs.glob(f"{base.rstrip('/')}/{pattern}") if fs.isfile(p))
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        prefix = "" if protocol in ("file", "local") else f"{protocol}://"
        return sorted(prefix + p for p in found)

    def read(self, path: str) -> Iterator[Document | Skipped]:
        raise NotImplementedError

    def fields(self) -> list[pa.Field]:
        """Metadata columns the reader fills."""
        return []

    def stages(self) -> list[Stage]:
        return []

    def describe(self) -> dict[str, Any]:
        return {"source": self.name, "stages": [s.name for s in self.stages()]}
