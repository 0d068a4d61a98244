"""The sources herd knows, found as plugins: the entry points of the group `herd.sources`.

pipeline/ never imports sources/. A source is found by name in the installed packages' metadata
(importlib.metadata), the way pytest finds its plugins: herd's own seven sources and the
passthrough `jsonl` are entry points of herd's pyproject.toml, and any installed package adds a
source of its own without touching herd, by declaring in its pyproject.toml

    [project.entry-points."herd.sources"]
    mysource = "mypackage.mysource:MySource"      # a pipeline.engine.source.Source subclass
    [project.entry-points."herd.samples"]
    mysource = "mypackage.mysource_sample"         # optional: a module with write(folder, seed)

A source's module is imported only when that source is used, so one source's heavy
dependencies never slow down another's commands. Where two installed packages name the same
source, the first on sys.path wins, as for imports.
"""

from __future__ import annotations

import functools
import importlib.metadata
from types import ModuleType

from pipeline.common.errors import UserError
from pipeline.engine.source import Source

SOURCES_GROUP = "herd.sources"
SAMPLES_GROUP = "herd.samples"


@functools.cache
def _entry_points(group: str) -> dict[str, importlib.metadata.EntryPoint]:
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for entry in importlib.metadata.entry_points(group=group):
        found.setdefault(entry.name, entry)
    return found


def source_names() -> list[str]:
    """Every registered source, by name (the paper's order is the llama1 mixture's)."""
    names = sorted(_entry_points(SOURCES_GROUP))
    if not names:
        raise UserError("no sources are registered: herd's package metadata is missing (run ./install.sh)")
    return names


def source_class(name: str) -> type[Source]:
    """The Source subclass registered as `name`; an unknown name or a broken plugin is one line."""
    found = _load(SOURCES_GROUP, name, "source")
    if not (isinstance(found, type) and issubclass(found, Source)):
        raise UserError(f"source '{name}' ({_entry_points(SOURCES_GROUP)[name].value}) is not a "
                        "pipeline.engine.source.Source subclass")
    return found


def sample_writer(name: str) -> ModuleType:
    """The module whose `write(folder, seed)` writes `name`'s sample inputs."""
    return _load(SAMPLES_GROUP, name, "sample writer")


def _load(group: str, name: str, what: str):  # noqa: ANN202  (a class or a module)
    entry = _entry_points(group).get(name)
    if entry is None:
        known = sorted(_entry_points(group))
        raise UserError(f"unknown {what} '{name}' (known: {', '.join(known) or 'none: run ./install.sh'})")
    try:
        return entry.load()
    except Exception as e:  # noqa: BLE001  (a plugin's import can fail in any way)
        raise UserError(f"{what} '{name}' ({entry.value}) cannot be loaded: {type(e).__name__}: {e}") from None
