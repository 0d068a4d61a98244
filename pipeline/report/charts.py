"""The report's charts: matplotlib figures saved as SVG text to inline in the page.

Inline SVG keeps the page one self-contained file that needs no network and no JavaScript;
fonts are drawn as paths (matplotlib's default `svg.fonttype`), so no font is fetched either.
A fixed hash salt and no date make the same corpus give the same page, byte for byte.
"""

from __future__ import annotations

import io
import re
from collections import Counter

import matplotlib

matplotlib.use("Agg")  # no display: a report is made on servers too
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.report.facts import LENGTH_BIN_EDGES, StageCounts  # noqa: E402

KEPT, DROPPED = "#2b6cb0", "#c05621"
WIDTH = 7.5  # inches; the page is about 800 px wide
_XML_PROLOGUE = re.compile(r"\A.*?(?=<svg)", re.S)


def _svg(figure: plt.Figure) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "herd-report"}):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    return _XML_PROLOGUE.sub("", buffer.getvalue(), count=1)


def funnel(stages: list[StageCounts], documents_read: int) -> str:
    """Documents left after each stage, the input at the top."""
    labels = ["input"] + [stage.name for stage in stages]
    counts = [documents_read] + [stage.documents_out for stage in stages]
    figure, axes = plt.subplots(figsize=(WIDTH, 0.35 * len(labels) + 0.8))
    positions = np.arange(len(labels))[::-1]
    axes.barh(positions, counts, color=KEPT)
    axes.set_yticks(positions, labels)
    for y, count in zip(positions, counts):
        axes.text(count, y, f" {count:,}", va="center", fontsize=8)
    axes.set_xlabel("documents")
    axes.set_xlim(0, max(counts + [1]) * 1.15)
    axes.set_title("documents through the stages")
    return _svg(figure)


def length_histogram(kept: np.ndarray, dropped: np.ndarray | None) -> str:
    """Histogram counts per LENGTH_BIN_EDGES bin (log10 of UTF-8 bytes), kept and dropped."""
    figure, axes = plt.subplots(figsize=(WIDTH, 2.6))
    edges = 10 ** LENGTH_BIN_EDGES
    axes.stairs(kept, edges, color=KEPT, label="kept", linewidth=1.5)
    if dropped is not None:
        axes.stairs(dropped, edges, color=DROPPED, label="dropped", linewidth=1.5)
    axes.set_xscale("log")
    axes.set_xlabel("document length (UTF-8 bytes)")
    axes.set_ylabel("documents")
    axes.legend(frameon=False)
    return _svg(figure)


def value_histogram(name: str, kept: np.ndarray, dropped: np.ndarray | None) -> str:
    """A float column's distribution, kept and dropped, on shared bins (log bins when the values
    span more than three decades, as perplexities do)."""
    values = np.concatenate([kept] + ([dropped] if dropped is not None else []))
    figure, axes = plt.subplots(figsize=(WIDTH, 2.6))
    if len(values):
        low, high = float(values.min()), float(values.max())
        logarithmic = low > 0 and high / low > 1000
        bins = np.geomspace(low, high, 41) if logarithmic else np.linspace(low, high if high > low else low + 1, 41)
        axes.hist(kept, bins=bins, histtype="step", color=KEPT, label="kept", linewidth=1.5)
        if dropped is not None and len(dropped):
            axes.hist(dropped, bins=bins, histtype="step", color=DROPPED, label="dropped", linewidth=1.5)
        if logarithmic:
            axes.set_xscale("log")
        axes.legend(frameon=False)
    axes.set_xlabel(name)
    axes.set_ylabel("documents")
    return _svg(figure)


def category_bars(name: str, kept: Counter[str], dropped: Counter[str] | None) -> str:
    """Documents per value of a categorical column, most frequent first."""
    names = [value for value, _ in (kept + (dropped or Counter())).most_common()]
    figure, axes = plt.subplots(figsize=(WIDTH, 0.3 * len(names) + 0.9))
    positions = np.arange(len(names))[::-1]
    height = 0.4 if dropped is not None else 0.8
    axes.barh(positions + (height / 2 if dropped is not None else 0), [kept[n] for n in names], height,
              color=KEPT, label="kept")
    if dropped is not None:
        axes.barh(positions - height / 2, [dropped[n] for n in names], height, color=DROPPED, label="dropped")
        axes.legend(frameon=False)
    axes.set_yticks(positions, names)
    axes.set_xlabel("documents")
    axes.set_title(name)
    return _svg(figure)
