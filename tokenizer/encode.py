"""Parallel encoding of corpus shards into token shards (format: tokenizer/token_shards.py).

One task per corpus shard: corpus `ROOT/<source>/shard-NNNNN.arrow` becomes token shards
`OUT/<source>/train-NNNNN.{bin,idx}` and `heldout-NNNNN.{bin,idx}`. Tasks run in at most
`workers` processes (in this process when workers == 1), each loading SentencePiece once.

Resumable: a task writes its pairs under temporary names, renames them, then writes a marker
`_work/done-NNNNN.json`; a rerun deletes stray temporary files and runs only tasks without a
marker. The output of a task depends only on its corpus shard and the tokenizer, so a resumed
run yields the same files as an uninterrupted one. `meta.json` is written last. The plan
(`_work/plan.json`: tokenizer sha256, held-out rule) is fixed at the first run: a rerun with
another tokenizer is refused instead of mixing two tokenizers' ids in one folder.

Checksums: before encoding a corpus shard, its task hashes it once and compares the sha256 with
the corpus manifest.json; a shard changed on disk since the pipeline wrote it is refused.

Held-out split: a document is held out when xxh64("heldout:<seed>:<id>") falls below
`heldout_fraction` of the key space; a source too small for that to pick any document holds
out its one document with the smallest key (when it has at least two). Both depend only on
ids, so the split is the same for any number of workers or shard layout.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import xxhash

from pipeline.commands.mix import shard_text_size, string_bytes
from pipeline.common.errors import UserError
from pipeline.common.files import file_sha256, with_path, write_json_atomic
from pipeline.engine.shards import shard_paths
from tokenizer.token_shards import META, TokenShardWriter, token_dtype

KEY_SPACE = 2**64
DEFAULT_HELDOUT_FRACTION = 0.005
WORK = "_work"


@dataclass(frozen=True)
class HeldoutRule:
    seed: int
    threshold: int  # keys below it are held out
    ids: tuple[str, ...] = ()  # for sources too small for the threshold to pick any document

    def key(self, doc_id: str) -> int:
        return xxhash.xxh64_intdigest(f"heldout:{self.seed}:{doc_id}".encode())

    def held_out(self, doc_id: str) -> bool:
        return doc_id in self.ids if self.ids else self.key(doc_id) < self.threshold


@dataclass(frozen=True)
class Task:
    source: str
    number: int
    corpus_shard: str
    output: str
    model: str
    dtype: str
    rule: HeldoutRule
    text_bytes: int  # for ordering (largest first) and the progress bar
    sha256: str = ""  # of the corpus shard, from its manifest.json ("" when there is none)


@dataclass
class EncodeReport:
    sources: dict[str, dict]  # source -> meta.json
    tasks_run: int
    seconds: float
    text_bytes: int  # of the tasks run

    @property
    def tokens(self) -> int:
        return sum(m["splits"][s]["tokens"] for m in self.sources.values() for s in m["splits"])


def find_sources(corpus_root: Path, wanted: list[str] | None) -> list[str]:
    """Sources with corpus shards under `corpus_root` (or exactly `wanted`, each required)."""
    if not corpus_root.is_dir():
        raise UserError(f"{corpus_root}: no corpus found (run `pipeline run all` first)")
    if wanted:
        for name in wanted:
            if not (corpus_root / name).is_dir():
                raise UserError(f"{corpus_root / name}: no corpus for source '{name}'")
        return list(wanted)
    found = sorted(p.name for p in corpus_root.iterdir()
                   if p.is_dir() and ((p / "manifest.json").exists() or any(p.glob("shard-*.arrow"))))
    if not found:
        raise UserError(f"{corpus_root}: no corpus found (no <source>/manifest.json; run `pipeline run all` first)")
    return found


def encode_corpus(
    corpus_root: Path,
    model: Path,
    output: Path,
    sources: list[str] | None = None,
    workers: int = 1,
    heldout_fraction: float = DEFAULT_HELDOUT_FRACTION,
    seed: int = 0,
    restart: bool = False,
    show_progress: bool | None = None,
) -> EncodeReport:
    if workers < 1:
        raise UserError("--workers must be at least 1")
    if not 0 <= heldout_fraction < 1:
        raise UserError(f"--heldout {heldout_fraction}: must be at least 0 and below 1")
    if not model.is_file():
        raise UserError(f"{model}: tokenizer model does not exist (run `tokenizer train` first)")
    import sentencepiece as spm

    try:
        processor = spm.SentencePieceProcessor(model_file=str(model))
    except (RuntimeError, OSError) as e:
        raise UserError(f"{model}: not a SentencePiece model ({str(e).strip().splitlines()[-1]})") from None
    tokenizer = {
        "tokenizer": str(model),
        "tokenizer_sha256": file_sha256(model),
        "vocab_size": processor.vocab_size(),
        "dtype": token_dtype(processor.vocab_size()),
        "bos_id": processor.bos_id(),
        "eos_id": processor.eos_id(),
    }
    if tokenizer["bos_id"] < 0 or tokenizer["eos_id"] < 0:
        raise UserError(f"{model}: the tokenizer has no BOS or EOS piece")

    tasks: list[Task] = []
    finished: dict[str, dict] = {}
    for source in find_sources(corpus_root, sources):
        source_tasks = _plan_source(corpus_root / source, output / source, source, model, tokenizer,
                                    heldout_fraction, seed, restart)
        tasks.extend(t for t in source_tasks if not _marker(t).exists())
        finished[source] = {"tasks": source_tasks}
    tasks.sort(key=lambda t: -t.text_bytes)  # largest first keeps the workers busy to the end

    started = time.time()
    _run_tasks(tasks, workers, show_progress)
    metas = {source: _finalise(output / source, source, tokenizer, entry["tasks"])
             for source, entry in finished.items()}
    return EncodeReport(metas, len(tasks), time.time() - started, sum(t.text_bytes for t in tasks))


def _plan_source(folder: Path, out: Path, source: str, model: Path, tokenizer: dict,
                 heldout_fraction: float, seed: int, restart: bool) -> list[Task]:
    paths = shard_paths(folder)
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise UserError(f"{missing[0]}: listed in the manifest but missing")
    sizes = [shard_text_size(p) for p in paths]
    documents = sum(n for n, _ in sizes)
    if documents == 0:
        raise UserError(f"{folder}: empty source (no documents in its corpus shards)")
    if restart and out.exists():
        shutil.rmtree(out)
    work = out / WORK
    plan = {
        "tokenizer_sha256": tokenizer["tokenizer_sha256"],
        "corpus_shards": _corpus_identity(folder, paths),
        "heldout_fraction": heldout_fraction,
        "seed": seed,
    }
    plan_path = work / "plan.json"
    if plan_path.exists():
        earlier = json.loads(plan_path.read_text())
        if earlier["tokenizer_sha256"] != plan["tokenizer_sha256"]:
            raise UserError(
                f"{out}: encoded with tokenizer sha256 {earlier['tokenizer_sha256'][:12]}, but {model} has "
                f"{plan['tokenizer_sha256'][:12]}: refusing to mix them (pass --restart to re-encode)"
            )
        changed = sorted(k for k in plan if earlier.get(k) != plan[k])
        if changed:
            raise UserError(f"{out}: {', '.join(changed)} differ from the encode started there "
                            "(pass --restart to re-encode)")
        rule = HeldoutRule(**{**earlier["heldout_rule"], "ids": tuple(earlier["heldout_rule"]["ids"])})
    else:
        if (out / META).exists() or any(out.glob("*.bin")):
            raise UserError(f"{out}: holds token shards of an earlier encode; pass --restart to replace them")
        rule = _heldout_rule(paths, documents, heldout_fraction, seed)
        work.mkdir(parents=True, exist_ok=True)
        write_json_atomic(plan_path, {**plan, "heldout_rule": {**asdict(rule), "ids": list(rule.ids)}})
    for stray in out.glob("*.tmp"):  # a task killed midway
        stray.unlink()
    hashes = _manifest_hashes(folder)
    return [Task(source, i, str(p), str(out), str(model), tokenizer["dtype"], rule, sizes[i][1],
                 hashes.get(p.name, "")) for i, p in enumerate(paths)]


def _manifest_hashes(folder: Path) -> dict[str, str]:
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return {}
    return {s["file"]: s.get("sha256", "") for s in json.loads(manifest.read_text())["shards"]}


def _corpus_identity(folder: Path, paths: list[Path]) -> list[str]:
    """Shard names with the manifest's sha256: a corpus rebuilt since the encode started differs."""
    hashes = _manifest_hashes(folder)
    return [f"{p.name}:{hashes.get(p.name, '')}" for p in paths]


