"""The report page: one self-contained HTML file, no script, no external resource.

Every number comes from facts.py (stats.json and the shards; a `pipeline remove` since the run is
the funnel's last step); every piece of corpus text (examples, ids, category values) is
HTML-escaped, since a corpus holds whatever the web held.
Table cells carry `data-` attributes naming what they count, so a reader (or a test) can find
a number without parsing the layout.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Protocol

from pipeline.report import charts
from pipeline.report.facts import SourceFacts

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1a202c; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.5rem; border-bottom: 2px solid #2b6cb0; } h3 { margin-top: 1.5rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; } th, td { padding: .2rem .6rem; border-bottom: 1px solid #e2e8f0; }
th { text-align: left; background: #edf2f7; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
pre { white-space: pre-wrap; background: #f7fafc; border-left: 3px solid #c05621; padding: .4rem .6rem; font-size: 12px; }
.note { color: #4a5568; font-size: 12px; } svg { max-width: 100%; height: auto; }
"""


class MixtureRow(Protocol):
    """A row of `pipeline mix`'s plan (pipeline/commands/mix.py SourcePlan)."""

    source: str
    proportion: float
    available: int  # tokens; 0 when the source has none
    drawn: int
    counted: bool  # counted from token shards, not estimated from bytes

    @property
    def epochs(self) -> float: ...


@dataclass(frozen=True)
class ResidueRow:
    name: str
    documents: int
    occurrences: int
    example: str


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def number(value: int, **data: str) -> str:
    attributes = "".join(f' data-{k}="{esc(v)}"' for k, v in data.items())
    return f'<td class="n"{attributes}>{value:,}</td>'


def render(title: str, sources: list[SourceFacts], residue: dict[str, list[ResidueRow]],
           mixture_name: str, total_tokens: int, mixture: list[MixtureRow]) -> str:
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
             f"<style>{STYLE}</style></head><body>", f"<h1>{esc(title)}</h1>", _overview(sources)]
    if mixture:
        parts.append(_mixture(mixture_name, total_tokens, mixture))
    for facts in sources:
        parts.append(_source(facts, residue.get(facts.source)))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _overview(sources: list[SourceFacts]) -> str:
    rows = "".join(
        f"<tr><td>{esc(f.source)}</td>{number(f.documents_read, source=f.source, field='read')}"
        f"{number(f.documents_kept, source=f.source, field='kept')}"
        f"{number(f.kept.text_bytes, source=f.source, field='kept_bytes')}"
        f"{number(f.files_total, source=f.source, field='files')}"
        f"{number(len(f.files_failed), source=f.source, field='files_failed')}</tr>" for f in sources)
    return ("<table id=\"overview\"><tr><th>source</th><th>documents read</th><th>kept</th><th>text bytes kept</th>"
            f"<th>input files</th><th>unreadable</th></tr>{rows}</table>")


def _mixture(name: str, total_tokens: int, rows: list[MixtureRow]) -> str:
    body = "".join(
        f"<tr><td>{esc(r.source)}</td><td class=\"n\">{r.proportion * 100:.1f}%</td>"
        f"{number(r.available, source=r.source, field='available')}{number(r.drawn, source=r.source, field='drawn')}"
        f"<td class=\"n\" data-source=\"{esc(r.source)}\" data-field=\"epochs\">"
        f"{_epochs(r)}</td>"
        f"<td>{'token shards' if r.counted else 'corpus bytes (estimate)'}</td></tr>" for r in rows)
    return (f"<h2 id=\"mixture\">Mixture {esc(name)} at {total_tokens:,} tokens</h2>"
            "<p class=\"note\">Tokens each source holds and draws; the sampler draws every token of a source "
            "floor(e) or ceil(e) times for e epochs.</p>"
            "<table><tr><th>source</th><th>proportion</th><th>tokens available</th><th>tokens drawn</th>"
            f"<th>epochs</th><th>counted from</th></tr>{body}</table>")


def _epochs(row: MixtureRow) -> str:
    if not row.available:
        return "-"
    return f"{row.epochs:.2f}" if row.epochs < 1e4 else f"{row.epochs:.3g}"


