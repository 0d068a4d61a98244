"""`train plot --run runs/NAME`: a PNG of a run's loss and learning rate from metrics.jsonl."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.common.cli import path_arg
from pipeline.common.errors import InputError
from pipeline.common.files import check_regular_file


DESCRIPTION = "Plot a run's training loss and learning rate against the step, from RUN/metrics.jsonl."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=path_arg, required=True, help="run folder, e.g. runs/llama1-tiny")
    parser.add_argument("--out", type=path_arg, help="PNG to write (default RUN/training.png)")


def run(args: argparse.Namespace) -> None:
    run = Path(args.run)
    out = Path(args.out) if args.out else run / "training.png"
    check_regular_file(out, "a PNG file to write")  # opening a FIFO to write waits for a reader
    plot_run(run, out)
    print(f"train plot: wrote {out}")


def plot_run(run: Path, out: Path) -> None:
    path = run / "metrics.jsonl"
    if not path.is_file():
        raise InputError(str(path), "missing: not a training run folder (or no step has finished yet)")
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        steps = [row["step"] for row in rows]
        losses = [row["loss"] for row in rows]
        lrs = [row["lr"] for row in rows]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise InputError(str(path), f"not a metrics file ({e})") from None
    if not rows:
        raise InputError(str(path), "holds no steps yet")

    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, (loss_ax, lr_ax) = plt.subplots(2, 1, sharex=True, figsize=(8, 6))
    loss_ax.plot(steps, losses, linewidth=1)
    loss_ax.set_ylabel("training loss")
    loss_ax.set_title(run.name)
    loss_ax.grid(alpha=0.3)
    lr_ax.plot(steps, lrs, color="tab:orange", linewidth=1)
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_xlabel("step")
    lr_ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
