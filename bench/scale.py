"""How each source's cost grows with its input: 1x, 4x and 16x of a generated input (and the
real inputs in ../shared/realdata when present), documents/s per core and peak memory.

For each source: write its generated sample `--base` times per unit (different seeds, side
by side, as bench/sources.py does), so 1x, 4x and 16x hold 1, 4 and 16 times the documents.
(`BASE_COPIES` per source). Each size runs the whole pipeline with one worker in a fresh child process, which reports
its CPU seconds (user + system) for the run and its peak resident memory (ru_maxrss, the
interpreter and imports included). Time grows linearly when docs/s/core stays the same at
every size; memory stays flat when the peak does. The last columns say how far each is
from that at the largest size. The machine may be shared: CPU seconds, not wall time, are
measured, and figures are still rough.

    .venv/bin/python bench/scale.py [--sources c4 wikipedia ...] [--factors 1 4 16] [--base 2] [--no-real]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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
    """In this (child) process: run `name` over `inputs`; CPU seconds and peak memory."""
    from pipeline.commands.run import run_source
    from pipeline.engine.registry import source_class

    source = source_class(name)()
    if models:
        source = type(source)(dataclasses.replace(source.config, models_dir=models))
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    report = run_source(source, inputs, output, workers=1, show_progress=False)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "read": report.stats["documents_read"],
        "kept": report.documents_kept,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "wall_s": time.perf_counter() - started,
        "peak_mb": after.ru_maxrss / 1024,
        "baseline_mb": baseline_mb,
    }


def run_child(name: str, inputs: Path, output: Path, models: Path | None) -> dict | str:
    cmd = [sys.executable, __file__, "--measure", name, str(inputs), str(output), str(models or "")]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return lines[-1] if lines else f"exit status {done.returncode}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def scale_source(bench, name: str, factors: list[int], base: int, real: bool) -> list[tuple[str, dict | str, int]]:
    """(size label, measurement or why not, input bytes) for each size."""
    from pipeline.engine.registry import source_class

    rows = []
    with tempfile.TemporaryDirectory(prefix=f"scale-{name}-") as tmp:
        work = Path(tmp)
        models = None
        for factor in factors:
            raw = work / f"raw{factor}"
            inputs = bench.write_copies(name, raw, base * factor)
            if name == "commoncrawl" and models is None:  # trained once (untimed), used at every size
                models = work / "models"
                bench.with_models(source_class(name)(), inputs, models)
            size = sum(bench.raw_bytes(Path(p)) for p in source_class(name)().list_inputs(str(inputs)))
            rows.append((f"{factor}x", run_child(name, inputs, work / f"out{factor}", models), size))
        real_inputs = REALDATA / name
        if real and real_inputs.is_dir():
            try:
                size = sum(bench.raw_bytes(Path(p)) for p in source_class(name)().list_inputs(str(real_inputs)))
            except Exception as e:  # noqa: BLE001 - reported, not fatal
                rows.append(("real", f"{type(e).__name__}: {e}", 0))
            else:
                rows.append(("real", run_child(name, real_inputs, work / "outreal", models), size))
    return rows


def print_table(results: dict[str, list[tuple[str, dict | str, int]]]) -> None:
    """One row per size. "marginal" figures come from the difference to the previous size, so a
    run's fixed cost (imports, stage set-up, the first shard) cancels out: time is linear when
    the marginal rate stays the same from size to size, and memory flat when the peak does."""
    print("| source | size | input MB | docs read | kept | CPU s | docs/s/core | marginal docs/s/core | "
          "marginal MB/s/core | peak MB | peak vs 1x |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, rows in results.items():
        first = previous = None
        for label, m, size in rows:
            if isinstance(m, str):
                print(f"| {name} | {label} | {size / 1e6:.2f} | not measured: {m} ||||||||")
                continue
            rate = m["read"] / m["cpu_s"] if m["cpu_s"] else 0.0
            marginal = mb_rate = "-"
            if label.endswith("x") and previous is not None:
                extra_cpu = m["cpu_s"] - previous[0]["cpu_s"]
                if extra_cpu > 0:
                    marginal = f"{(m['read'] - previous[0]['read']) / extra_cpu:,.0f}"
                    mb_rate = f"{(size - previous[1]) / 1e6 / extra_cpu:.2f}"
            if label.endswith("x"):
                first = first or m
                previous = (m, size)
            peak = f"{m['peak_mb'] / first['peak_mb']:.2f}" if first and label.endswith("x") else "-"
            print(f"| {name} | {label} | {size / 1e6:.2f} | {m['read']:,} | {m['kept']:,} | {m['cpu_s']:.2f} | "
                  f"{rate:,.0f} | {marginal} | {mb_rate} | {m['peak_mb']:.0f} | {peak} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sources", nargs="+", default=SOURCES, choices=SOURCES)
    p.add_argument("--factors", nargs="+", type=int, default=[1, 4, 16])
    p.add_argument("--base", type=int, help="sample copies per unit of size (default: BASE_COPIES per source)")
    p.add_argument("--no-real", action="store_true", help="skip the real inputs in ../shared/realdata")
    p.add_argument("--json", help="also write the measurements to this file")
    p.add_argument("--measure", nargs=4, metavar=("SOURCE", "INPUT", "OUTPUT", "MODELS"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.measure:
        name, inputs, output, models = a.measure
        print(json.dumps(measure(name, inputs, output, models or None)))
        return
    bench = _bench_sources()
    results = {}
    for name in a.sources:
        results[name] = scale_source(bench, name, a.factors, a.base or BASE_COPIES[name], not a.no_real)
        print(f"measured {name}", file=sys.stderr, flush=True)
    print_table(results)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    copies = ", ".join(f"{n} {a.base or BASE_COPIES[n]}" for n in a.sources)
    print(f"\nsizes {', '.join(f'{f}x' for f in a.factors)} of sample copies per unit ({copies}); CPU seconds "
          f"of one worker; peak = the child process's maximum resident memory")


if __name__ == "__main__":
    main()
