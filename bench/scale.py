"""How each source's cost grows with its input: 1x, 4x and 16x of a generated input (and the
real inputs in ../shared/realdata when present), documents/s per core and peak memory.

For each source: write its generated sample `--base` times per unit (different seeds and ids
of their own, side by side, as bench/sources.py does), so 1x, 4x and 16x hold 1, 4 and 16
times the documents (`BASE_COPIES` per source). Each size runs the whole pipeline with one
worker in a fresh child process; the run's work happens in the worker that process forks, so
the child and every process under it are measured together (bench/process_tree.py): CPU
seconds (user + system) of the tree, and its peak memory sampled as RSS and PSS summed over
the tree (the interpreters and imports included). The sizes run in turn, `--rounds` times, and
cells give min / median / max; marginal figures and ratios use medians. Time grows linearly
when docs/s/core stays the same at every size; memory stays flat when the peak does. CPU
seconds, not wall time, are measured; on a busy machine (see the load average) they are still
rough.

    .venv/bin/python bench/scale.py [--sources c4 wikipedia ...] [--factors 1 4 16] [--base 2] [--rounds 3] [--no-real]
                                    [--plan]   # also: `pipeline plan`'s projection from 1x against 4x and 16x
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.process_tree import run_tree  # noqa: E402
from bench.rounds import alternate, spread, table  # noqa: E402

REALDATA = ROOT.parent / "shared" / "realdata"
SOURCES = ["commoncrawl", "c4", "github", "wikipedia", "books", "arxiv", "stackexchange"]
# Sample copies per unit of size: about a second of CPU at 1x, so fixed costs do not hide the trend.
BASE_COPIES = {"commoncrawl": 4, "c4": 32, "github": 32, "wikipedia": 4, "books": 4, "arxiv": 4, "stackexchange": 4}


def _bench_sources():
    """bench/sources.py (its sample copies and raw sizes), loaded by path: the name `sources`
    is the project's package."""
    spec = importlib.util.spec_from_file_location("bench_sources", ROOT / "bench" / "sources.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(name: str, inputs: str, output: str, models: str | None) -> dict:
    """In this (child) process: run `name` over `inputs`; documents read and kept."""
    from pipeline.commands.run import run_source
    from pipeline.engine.registry import source_class

    source = source_class(name)()
    if models:
        source = type(source)(dataclasses.replace(source.config, models_dir=models))
    report = run_source(source, inputs, output, workers=1, show_progress=False)
    return {"read": report.stats["documents_read"], "kept": report.documents_kept}


def run_child(name: str, inputs: Path, output: Path, models: Path | None) -> dict | str:
    """One run in a fresh interpreter, measured with every process it forks; a fresh output."""
    shutil.rmtree(output, ignore_errors=True)
    cmd = [sys.executable, __file__, "--measure", name, str(inputs), str(output), str(models or "")]
    usage, done = run_tree(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    out, err = done.stdout, done.stderr
    if usage.returncode != 0:
        lines = (err or out).strip().splitlines()
        return lines[-1] if lines else f"exit status {usage.returncode}"
    counts = json.loads(out.strip().splitlines()[-1])
    timings = json.loads((output / name / "timings.json").read_text())
    return {**counts, "cpu_s": usage.cpu_s, "wall_s": usage.wall_s, "rss_mb": usage.peak_rss_mb,
            "pss_mb": usage.peak_pss_mb, "worker_peak_mb": timings.get("worker_peak_rss_bytes", 0) / 1e6,
            "merge_peak_mb": max((m["peak_rss_bytes"] for m in timings.get("merges", [])), default=0) / 1e6}


def run_plan(name: str, inputs: Path, sample_bytes: int, models: Path | None) -> dict:
    """`pipeline plan` for the whole of `inputs`, sampling `sample_bytes` of it (the 1x size)."""
    config = []
    if models is not None:
        config_file = inputs.parent / "plan-config.toml"
        config_file.write_text(f'[{name}]\nmodels_dir = "{models}"\n')
        config = ["--config", str(config_file)]
    done = subprocess.run([sys.executable, "-c", "import sys; from pipeline.cli import main; main(sys.argv[1:])",
                           "plan", name, "--input", str(inputs), "--sample-mb", str(sample_bytes / 1e6),
                           "--cores", "1", "--tasks", "1", "--repeats", "3", "--json", *config], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"pipeline plan {name}: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)[name]


def scale_source(bench, name: str, factors: list[int], base: int, real: bool, rounds: int,
                 plans: dict[tuple[str, str], dict] | None = None) -> list[tuple[str, list[dict] | str, int]]:
    """(size label, one measurement a round or why not, input bytes) for each size."""
    from pipeline.common.files import tree_bytes
    from pipeline.engine.registry import source_class

    rows = []
    with tempfile.TemporaryDirectory(prefix=f"scale-{name}-") as tmp:
        work = Path(tmp)
        models = None
        sizes: dict[str, tuple[Path, int]] = {}
        for factor in factors:
            inputs = bench.write_copies(name, work / f"raw{factor}", base * factor)
            if name == "commoncrawl" and models is None:  # trained once (untimed), used at every size
                models = work / "models"
                bench.with_models(source_class(name)(), inputs, models)
            size = sum(bench.raw_bytes(Path(p)) for p in source_class(name)().list_inputs(str(inputs)))
            sizes[f"{factor}x"] = (inputs, size)
        real_inputs = REALDATA / name
        if real and real_inputs.is_dir():
            try:
                sizes["real"] = (real_inputs, sum(bench.raw_bytes(Path(p))
                                                  for p in source_class(name)().list_inputs(str(real_inputs))))
            except Exception as e:  # noqa: BLE001 - reported, not fatal
                rows.append(("real", f"{type(e).__name__}: {e}", 0))
        runs = alternate({label: (lambda label=label, inputs=inputs: run_child(name, inputs, work / f"out-{label}", models))
                          for label, (inputs, _) in sizes.items()}, rounds)
        for label, (_, size) in sizes.items():
            failed = next((m for m in runs[label] if isinstance(m, str)), None)
            rows.append((label, failed or runs[label], size))
        if plans is not None:  # what `pipeline plan` projects for each larger size from a 1x sample
            first = f"{factors[0]}x"
            for label, (inputs, _) in sizes.items():
                if label.endswith("x") and label != first:
                    # The sample is the 1x input's size on disk, the unit `pipeline plan` counts in.
                    plans[(name, label)] = run_plan(name, inputs, tree_bytes(sizes[first][0]), models)
    return rows


def print_plan_table(results: dict[str, list[tuple[str, list[dict] | str, int]]],
                     plans: dict[tuple[str, str], dict]) -> None:
    """Projected (from a 1x sample) against measured (median of the rounds): CPU seconds, the
    largest worker's peak and the largest merge's peak (both from the run's timings.json)."""
    header = ["source", "size", "CPU s planned", "CPU s measured", "ratio", "worker MB planned", "measured",
              "ratio", "merge MB planned", "measured", "ratio"]
    rows = []

    def ratio(planned: float, measured: float) -> str:
        return f"{planned / measured:.2f}" if measured else "-"

    for (name, label), plan in plans.items():
        ms = next((m for lab, m, _ in results[name] if lab == label), None)
        if not isinstance(ms, list):
            continue
        cpu = statistics.median(x["cpu_s"] for x in ms)
        worker = statistics.median(x["worker_peak_mb"] for x in ms)
        merge = statistics.median(x["merge_peak_mb"] for x in ms)
        planned_cpu, planned_worker = plan["core_hours"] * 3600, plan["peak_worker_bytes"] / 1e6
        planned_merge = plan["peak_merge_bytes"] / 1e6
        rows.append([name, label, f"{planned_cpu:.2f}", f"{cpu:.2f}", ratio(planned_cpu, cpu), f"{planned_worker:.0f}",
                     f"{worker:.0f}", ratio(planned_worker, worker), f"{planned_merge:.0f}" if merge else "-",
                     f"{merge:.0f}" if merge else "-", ratio(planned_merge, merge) if merge else "-"])
    table("pipeline plan from the 1x sample against the measured runs", header, rows, 1)


def print_table(results: dict[str, list[tuple[str, list[dict] | str, int]]], rounds: int) -> None:
    """One row per size. "marginal" figures come from the difference to the previous size (medians),
    so a run's fixed cost (imports, stage set-up, the first shard) cancels out: time is linear when
    the marginal rate stays the same from size to size, and memory flat when the peak does."""
    header = ["source", "size", "input MB", "docs read", "kept", "CPU s", "docs/s/core", "marginal docs/s/core",
              "marginal MB/s/core", "peak RSS MB", "peak PSS MB", "PSS vs 1x"]
    rows: list[list[object]] = []
    for name, measured in results.items():
        first = previous = None
        for label, ms, size in measured:
            if isinstance(ms, str):
                rows.append([name, label, f"{size / 1e6:.2f}", f"not measured: {ms}"] + [""] * 8)
                continue
            m = {key: statistics.median(x[key] for x in ms) for key in ("cpu_s", "pss_mb")}
            rates = [x["read"] / x["cpu_s"] for x in ms if x["cpu_s"]]
            marginal = mb_rate = "-"
            if label.endswith("x") and previous is not None:
                extra_cpu = m["cpu_s"] - previous[0]["cpu_s"]
                if extra_cpu > 0:
                    marginal = f"{(ms[0]['read'] - previous[2]) / extra_cpu:,.0f}"
                    mb_rate = f"{(size - previous[1]) / 1e6 / extra_cpu:.2f}"
            if label.endswith("x"):
                first = first or m
                previous = (m, size, ms[0]["read"])
            ratio = f"{m['pss_mb'] / first['pss_mb']:.2f}" if first and label.endswith("x") else "-"
            rows.append([name, label, f"{size / 1e6:.2f}", f"{ms[0]['read']:,}", f"{ms[0]['kept']:,}",
                         spread([x["cpu_s"] for x in ms]), spread(rates, ",.0f"), marginal, mb_rate,
                         spread([x["rss_mb"] for x in ms], ".0f"), spread([x["pss_mb"] for x in ms], ".0f"), ratio])
    table("Scaling: whole pipeline, 1 worker, the run's process tree", header, rows, rounds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sources", nargs="+", default=SOURCES, choices=SOURCES)
    p.add_argument("--factors", nargs="+", type=int, default=[1, 4, 16])
    p.add_argument("--base", type=int, help="sample copies per unit of size (default: BASE_COPIES per source)")
    p.add_argument("--no-real", action="store_true", help="skip the real inputs in ../shared/realdata")
    p.add_argument("--rounds", type=int, default=3, help="runs of each size, in turn (default %(default)s)")
    p.add_argument("--json", help="also write the measurements to this file")
    p.add_argument("--plan", action="store_true", help="also run `pipeline plan` on each larger size with the "
                   "first size as its sample, and compare its projection with the measured runs")
    p.add_argument("--measure", nargs=4, metavar=("SOURCE", "INPUT", "OUTPUT", "MODELS"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.measure:
        name, inputs, output, models = a.measure
        print(json.dumps(measure(name, inputs, output, models or None)))
        return
    bench = _bench_sources()
    results = {}
    plans: dict[tuple[str, str], dict] | None = {} if a.plan else None
    for name in a.sources:
        results[name] = scale_source(bench, name, a.factors, a.base or BASE_COPIES[name], not a.no_real, a.rounds,
                                     plans)
        print(f"measured {name}", file=sys.stderr, flush=True)
    print_table(results, a.rounds)
    if plans:
        print_plan_table(results, plans)
    if a.json:
        Path(a.json).write_text(json.dumps({"measured": results, "plans": [
            {"source": n, "size": label, **plan} for (n, label), plan in (plans or {}).items()]}, indent=1))
    copies = ", ".join(f"{n} {a.base or BASE_COPIES[n]}" for n in a.sources)
    print(f"\nsizes {', '.join(f'{f}x' for f in a.factors)} of sample copies per unit ({copies}); CPU seconds "
          f"of the run's process tree (one worker); peaks = the largest sums of RSS and of PSS over the tree, "
          f"sampled every 10 ms")


if __name__ == "__main__":
    main()
