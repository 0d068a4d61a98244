"""Keeps the documents of the N largest groups of a run (the paper's 28 largest Stack
Exchange sites), where a group's size is a metadata number its reader computed.

Which groups are largest is a global decision: each task's `collect` records the size of
every group it read, `merge` ranks all groups (largest first, ties by name, so the choice is
deterministic) and writes the ranking, and `process` keeps documents of the first N.
The ranking with every size is in the run's work folder while it runs, and the kept and
dropped groups are in stats.json through the drop reason's count.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from pipeline.engine.document import Document
from pipeline.engine.stage import GlobalStage, Result


class LargestGroups(GlobalStage):
    name = "largest_groups"

    def __init__(self, keep: int, group_field: str, size_field: str, name: str | None = None) -> None:
        self.keep = keep  # 0 keeps every group
        self.group_field = group_field
        self.size_field = size_field
        if name:
            self.name = name
        self.kept: frozenset[str] = frozenset()

    def collect(self, docs: Iterable[Document], partial: Path) -> None:
        sizes: dict[str, int] = {}
        for doc in docs:
            group = doc.meta[self.group_field]
            sizes[group] = max(sizes.get(group, 0), int(doc.meta[self.size_field]))
        partial.write_text(json.dumps(sizes, sort_keys=True))

    def merge(self, partials: list[Path], artefact: Path) -> None:
        sizes: dict[str, int] = {}
        for partial in partials:
            for group, size in json.loads(partial.read_text()).items():
                sizes[group] = max(sizes.get(group, 0), size)
        ranking = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))
        kept = ranking if self.keep == 0 else ranking[: self.keep]
        (artefact / "ranking.json").write_text(json.dumps(
            {"kept": [g for g, _ in kept], "sizes": dict(ranking)}, indent=1))

    def load(self, artefact: Path) -> None:
        self.kept = frozenset(json.loads((artefact / "ranking.json").read_text())["kept"])

    def process(self, doc: Document) -> Result:
        return doc if doc.meta[self.group_field] in self.kept else f"not_among_{self.keep}_largest"
