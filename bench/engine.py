"""Engine overhead: 200k synthetic 2 KB documents through a no-op stage into shards, against a
bare loop that writes the same bytes the same way.

The bare loop makes the same documents, builds the same Arrow record batches (1,024 rows, the
engine's schema), rolls shards at the same size, and writes them with pyarrow's stream writer
into the engine's own file writer (pipeline/engine/hashing_file.py: the batches' buffers written and
SHA-256-hashed on a second thread, as a worker does where a core is left for that thread; one
process on two cores, as here, has one): what is compared is the engine's work around that
(reading, stages, supervision, counting, parts and their renaming), not a different way to
write. With one worker the bare loop's shard checksums must equal the engine's; the bench stops
if they do not.

Every variant runs twice a round: in a new interpreter, measured there from after its imports
(a run as a user starts one: the bare loop's heap as new as the engine's worker's), and in this
bench's process (warm). Warm, the engine forks a new worker each time, so the reference bare loop
runs in a child forked from this process too; the bare loop also runs in this process itself,
where it reuses the memory its earlier rounds freed (a row of its own: it shows that forking
costs the bare loop next to nothing, so what the warm engine pays past the forked loop is the
engine's own). Every variant runs in turn, `--repeat` rounds; each of the two
tables gives min / median / max of docs/s (wall) and of CPU milliseconds per 1,000 documents
(this process and the workers it forks: RUSAGE_SELF + RUSAGE_CHILDREN), and the load average.
On a busy machine the wall-clock rates say more about the other users than about the engine
(2 workers on 2 cores write and hash in their document loops: no core is left for a thread of
their own); the CPU ratio, bare loop over engine, round by round, is the figure to read there.

    .venv/bin/python bench/engine.py [--documents 200000] [--workers 1 2] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.engine.resources import cpu_seconds_with_children  # noqa: E402
from bench.rounds import alternate, spread, table  # noqa: E402
from pipeline.commands.run import run_source  # noqa: E402
from pipeline.engine.document import Document, Skipped  # noqa: E402
from pipeline.engine.hashing_file import HashingFile  # noqa: E402
from pipeline.engine.shards import build_schema, skip_pandas_probe  # noqa: E402
from pipeline.engine.source import Source  # noqa: E402
from pipeline.engine.stage import Stage  # noqa: E402
from pipeline.engine.supervisor import usable_cores  # noqa: E402

BATCH_ROWS = 1024  # ShardWriter's default
SHARD_BYTES = 256 << 20  # run_source's default --shard-mb

BODY = ("lorem " * 400)[:2000]
FILES = 8


def texts(file_index: int, count: int) -> Iterator[tuple[str, str]]:
    for i in range(count):
        yield f"{file_index}-{i}", f"{i:08d} {BODY}"


class NoOp(Stage):
    name = "noop"

    def process(self, doc: Document) -> Document:
        return doc


class Synthetic(Source):
    """Each input file holds a document count; the reader makes that many 2 KB documents."""

    name = "synthetic"
    patterns = ("*.count",)

    def read(self, path: str) -> Iterator[Document | Skipped]:
        file_index = int(Path(path).stem)
        count = int(Path(path).read_text())
        for doc_id, text in texts(file_index, count):
            yield Document(doc_id, text, "synthetic")

    def stages(self) -> list[Stage]:
        return [NoOp()]


def bare_loop(out: Path, per_file: int) -> list[str]:
    """The same documents as one worker's task, written as the engine writes them; their sha256s."""
    schema = build_schema([])
    digests: list[str] = []
    shard: HashingFile | None = None
    stream: pa.RecordBatchStreamWriter | None = None
    shard_bytes = 0
    ids: list[str] = []
    bodies: list[str] = []

    def flush() -> None:
        nonlocal shard, stream, shard_bytes
        batch = pa.RecordBatch.from_arrays(
            [pa.array(ids, pa.string()), pa.array(bodies, pa.string()), pa.array(["synthetic"] * len(ids), pa.string())],
            schema=schema)
        if shard is None:
            shard = HashingFile(str(out / f"bare-{len(digests):05d}.arrow"), threaded=2 <= usable_cores())
            stream = pa.ipc.new_stream(shard, schema)
            shard_bytes = 0
        stream.write_batch(batch)
        shard_bytes += batch.nbytes
        if shard_bytes >= SHARD_BYTES:
            stream.close()
            digests.append(shard.close()[1])
            shard = None
        ids.clear()
        bodies.clear()

    for f in range(FILES):
        for doc_id, text in texts(f, per_file):
            ids.append(doc_id)
            bodies.append(text)
            if len(ids) == BATCH_ROWS:
                flush()
    if ids:
        flush()
    if shard is not None:
        stream.close()
        digests.append(shard.close()[1])
    return digests


def timed(run) -> tuple[float, float]:  # noqa: ANN001
    """(wall seconds, CPU seconds) of `run()`."""
    cpu, started = cpu_seconds_with_children(), time.perf_counter()
    run()
    return time.perf_counter() - started, cpu_seconds_with_children() - cpu