def _heldout_rule(paths: list[Path], documents: int, fraction: float, seed: int) -> HeldoutRule:
    rule = HeldoutRule(seed, int(fraction * KEY_SPACE))
    if fraction == 0 or documents * fraction >= 1 or documents < 2:
        return rule
    # Too small for the threshold: hold out the one document with the smallest key.
    best: tuple[int, str] | None = None
    for path in paths:
        with pa.memory_map(str(path)) as source:
            for batch in pa.ipc.open_stream(source):
                for doc_id in batch.column("id").to_pylist():
                    key = rule.key(doc_id)
                    if best is None or key < best[0]:
                        best = (key, doc_id)
    assert best is not None
    return HeldoutRule(seed, rule.threshold, (best[1],))


# ---------------------------------------------------------------------------------------
# Running tasks

_processor = None  # the worker's SentencePiece, loaded once per process
_progress: tuple | None = None  # shared (tokens, bytes) counters in worker processes


def _load(model: str):
    global _processor
    if _processor is None or _processor[0] != model:
        import sentencepiece as spm

        _processor = (model, spm.SentencePieceProcessor(model_file=model))
    return _processor[1]


def encode_task(task: Task, report=None) -> dict:
    """Encode one corpus shard; writes its token shards and completion marker."""
    processor = _load(task.model)
    out = Path(task.output)
    writers = {split: TokenShardWriter(out, split, task.number, task.dtype) for split in ("train", "heldout")}
    try:
        with pa.memory_map(task.corpus_shard) as source:
            _check_sha256(task, source)
            for batch in pa.ipc.open_stream(source):
                ids = batch.column("id").to_pylist()
                texts = batch.column("text").to_pylist()
                held = [task.rule.held_out(i) for i in ids]
                tokens = 0
                for split, wanted in (("train", False), ("heldout", True)):
                    chosen = [t for t, h in zip(texts, held) if h == wanted]
                    if not chosen:
                        continue
                    encoded = processor.encode(chosen, add_bos=True, add_eos=True, num_threads=1,
                                               return_type="numpy")
                    lengths = [len(e) for e in encoded]
                    _write(writers[split], np.concatenate(encoded), lengths)
                    tokens += sum(lengths)
                if report is not None:
                    report(tokens, string_bytes(batch.column("text")))
        entries = {split: _close(writer) for split, writer in writers.items()}
    except BaseException:
        for writer in writers.values():
            with contextlib.suppress(OSError):  # after a failed write (disk full) closing fails too
                writer.abort()
        raise
    result = {"number": task.number, "corpus_shard": Path(task.corpus_shard).name, **entries}
    write_json_atomic(_marker(task), result)
    return result


