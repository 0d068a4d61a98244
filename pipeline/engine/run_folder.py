"""The resumable run folder: one protocol for `pipeline run` and `tokenizer encode`.

A command that writes a folder from an input in tasks, and may be killed and rerun, keeps
this contract:

- Overlap: the folder is not the input, nor inside it, nor holding it. Otherwise the run's
  own files would become inputs of the next run, and --restart would delete the input.
- Lock: one run at a time writes the folder (`<folder>/.lock`, pipeline/common/lock.py).
- Plan: `_work/plan.json` is written at the first run and fixed from then on. A rerun reads
  it, and every setting that changes what the tasks write must agree with it, else the rerun
  is refused (naming what differs and --restart). What the first run derived (the task
  split, a held-out rule) is taken from the plan, never derived again. A folder holding a
  finished run's output but no plan is refused: it is not known how that output was made.
- Markers: a task writes its outputs, then its marker under `_work/`, atomically and last.
  A rerun runs only the tasks without a marker; a marker that cannot be read is removed
  and its task runs again.
- Restart: --restart deletes what a run creates in the folder (named by patterns, fixed
  per command) before planning anew, and never anything else a user keeps there.

The names (files, markers, messages) are each command's; this class holds the protocol.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from pipeline.common.errors import UserError
from pipeline.common.files import overlapping, read_json, write_json_atomic
from pipeline.common.lock import folder_lock

WORK = "_work"
PLAN = "plan.json"

Parsed = TypeVar("Parsed")
NO_DEFAULTS: Mapping[str, object] = MappingProxyType({})


@dataclass(frozen=True)
class RunFolder:
    """One command's run folder at `path`: the command's names are data, the protocol is the methods."""

    path: Path
    activity: str  # what the lock says is writing here: "run", "encode"
    noun: str  # how messages call the folder: "run folder", "token folder"
    created: tuple[str, ...]  # glob patterns of everything a run creates here; restart deletes these only
    published: tuple[str, ...]  # glob patterns of a finished run's output
    published_noun: str  # how messages call that output: "shards of an earlier run"

    def __post_init__(self) -> None:
        if WORK not in self.created:  # else --restart would keep the plan it is meant to replace
            raise ValueError(f"{self.path}: a run folder's created files must include {WORK}")

    @property
    def work(self) -> Path:
        return self.path / WORK

    @property
    def plan_path(self) -> Path:
        return self.work / PLAN

    def refuse_overlap(self, input_folder: Path, shown: str, advice: str) -> None:
        """Refuse an input that is this folder, holds it or sits in it; `shown` names the input
        in the message (as the user gave it), `advice` says what to do instead."""
        if overlapping(input_folder, self.path):
            raise UserError(f"{self.path}: the {self.noun} overlaps {shown}; {advice}")

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return folder_lock(self.path, self.activity)

    def clear(self) -> None:
        """Delete what a run writes into the folder, never anything else a user keeps there."""
        if not self.path.is_dir():
            return
        for pattern in self.created:
            for entry in self.path.glob(pattern):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()

    def fix_plan(
        self,
        wanted: Mapping[str, object],
        compared: Sequence[str],
        refuse_change: Callable[[dict, list[str]], UserError],
        *,
        restart: bool = False,
        defaults: Mapping[str, object] = NO_DEFAULTS,
        first_run: Callable[[], Mapping[str, object]] | None = None,
    ) -> dict:
        """The plan of the run in this folder, cleared first on `restart`.

        A first run writes `wanted`, with what `first_run` derives once (kept in the plan, not
        derived again), and gets it back. A rerun gets the stored plan when every `compared`
        key agrees with `wanted` (a key that an older plan lacks reads as `defaults[key]`);
        otherwise `refuse_change(stored plan, the differing keys in `compared` order)` is raised."""
        if restart:
            self.clear()
        if self.plan_path.exists():
            earlier = read_json(self.plan_path)
            changed = [key for key in compared if earlier.get(key, defaults.get(key)) != wanted[key]]
            if changed:
                raise refuse_change(earlier, changed)
            return earlier
        if any(any(self.path.glob(pattern)) for pattern in self.published):
            raise UserError(f"{self.path}: holds {self.published_noun}; pass --restart to replace them")
        plan = {**wanted, **(first_run() if first_run else {})}
        write_json_atomic(self.plan_path, plan)
        return plan


def read_marker(marker: Path, parse: Callable[[dict], Parsed]) -> Parsed | None:
    """A finished task's marker, parsed; None when the task has none. A marker that cannot be
    read or parsed is removed, so that its task simply runs again."""
    if not marker.exists():
        return None
    try:
        return parse(json.loads(marker.read_text()))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        marker.unlink()
        return None