def run_variant(variant: str, work: Path, per_file: int) -> dict:
    """One run of `variant` ("bare" or a worker count) in this process: wall and CPU seconds and
    the shards' sha256 (the bare loop's, or the engine's manifest's)."""
    out = work / f"out-{variant}-{os.getpid()}"
    out.mkdir()
    try:
        if variant == "bare":
            digests: list[str] = []
            wall, cpu = timed(lambda: digests.extend(bare_loop(out, per_file)))
            return {"wall": wall, "cpu": cpu, "digests": digests}
        if variant == "bare-forked":
            wall, cpu = timed(lambda: forked_bare_loop(out, per_file))
            return {"wall": wall, "cpu": cpu}
        report = []
        wall, cpu = timed(lambda: report.append(run_source(Synthetic(), str(work / "in"), str(out), workers=int(variant),
                                                          show_progress=False)))
        assert report[0].documents_kept == per_file * FILES
        shards = json.loads((out / "synthetic" / "manifest.json").read_text())["shards"]
        return {"wall": wall, "cpu": cpu, "digests": [s["sha256"] for s in shards]}
    finally:
        shutil.rmtree(out)


def forked_bare_loop(out: Path, per_file: int) -> None:
    """`bare_loop` in a child forked from this process and waited for, as the engine runs a task in
    a worker it forks: the loop starts from the heap this process has (copy-on-write) instead of
    reusing, as the bare loop run here does, the memory its own earlier rounds freed."""
    child = os.fork()
    if child == 0:
        status = 1
        try:
            bare_loop(out, per_file)
            status = 0
        finally:
            os._exit(status)  # never back into the bench's own code in the child
    _, status = os.waitpid(child, 0)
    if status != 0:
        raise SystemExit(f"the forked bare loop failed (wait status {status})")


def in_fresh_process(variant: str, work: Path, per_file: int) -> dict:
    """`run_variant` in a new interpreter, measured there from after its imports: a run as a user
    starts one, the bare loop's heap as new as the engine's workers'."""
    done = subprocess.run([sys.executable, __file__, "--one", variant, "--work", str(work), "--per-file",
                           str(per_file)], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=5, help="alternating rounds of every variant")
    parser.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None,
                        help="where both write (default /dev/shm: memory, so disk writeback does not "
                        "blur the CPU cost being compared)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one run in this process, as JSON
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--per-file", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        skip_pandas_probe()  # as `pipeline run`'s workers do, for both
        print(json.dumps(run_variant(args.one, Path(args.work), args.per_file)))
        return
    per_file = args.documents // FILES
    total = per_file * FILES
    work = Path(tempfile.mkdtemp(prefix="herd-bench-", dir=args.dir))
    try:
        (work / "in").mkdir()
        for f in range(FILES):
            (work / "in" / f"{f}.count").write_text(str(per_file))
        skip_pandas_probe()
        names = {"bare": "bare loop (same bytes, same writer thread)",
                 "bare-forked": "bare loop in a worker forked from this process"}
        names.update({str(w): f"herd engine, {w} worker(s)" for w in args.workers})
        variants = {}
        for variant in names:
            if variant != "bare-forked":  # a new interpreter is no fork of a warm one
                variants[("fresh", variant)] = lambda v=variant: in_fresh_process(v, work, per_file)
            variants[("warm", variant)] = lambda v=variant: run_variant(v, work, per_file)
        runs = alternate(variants, args.repeat)
    finally:
        shutil.rmtree(work)
    for (_, variant), measured in runs.items():  # the same bytes, or the comparison means nothing
        if variant == "1" and any(m["digests"] != b["digests"] for m in measured for b in runs[("fresh", "bare")]):
            raise SystemExit("the bare loop's shards differ from the engine's: fix the bench")
    modes = [("fresh", "bare", "each run in a new process, measured from after its imports (as `pipeline run` and a "
                               "hand-written script each start)"),
             ("warm", "bare-forked", "every run in this bench's process, one after another; the engine forks a new "
                                     "worker each time and the reference bare loop runs in a forked child too (the "
                                     "bare loop run in this process reuses the memory its earlier rounds freed, which "
                                     "no run started by a user has: its row shows what that is worth)")]
    for mode, reference, what in modes:
        bare_runs = runs[(mode, reference)]
        bare_median = statistics.median(total / m["wall"] for m in bare_runs)
        rows = []
        for variant, name in names.items():
            if (mode, variant) not in runs:
                continue
            measured = runs[(mode, variant)]
            workers = int(variant) if variant.isdigit() else 1
            rates = [total / m["wall"] for m in measured]
            cpu_per_k = [m["cpu"] / total * 1e6 for m in measured]  # ms per 1,000 documents
            # Each round against the bare loop's run of the same round: what the load did
            # meanwhile weighs on both.
            cpu_ratios = [b["cpu"] / m["cpu"] for b, m in zip(bare_runs, measured)]
            rows.append([name, workers, spread(rates, ",.0f"), spread([r / workers for r in rates], ",.0f"),
                         spread(cpu_per_k, ".2f"), f"{statistics.median(rates) / workers / bare_median:.2f}",
                         f"{statistics.median(cpu_ratios):.2f}"])
        table(f"Engine overhead: {total:,} documents of 2 KB, no-op stage; {what}",
              ["run", "workers", "docs/s", "docs/s/worker", "CPU ms / 1k docs", f"median per worker vs {reference}",
               f"{reference}'s CPU / its CPU (median of rounds)"], rows, args.repeat)


if __name__ == "__main__":
    main()
