"""What every bench shares: alternating rounds, min/median/max, a Markdown table, the load average.

A busy machine slows whichever run it happens to hit: running the compared variants in turn,
round after round, spreads that over all of them, and min/median/max show how much it moved.
The load average (printed with every table) says how busy the machine was meanwhile.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def alternate(variants: dict[str, Callable[[], T]], rounds: int) -> dict[str, list[T]]:
    """Each variant run once per round, in turn, `rounds` times: name -> its results in order."""
    results: dict[str, list[T]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            results[name].append(run())
    return results


def spread(values: Sequence[float], fmt: str = ",.2f") -> str:
    """`min / median / max` of `values`, each with `fmt`; the value alone when there is one."""
    if len(values) == 1:
        return format(values[0], fmt)
    return " / ".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def load_average() -> str:
    """The 1, 5 and 15 minute load averages and the CPU count: `load 3.1 2.8 2.5 on 2 CPUs`."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f} {five:.1f} {fifteen:.1f} on {os.cpu_count()} CPUs"


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]], rounds: int) -> None:
    """A Markdown table under `title`, with the rounds it summarises and the load average now."""
    print(f"\n## {title}\n")
    print(f"{rounds} alternating round(s); a cell of three figures is min / median / max; {load_average()}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
