"""One module per source, and the one registry of them.

`sources/<name>.py` holds the source's recipe (config, columns, `read()`, stages in order) and
`sources/samples/<name>.py` its sample writer; both are imported only when used, so one
source's heavy dependencies never slow down another's commands.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from pipeline.common.errors import UserError
from pipeline.engine.source import Source

# Source name -> its class in sources/<name>.py. The order is the paper's Table 1, then the
# passthrough source for custom data.
REGISTRY: dict[str, str] = {
    "commoncrawl": "CommonCrawl",
    "c4": "C4",
    "github": "GitHub",
    "wikipedia": "Wikipedia",
    "books": "Books",
    "arxiv": "ArXiv",
    "stackexchange": "StackExchange",
    "jsonl": "Jsonl",
}
PAPER_SOURCES = [name for name in REGISTRY if name != "jsonl"]


def _check_known(name: str) -> None:
    if name not in REGISTRY:
        raise UserError(f"unknown source '{name}' (known: {', '.join(REGISTRY)})")


def source_class(name: str) -> type[Source]:
    _check_known(name)
    return getattr(importlib.import_module(f"sources.{name}"), REGISTRY[name])


def sample_writer(name: str) -> ModuleType:
    """The module whose `write(folder, seed)` writes `name`'s sample inputs."""
    _check_known(name)
    return importlib.import_module(f"sources.samples.{name}")