def _check_sha256(task: Task, shard: pa.MemoryMappedFile) -> None:
    """Refuse a corpus shard whose bytes differ from what the pipeline wrote (manifest.json):
    one hash of the memory-mapped file per task, before any token is written."""
    if not task.sha256:
        return
    if hashlib.sha256(shard.read_buffer()).hexdigest() != task.sha256:
        raise UserError(f"{task.corpus_shard}: sha256 does not match its manifest.json (corrupt corpus shard; "
                        "check the corpus with `pipeline verify`)")
    shard.seek(0)


def _write(writer: TokenShardWriter, ids: np.ndarray, lengths: list[int]) -> None:
    try:
        writer.write(ids, lengths)
    except OSError as e:
        raise with_path(e, writer.folder / writer.bin_name) from e


def _close(writer: TokenShardWriter) -> dict | None:
    try:
        return writer.close()
    except OSError as e:
        raise with_path(e, writer.folder / writer.bin_name) from e


def _marker(task: Task) -> Path:
    return Path(task.output) / WORK / f"done-{task.number:05d}.json"


def _init_worker(tokens, text_bytes) -> None:
    global _progress
    _progress = (tokens, text_bytes)


def _report_shared(tokens: int, text_bytes: int) -> None:
    assert _progress is not None
    with _progress[0].get_lock():
        _progress[0].value += tokens
    with _progress[1].get_lock():
        _progress[1].value += text_bytes


def _worker_task(task: Task) -> dict:
    return encode_task(task, _report_shared)


def _run_tasks(tasks: list[Task], workers: int, show_progress: bool | None) -> None:
    if not tasks:
        return
    from tqdm import tqdm

    total = sum(t.text_bytes for t in tasks)
    disable = not show_progress if show_progress is not None else None  # None: only on a terminal
    with tqdm(total=total, unit="B", unit_scale=True, desc="encode", disable=disable, smoothing=0.1) as bar:
        started = time.time()
        counted = {"tokens": 0}

        def show(tokens: int, text_bytes: int) -> None:
            counted["tokens"] = tokens
            bar.n = text_bytes
            elapsed = max(time.time() - started, 1e-9)
            bar.set_postfix_str(f"{tokens / elapsed / 1e6:.2f}M tokens/s", refresh=False)
            bar.refresh()

        if workers == 1 or len(tasks) == 1:
            running = {"tokens": 0, "bytes": 0}

            def report(tokens: int, text_bytes: int) -> None:
                running["tokens"] += tokens
                running["bytes"] += text_bytes
                show(running["tokens"], running["bytes"])

            for task in tasks:
                encode_task(task, report)
            return

        ctx = multiprocessing.get_context("fork")
        tokens_done, bytes_done = ctx.Value("q", 0), ctx.Value("q", 0)
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(0.5):
                show(tokens_done.value, bytes_done.value)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        try:
            with ctx.Pool(min(workers, len(tasks)), initializer=_init_worker,
                          initargs=(tokens_done, bytes_done)) as pool:
                for _ in pool.imap_unordered(_worker_task, tasks):
                    pass
        finally:
            stop.set()
            watcher.join()
        show(tokens_done.value, bytes_done.value)


def _finalise(out: Path, source: str, tokenizer: dict, tasks: list[Task]) -> dict:
    markers = [json.loads(_marker(t).read_text()) for t in tasks]
    splits = {}
    for split in ("train", "heldout"):
        shards = [m[split] for m in sorted(markers, key=lambda m: m["number"]) if m[split]]
        splits[split] = {
            "documents": sum(s["documents"] for s in shards),
            "tokens": sum(s["tokens"] for s in shards),
            "shards": shards,
        }
    meta = {"source": source, **tokenizer, "splits": splits}
    write_json_atomic(out / META, meta)
    return meta
