"""Engine overhead: 200k synthetic 2 KB documents through a no-op stage into shards, against a
bare loop that writes the same Arrow data with pyarrow alone.

    .venv/bin/python bench/engine.py [--documents 200000] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.commands.run import run_source  # noqa: E402
from pipeline.engine.document import Document, Skipped  # noqa: E402
from pipeline.engine.shards import BASE_FIELDS  # noqa: E402
from pipeline.engine.source import Source  # noqa: E402
from pipeline.engine.stage import Stage  # noqa: E402

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


def bare_loop(out: Path, per_file: int) -> None:
    schema = pa.schema(BASE_FIELDS)
    with pa.OSFile(str(out / "bare.arrow"), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for f in range(FILES):
            ids, bodies = [], []
            for doc_id, text in texts(f, per_file):
                ids.append(doc_id)
                bodies.append(text)
                if len(ids) == 1024:
                    writer.write_batch(_batch(schema, ids, bodies))
                    ids, bodies = [], []
            if ids:
                writer.write_batch(_batch(schema, ids, bodies))


def _batch(schema: pa.Schema, ids: list[str], bodies: list[str]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array(ids, pa.string()), pa.array(bodies, pa.string()), pa.array(["synthetic"] * len(ids), pa.string())],
        schema=schema,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each; the best is reported")
    parser.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None,
                        help="where both write (default /dev/shm: memory, so disk writeback does not "
                        "blur the CPU cost being compared)")
    args = parser.parse_args()
    per_file = args.documents // FILES
    total = per_file * FILES
    work = Path(tempfile.mkdtemp(prefix="herd-bench-", dir=args.dir))
    try:
        inputs = work / "in"
        inputs.mkdir()
        for f in range(FILES):
            (inputs / f"{f}.count").write_text(str(per_file))
        # Alternate the runs so that both see the same machine state; keep the best of each.
        best: dict[int, float] = {}
        for _ in range(args.repeat):
            started = time.perf_counter()
            bare_loop(work, per_file)
            best[0] = max(best.get(0, 0.0), total / (time.perf_counter() - started))
            (work / "bare.arrow").unlink()
            for workers in args.workers:
                out = work / f"out{workers}"
                started = time.perf_counter()
                report = run_source(Synthetic(), str(inputs), str(out), workers=workers, show_progress=False)
                best[workers] = max(best.get(workers, 0.0), total / (time.perf_counter() - started))
                assert report.documents_kept == total
                shutil.rmtree(out)
        bare = best[0]
        rows = [("bare pyarrow loop", 1, bare, bare, 1.0)]
        for workers in args.workers:
            rate = best[workers]
            rows.append((f"herd engine, {workers} worker(s)", workers, rate, rate / workers, rate / workers / bare))
    finally:
        shutil.rmtree(work)
    print(f"{total:,} documents of 2 KB, no-op stage")
    print(f"{'run':<28} {'workers':>7} {'docs/s':>10} {'docs/s/worker':>14} {'vs bare':>8}")
    for name, workers, rate, per_worker, ratio in rows:
        print(f"{name:<28} {workers:>7} {rate:>10,.0f} {per_worker:>14,.0f} {ratio:>8.2f}")


if __name__ == "__main__":
    main()
