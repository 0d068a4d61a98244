"""`pipeline`: build corpus shards from raw dumps, one source at a time or all of them."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.common.cli import Command
from pipeline.common.cli import main as run_cli
from pipeline.common.cli import without_blas_threads

DESCRIPTION = """\
Rebuild the LLaMA-1 pretraining corpus. Typical use on a fresh checkout:

  pipeline sample                 write small raw inputs for every source into data/raw
  pipeline run all                run every source's stages: data/raw/<source> -> data/corpus/<source>
  pipeline stats                  what each stage kept and dropped, and why
  pipeline verify                 check every shard against the sha256 in its manifest.json
  pipeline report all             one HTML page: stages, lengths, scores, residue, dropped examples

Rerunning `pipeline run` resumes: finished tasks are skipped and the output is identical.
"""

COMMANDS = [
    Command("run", "pipeline.commands.run", "run a source's stages over its raw inputs into Arrow shards"),
    Command("stats", "pipeline.commands.stats", "print what each stage kept and dropped for finished runs"),
    Command("verify", "pipeline.commands.verify", "check every corpus shard against the sha256 in its manifest.json"),
    Command("sample", "pipeline.commands.sample", "write small raw inputs for every source, with good and bad documents"),
    Command("download", "pipeline.commands.download", "fetch real raw inputs over the network"),
    Command("models", "pipeline.commands.models", "train the perplexity LM or the Wikipedia-reference classifier"),
    Command("audit", "pipeline.commands.audit", "count markup left in a corpus and raw prose missing from it"),
    Command("mix", "pipeline.commands.mix", "show what a mixture draws from each source (the paper's Table 1)"),
    Command("plan", "pipeline.commands.plan", "project a build's CPU, memory, disk and download cost from a sample"),
    Command("report", "pipeline.commands.report", "one self-contained HTML page showing a finished corpus"),
    Command("diff", "pipeline.commands.diff", "compare two corpora of one source: documents added, removed, changed"),
    Command("remove", "pipeline.commands.remove", "take listed documents out of a corpus and its token shards"),
]


def main(argv: Sequence[str] | None = None) -> None:
    without_blas_threads()  # before numpy loads
    run_cli("pipeline", DESCRIPTION, COMMANDS, argv, "rerun the same command to resume")


if __name__ == "__main__":  # `python -m pipeline.cli ...`, as the `pipeline` command
    main()
