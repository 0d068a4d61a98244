"""Counts and sizes written for people: 1.40T tokens, 3.2 GB."""

from __future__ import annotations


def human(count: float) -> str:
    """A count with a T/B/M/K suffix and two decimals: 1.40T, 938.00B, 19.03K."""
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(count) >= size:
            return f"{count / size:.2f}{unit}"
    return f"{count:.0f}"


def human_bytes(count: float) -> str:
    """A size in decimal units with one decimal: 3.2 GB, 184.4 KB."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} B"