def _source(facts: SourceFacts, residue: list[ResidueRow] | None) -> str:
    s = facts.source
    parts = [f"<h2 id=\"{esc(s)}\">{esc(s)}</h2>",
             f"<p>{facts.documents_kept:,} of {facts.documents_read:,} documents kept{_removed(facts)}, "
             f"{facts.kept.text_bytes:,} bytes of text, from {facts.files_total:,} input files"
             f"{f' ({len(facts.files_failed):,} unreadable)' if facts.files_failed else ''}.</p>",
             "<h3>Stages</h3>", _stages(facts), charts.funnel(facts.funnel(), facts.documents_read),
             "<h3>Document lengths</h3>",
             charts.length_histogram(facts.kept.length_counts,
                                     facts.dropped.length_counts if facts.dropped else None)]
    if facts.dropped is None:
        parts.append("<p class=\"note\">Dropped documents were not kept (run with --keep-dropped to see their "
                     "lengths, bytes and examples).</p>")
    for name, sample in sorted(facts.kept.floats.items()):
        dropped = facts.dropped.floats.get(name) if facts.dropped else None
        parts += [f"<h3>{esc(name)}</h3>", charts.value_histogram(name, sample.array(),
                                                                  dropped.array() if dropped else None)]
    for name, counts in sorted(facts.categories().items()):
        dropped_counts = facts.dropped.categories.get(name) if facts.dropped else None
        parts += [f"<h3>{esc(name)}</h3>", charts.category_bars(name, counts, dropped_counts)]
    if residue is not None:
        parts += ["<h3>Markup residue (pipeline audit)</h3>", _residue(s, residue)]
    if facts.examples:
        parts += ["<h3>Dropped documents, a few per reason</h3>", _examples(facts)]
    return "\n".join(parts)


def _removed(facts: SourceFacts) -> str:
    """What `pipeline remove` took out since the run, worded as `pipeline stats` words it."""
    if not facts.removed:
        return ""
    return (f" (the run kept {facts.documents_kept + facts.removed:,}; "
            f"<span data-source=\"{esc(facts.source)}\" data-field=\"removed\">{facts.removed:,}</span> removed since "
            "by <code>pipeline remove</code>, see removals.jsonl)")


def _stages(facts: SourceFacts) -> str:
    rows = []
    for stage in facts.funnel():
        reasons = ", ".join(
            f"<span data-reason=\"{esc(r)}\">{esc(r)}: {n:,}"
            + (f" ({facts.dropped_bytes[(stage.name, r)]:,} bytes)" if (stage.name, r) in facts.dropped_bytes else "")
            + "</span>" for r, n in sorted(stage.dropped.items(), key=lambda item: -item[1]))
        rows.append(f"<tr><td>{esc(stage.name)}</td>{number(stage.documents_in, stage=stage.name, field='in')}"
                    f"{number(stage.documents_out, stage=stage.name, field='out')}"
                    f"{number(sum(stage.dropped.values()), stage=stage.name, field='dropped')}<td>{reasons or '-'}</td></tr>")
    return ("<table class=\"stages\"><tr><th>stage</th><th>in</th><th>out</th><th>dropped</th><th>reasons</th></tr>"
            + "".join(rows) + "</table>")


def _residue(source: str, rows: list[ResidueRow]) -> str:
    body = "".join(f"<tr><td>{esc(r.name)}</td>{number(r.documents, residue=r.name, field='documents')}"
                   f"{number(r.occurrences, residue=r.name, field='occurrences')}<td>{esc(r.example)}</td></tr>"
                   for r in rows)
    return ("<table class=\"residue\"><tr><th>residue</th><th>documents</th><th>occurrences</th><th>example id</th>"
            f"</tr>{body}</table>")


def _examples(facts: SourceFacts) -> str:
    parts = []
    for (stage, reason), shown in sorted(facts.examples.items()):
        parts.append(f"<h4>{esc(stage)}: {esc(reason)}</h4>")
        parts += [f"<p class=\"note\">{esc(e.doc_id)}</p><pre>{esc(e.text)}</pre>" for e in shown]
    return "\n".join(parts)
