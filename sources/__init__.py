"""One module per source. The registry maps a source name to its class, imported lazily so
that one source's heavy dependencies never slow down another's commands."""

from __future__ import annotations

import importlib

from pipeline.errors import UserError
from pipeline.source import Source

# The order is the paper's Table 1, then the passthrough source for custom data.
REGISTRY: dict[str, str] = {
    "commoncrawl": "sources.commoncrawl:CommonCrawl",
    "c4": "sources.c4:C4",
    "github": "sources.github:GitHub",
    "wikipedia": "sources.wikipedia:Wikipedia",
    "books": "sources.books:Books",
    "arxiv": "sources.arxiv:ArXiv",
    "stackexchange": "sources.stackexchange:StackExchange",
    "jsonl": "sources.jsonl:Jsonl",
}
PAPER_SOURCES = [name for name in REGISTRY if name != "jsonl"]


def source_class(name: str) -> type[Source]:
    if name not in REGISTRY:
        raise UserError(f"unknown source '{name}' (known: {', '.join(REGISTRY)})")
    module_name, class_name = REGISTRY[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            raise UserError(f"source '{name}' is not built yet ({module_name.replace('.', '/')}.py)") from None
        raise
    return getattr(module, class_name)


def available_sources() -> list[str]:
    """Registered sources whose module exists."""
    found = []
    for name, target in REGISTRY.items():
        if importlib.util.find_spec(target.split(":")[0]) is not None:
            found.append(name)
    return found
