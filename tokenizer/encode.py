"""Parallel encoding of corpus shards into token shards (format: tokenizer/token_shards.py).

One task per corpus shard: corpus `ROOT/<source>/shard-NNNNN.arrow` becomes token shards
`OUT/<source>/train-NNNNN.{bin,idx}` and `heldout-NNNNN.{bin,idx}`. Tasks run in at most
`workers` processes (in this process when workers == 1), each loading SentencePiece once.

Resumable, as a run folder (pipeline/engine/run_folder.py: plan, markers, lock, overlap refusal,
--restart): a task writes its pairs under temporary names, renames them, then writes a marker
`_work/done-NNNNN.json`; a rerun deletes stray temporary files and runs only tasks without a
readable marker. The output of a task depends only on its corpus shard and the tokenizer, so a resumed
run yields the same files as an uninterrupted one. `meta.json` is written last. The plan
(`_work/plan.json`: tokenizer sha256, held-out rule) is fixed at the first run: a rerun with
another tokenizer is refused instead of mixing two tokenizers' ids in one folder.

Corpus shards rewritten in place since the encode (`pipeline remove`, which passes
`follow_corpus`): the shards whose sha256 differs from the plan's are encoded again (every shard
when the held-out rule a fresh encode derives has changed), so the folder equals a fresh encode
of the reduced corpus; without `follow_corpus` a changed corpus is refused, as before.

Checksums: before encoding a corpus shard, its task hashes it once and compares the sha256 with
the corpus manifest.json; a shard changed on disk since the pipeline wrote it is refused.

Completion is what is on disk (the contract: pipeline/engine/run_folder.py): a marker records the
corpus shard's fingerprint, taken before it was read, and the pairs it wrote. A rerun encodes a
task again when a .bin or .idx its marker lists is missing, not the size its counts give
(tokens times the id size; documents+1 offsets of 8 bytes) or not the sha256 it was written with
(hashed when small or written since the encode sealed it: a write in place), or when its corpus
shard changed since (size or mtime). meta.json is made anew from the markers by every run, and
written only when it differs from the one there: a rerun with nothing to do rewrites no file.

Long documents are encoded in bounded pieces (tokenizer/long_documents.py): one document with
millions of characters and no space must not take gigabytes of a worker's memory.

Held-out split: a document is held out when xxh64("heldout:<seed>:<id>") falls below
`heldout_fraction` of the key space; a source too small for that to pick any document holds
out its one document with the smallest key (when it has at least two). Both depend only on
ids, so the split is the same for any number of workers or shard layout.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import xxhash

from pipeline.common.cli import add_renamed, path_arg
from pipeline.common.config import Positive, check_flags
from pipeline.common.errors import UserError
from pipeline.common.files import (
    plain_name, read_json, with_path, write_json_atomic, write_json_if_changed,
)
from pipeline.common.warn import warn
from pipeline.engine.run_folder import (
    NUMBERED, WORK, Recorded, RunFolder, file_problem, fingerprint, read_marker, reread_reason,
)
from pipeline.engine.shards import shard_paths, shard_text_size, string_bytes
from pipeline.engine.supervisor import (
    DEFAULT_DOCUMENT_BUDGET_S,
    IDLE,
    PROCESSING,
    Attempt,
    Failure,
    Tracker,
    check_budget,
    run_supervised,
)
from tokenizer.long_documents import encode_documents
from tokenizer.token_shards import META, TokenShardWriter, ids_name, shard_names
from tokenizer.train import model_for_encoding

KEY_SPACE = 2**64
DEFAULT_HELDOUT_FRACTION = 0.005
# Everything an encode writes into its folder; --restart deletes these and nothing else.
# The names encode gives its shards and their temporaries (train-00000.bin, train-00000.bin.tmp:
# token_shards.py), never a user's notes.tmp or train-notes.bin: --restart deletes these only.
SHARD_TEMPORARIES = (f"train-{NUMBERED}.tmp", f"heldout-{NUMBERED}.tmp")
ENCODE_FILES = (WORK, META, *(f"{split}-{NUMBERED}.{kind}" for split in ("train", "heldout")
                              for kind in ("bin", "idx", "ids")), *SHARD_TEMPORARIES)


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
    model_sha256: str = ""  # of the tokenizer, from the plan


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
    for name in wanted or []:  # a name with a path ("../x") would put TOKENS/<name> somewhere else
        if not plain_name(name):
            raise UserError(f"--sources {name!r}: not a source name (a folder directly in {corpus_root})")
        if not (corpus_root / name).is_dir():
            raise UserError(f"{corpus_root / name}: no corpus for source '{name}'")
    if wanted:
        return list(dict.fromkeys(wanted))  # named twice, encoded once: two encodes raced on one folder
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
    document_budget_s: float = DEFAULT_DOCUMENT_BUDGET_S,
    follow_corpus: bool = False,
) -> EncodeReport:
    """Encode the sources' corpus shards (see the module's docstring). `follow_corpus`: corpus
    shards were rewritten in place since the encode (`pipeline remove`); the encode follows
    them instead of refusing the changed corpus (`_follow_rewritten_shards`)."""
    if workers < 1:
        raise UserError("--workers must be at least 1")
    check_budget(document_budget_s)
    if not 0 <= heldout_fraction < 1:
        raise UserError(f"--heldout {heldout_fraction}: must be at least 0 and below 1")
    tokenizer = model_for_encoding(model)

    with contextlib.ExitStack() as locks:
        tasks: list[Task] = []
        finished: dict[str, dict] = {}
        names = find_sources(corpus_root, sources)
        # One source the pipeline kept nothing of must not stop the others (named ones must have some).
        empty = set() if sources else {n for n in names if _documents(corpus_root / n) == 0}
        for source in names:
            folder = token_folder(output / source)
            folder.refuse_overlap(corpus_root / source, f"the corpus folder {corpus_root / source}",
                                  "pick another --tokens")
            if source in empty and len(empty) < len(names):
                warn(f"warning: {corpus_root / source}: no documents in its corpus shards; skipped")
                continue
            locks.enter_context(folder.lock())
            source_tasks = _plan_source(corpus_root / source, folder, source, model, tokenizer,
                                        heldout_fraction, seed, restart, follow_corpus)
            tasks.extend(t for t in source_tasks if not _finished(t))
            finished[source] = {"tasks": source_tasks}
        tasks.sort(key=lambda t: -t.text_bytes)  # largest first keeps the workers busy to the end

        started = time.time()
        _run_tasks(tasks, workers, show_progress, document_budget_s)
        metas = {source: _finalise(output / source, source, tokenizer, entry["tasks"])
                 for source, entry in finished.items()}
    return EncodeReport(metas, len(tasks), time.time() - started, sum(t.text_bytes for t in tasks))


def token_folder(out: Path) -> RunFolder:
    """The token folder `OUT/<source>/` of `tokenizer encode` (the protocol: pipeline/engine/run_folder.py)."""
    return RunFolder(out, activity="encode", noun="token folder", created=ENCODE_FILES,
                     published=(META, f"train-{NUMBERED}.bin", f"heldout-{NUMBERED}.bin"),
                     published_noun="token shards of an earlier encode", written=(META,))


def _plan_source(corpus: Path, folder: RunFolder, source: str, model: Path, tokenizer: dict,
                 heldout_fraction: float, seed: int, restart: bool, follow_corpus: bool = False) -> list[Task]:
    paths = shard_paths(corpus)
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise UserError(f"{missing[0]}: listed in the manifest but missing")
    sizes = [shard_text_size(p) for p in paths]
    documents = sum(n for n, _ in sizes)
    if documents == 0:
        raise UserError(f"{corpus}: empty source (no documents in its corpus shards)")
    out = folder.path
    wanted = {
        "tokenizer_sha256": tokenizer["tokenizer_sha256"],
        "corpus_shards": _corpus_identity(corpus, paths),
        "heldout_fraction": heldout_fraction,
        "seed": seed,
    }

    def refuse_change(earlier: dict, changed: list[str]) -> UserError:
        if "tokenizer_sha256" in changed:
            return UserError(
                f"{out}: encoded with tokenizer sha256 {str(earlier.get('tokenizer_sha256'))[:12]}, but {model} has "
                f"{wanted['tokenizer_sha256'][:12]}: refusing to mix them (pass --restart to re-encode)"
            )
        return UserError(f"{out}: {', '.join(sorted(changed))} differ from the encode started there "
                         "(pass --restart to re-encode)")

    def first_rule() -> dict:
        # Reads every id of a small source: derived once, then read from the plan.
        rule = _heldout_rule(paths, documents, heldout_fraction, seed)
        return {"heldout_rule": {**asdict(rule), "ids": list(rule.ids)}}

    if follow_corpus and not restart:
        _follow_rewritten_shards(folder, wanted, first_rule)
    plan = folder.fix_plan(wanted, list(wanted), refuse_change, restart=restart, first_run=first_rule)
    try:
        rule = HeldoutRule(**{**plan["heldout_rule"], "ids": tuple(plan["heldout_rule"]["ids"])})
    except (KeyError, TypeError):
        raise UserError(f"{folder.plan_path}: damaged (no held-out rule); pass --restart to start over") from None
    for stray in [p for pattern in SHARD_TEMPORARIES for p in out.glob(pattern)]:  # a task killed midway
        stray.unlink()
    hashes = _manifest_hashes(corpus)
    return [Task(source, i, str(p), str(out), str(model), tokenizer["dtype"], rule, sizes[i][1],
                 hashes.get(p.name, ""), tokenizer["tokenizer_sha256"]) for i, p in enumerate(paths)]


def _follow_rewritten_shards(folder: RunFolder, wanted: dict, first_rule: Callable[[], dict]) -> None:
    """Make a finished encode's plan take the corpus as it is now, when its shards were rewritten
    in place (same names, other sha256s): the tasks of the changed shards run again, or every
    task when the held-out rule a fresh encode derives from the reduced corpus differs (a small
    source whose held-out document went). Their token shards and markers are deleted first, so
    that a shard left with no documents leaves no pair behind: the folder ends as a fresh
    encode of the corpus would write it. Anything else that differs is left to the plan's
    usual refusal. Holding the folder's lock; safe to repeat after a kill."""
    if not folder.plan_path.exists():
        return  # nothing encoded yet: a first encode
    earlier = read_json(folder.plan_path)
    if any(earlier.get(key) != wanted[key] for key in wanted if key != "corpus_shards"):
        return
    before, now = earlier.get("corpus_shards", []), wanted["corpus_shards"]
    if [s.rsplit(":", 1)[0] for s in before] != [s.rsplit(":", 1)[0] for s in now]:
        raise UserError(f"{folder.path}: the corpus's shards are not the ones encoded there (rebuilt, not "
                        "rewritten in place); re-encode it with `tokenizer encode --restart`")
    rule = first_rule()
    redo = [n for n, (old, new) in enumerate(zip(before, now))
            if old != new or rule["heldout_rule"] != earlier.get("heldout_rule")]
    for number in redo:
        _marker_path(folder.path, number).unlink(missing_ok=True)
        for split in ("train", "heldout"):
            for name in (*shard_names(split, number), ids_name(split, number)):  # tokens, index, document ids
                (folder.path / name).unlink(missing_ok=True)
    if redo:
        write_json_atomic(folder.plan_path, {**earlier, **wanted, **rule})


def _documents(folder: Path) -> int:
    paths = [p for p in shard_paths(folder) if p.exists()]
    return sum(n for n, _ in (shard_text_size(p) for p in paths)) if len(paths) == len(shard_paths(folder)) else -1


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


def _load(model: str, sha256: str):
    """The worker's SentencePiece, from bytes whose sha256 is the plan's: a model replaced on disk
    since the encode was planned is refused, never mixed into the shards."""
    global _processor
    if _processor is None or _processor[0] != (model, sha256):
        import sentencepiece as spm

        try:
            data = Path(model).read_bytes()
        except OSError as e:
            raise UserError(f"{model}: cannot read the tokenizer ({e.strerror})") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise UserError(f"{model}: the tokenizer changed on disk during the encode (sha256 differs from the "
                            "plan's); rerun with --restart to encode with the new one")
        _processor = ((model, sha256), spm.SentencePieceProcessor(model_proto=data))
    return _processor[1]


def encode_task(task: Task, report=None, attempt: Attempt | None = None, tracker: Tracker | None = None) -> dict:
    """Encode one corpus shard; writes its token shards and completion marker.

    `attempt` and `tracker` are the supervisor's (pipeline/engine/supervisor.py): rows are published
    a record batch at a time, rows an earlier worker died on go one at a time, and a row that
    failed a worker twice is left out and listed in the marker."""
    attempt = attempt or Attempt()
    tracker = tracker or Tracker()
    processor = _load(task.model, task.model_sha256)
    out = Path(task.output)
    read = fingerprint(task.corpus_shard)  # before reading: a change while reading shows on the next run
    writers = {split: TokenShardWriter(out, split, task.number, task.dtype) for split in ("train", "heldout")}
    failed: list[dict] = []
    try:
        with pa.memory_map(task.corpus_shard) as source:
            _check_sha256(task, source)
            row = 0
            for batch in pa.ipc.open_stream(source):
                ids = batch.column("id").to_pylist()
                texts = batch.column("text").to_pylist()
                tokens, start = 0, 0
                while start < len(ids):
                    end = start + attempt.chunk_size(0, row + start, len(ids) - start)
                    tracker.at(PROCESSING, 0, row + start, end - start, 0)
                    poison = attempt.poisoned.get((0, row + start)) if end - start == 1 else None
                    if poison is not None:
                        failed.append({"row": row + start, "id": ids[start], "reason": poison[0]})
                    else:
                        tokens += _encode_rows(processor, task.rule, ids[start:end], texts[start:end], writers)
                    start = end
                row += len(ids)
                if report is not None:
                    report(tokens, string_bytes(batch.column("text")))
        tracker.at(IDLE)
        entries = {split: _close(writer) for split, writer in writers.items()}
    except BaseException:
        for writer in writers.values():
            with contextlib.suppress(OSError):  # after a failed write (disk full) closing fails too
                writer.abort()
        raise
    result = {"number": task.number, "corpus_shard": Path(task.corpus_shard).name, **entries, "read": read,
              # The sizes of the .ids as written, for the rerun's check (_marker_problem); in the marker
              # only, not in meta.json's shard entries.
              "ids_bytes": {split: (out / entry["ids"]).stat().st_size for split, entry in entries.items() if entry}}
    if failed:
        result["documents_failed"] = failed
    write_json_atomic(_marker(task), result)
    return result


def _encode_rows(processor, rule: HeldoutRule, ids: list[str], texts: list[str],
                 writers: dict[str, TokenShardWriter]) -> int:
    held = [rule.held_out(i) for i in ids]
    tokens = 0
    for split, wanted in (("train", False), ("heldout", True)):
        chosen = [t for t, h in zip(texts, held) if h == wanted]
        if not chosen:
            continue
        encoded = encode_documents(processor, chosen)
        lengths = [len(e) for e in encoded]
        _write(writers[split], np.concatenate(encoded), lengths, [i for i, h in zip(ids, held) if h == wanted])
        tokens += sum(lengths)
    return tokens


def _check_sha256(task: Task, shard: pa.MemoryMappedFile) -> None:
    """Refuse a corpus shard whose bytes differ from what the pipeline wrote (manifest.json):
    one hash of the memory-mapped file per task, before any token is written."""
    if not task.sha256:
        return
    if hashlib.sha256(shard.read_buffer()).hexdigest() != task.sha256:
        raise UserError(f"{task.corpus_shard}: sha256 does not match its manifest.json (corrupt corpus shard; "
                        "check the corpus with `pipeline verify`)")
    shard.seek(0)


def _write(writer: TokenShardWriter, ids: np.ndarray, lengths: list[int], document_ids: list[str]) -> None:
    try:
        writer.write(ids, lengths, document_ids)
    except OSError as e:
        raise with_path(e, writer.folder / writer.bin_name) from e


def _close(writer: TokenShardWriter) -> dict | None:
    try:
        return writer.close()
    except OSError as e:
        raise with_path(e, writer.folder / writer.bin_name) from e


def _marker(task: Task) -> Path:
    return _marker_path(Path(task.output), task.number)


def _marker_path(out: Path, number: int) -> Path:
    return out / WORK / f"done-{number:05d}.json"


def _finished(task: Task) -> bool:
    """Whether the task's marker is there and still true of the disk: every pair it lists is
    there with the size its counts give, and its corpus shard is as it was when read. A marker
    that is not is removed, with one line saying why, and the task runs again."""
    marker = read_marker(_marker(task), _marker_entries)
    if marker is None:
        return False
    problem = _marker_problem(task, marker)
    if problem is None:
        return True
    warn(f"warning: {problem}; encoding {task.corpus_shard} again")
    _marker(task).unlink()
    return False


def _marker_problem(task: Task, marker: dict) -> str | None:
    # The sizes follow from the counts: a cut or deleted file changes its size. A sha256 is checked
    # as for corpus shards (file_problem): hashed when the file is small or was written since the
    # encode sealed it (in place, same size), never an untouched large one (each rerun would cost
    # as much as encoding). Older markers lack the .bin and .idx sha256s: sizes only. The .ids
    # sidecar's size is in the marker and its sha256 in meta.json: a cut one would otherwise fail
    # the first `train --log-documents` to read it.
    id_bytes = np.dtype(task.dtype).itemsize
    for split in ("train", "heldout"):
        entry = marker[split]
        if not entry:
            continue
        for name, size, sha256 in ((entry["bin"], entry["tokens"] * id_bytes, entry.get("bin_sha256", "")),
                                   (entry["index"], (entry["documents"] + 1) * 8, entry.get("index_sha256", ""))):
            path = Path(task.output) / name
            problem = file_problem(Recorded(path, size, str(sha256)))
            if problem:
                return f"{path}: {problem}"
        if "ids" in entry:  # older markers have none
            path = Path(task.output) / entry["ids"]
            size = marker.get("ids_bytes", {}).get(split)  # older markers have none: then only whether it is there
            problem = (file_problem(Recorded(path, size, entry.get("ids_sha256", ""))) if isinstance(size, int)
                       else None if path.is_file() else "missing")
            if problem:
                return f"{path}: {problem}"
    why = reread_reason(task.corpus_shard, marker.get("read"), failed=False)  # older markers have none
    return f"{task.corpus_shard}: {why}" if why else None


def _marker_entries(marker: object) -> dict:
    """A marker as `encode_task` writes it; a ValueError for anything else (read_marker)."""
    if not isinstance(marker, dict) or not {"number", "corpus_shard", "train", "heldout"} <= marker.keys():
        raise ValueError("not an encode marker")
    return marker


def _run_tasks(tasks: list[Task], workers: int, show_progress: bool | None, budget_s: float) -> None:
    """The tasks on the engine's supervised workers (pipeline/engine/supervisor.py), with a progress bar."""
    if not tasks:
        return
    from tqdm import tqdm

    total = sum(t.text_bytes for t in tasks)
    disable = not show_progress if show_progress is not None else None  # None: only on a terminal
    with tqdm(total=total, unit="B", unit_scale=True, desc="encode", disable=disable, smoothing=0.1,
              mininterval=0.5) as bar:
        started = time.time()
        running = {"tokens": 0}

        def show(tokens: int, text_bytes: int) -> None:
            running["tokens"] += tokens
            elapsed = max(time.time() - started, 1e-9)
            bar.set_postfix_str(f"{running['tokens'] / elapsed / 1e6:.2f}M tokens/s", refresh=False)
            bar.update(text_bytes)

        def work(task: Task, attempt: Attempt, tracker: Tracker) -> dict:
            return encode_task(task, tracker.progress, attempt, tracker)

        def describe(task: Task, failure: Failure) -> str:
            if failure.phase == IDLE:
                return f"{task.corpus_shard} (outside any document)"
            last = failure.item + max(failure.count, 1) - 1
            rows = f"row {failure.item}" if last == failure.item else f"rows {failure.item}-{last}"
            return f"{task.corpus_shard} {rows}"

        run_supervised(tasks, work, workers, budget_s, show, describe)


def _finalise(out: Path, source: str, tokenizer: dict, tasks: list[Task]) -> dict:
    markers = [read_json(_marker(t)) for t in tasks]
    splits = {}
    for split in ("train", "heldout"):
        shards = [m[split] for m in sorted(markers, key=lambda m: m["number"]) if m[split]]
        splits[split] = {
            "documents": sum(s["documents"] for s in shards),
            "tokens": sum(s["tokens"] for s in shards),
            "shards": shards,
        }
    meta = {"source": source, **tokenizer, "splits": splits,
            # Documents that killed or stalled an encoding worker twice: left out, listed here.
            "documents_failed": [dict(d, corpus_shard=m["corpus_shard"])
                                 for m in sorted(markers, key=lambda m: m["number"])
                                 for d in m.get("documents_failed", [])]}
    write_json_if_changed(out / META, meta)
    return meta


# --- `tokenizer encode` --------------------------------------------------------------------

DESCRIPTION = """\
Encode every source under --corpus (or --sources) into token shards TOKENS/<source>/:
train-NNNNN.bin/.idx and heldout-NNNNN.bin/.idx (flat little-endian ids, uint16 while the
vocabulary fits, BOS before and EOS after each document; int64 document offsets) and meta.json
(token counts, tokenizer sha256). One task per corpus shard, at most --workers processes.
Rerunning resumes: finished shards are skipped and the files are the same as an uninterrupted
run's. A folder encoded with another tokenizer is refused unless --restart.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    corpus = p.add_argument("--corpus", type=path_arg, default="data/corpus", metavar="DIR",
                            help="corpus root holding <source>/ shards (default %(default)s)")
    add_renamed(p, corpus, "--data")
    p.add_argument("--model", type=path_arg, default="data/tokenizer/llama1.model",
                   help="SentencePiece model (default %(default)s)")
    tokens = p.add_argument("--tokens", type=path_arg, default="data/tokens", metavar="DIR",
                            help="token shard root (default %(default)s)")
    add_renamed(p, tokens, "--output")
    p.add_argument("--sources", nargs="+", help="only these sources (default: every source with corpus shards)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="worker processes (default: the number of cores, %(default)s)")
    p.add_argument("--heldout", type=float, default=0.005,
                   help="fraction of each source's documents held out for evaluation, chosen by a hash of the "
                   "document id; a source too small for it holds out one document (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out choice (default %(default)s)")
    p.add_argument("--restart", action="store_true", help="discard earlier token shards of these sources")
    p.add_argument("--document-timeout", type=float, default=300.0, metavar="SECONDS",
                   help="a worker that makes no progress on a batch of documents for this long is killed; a "
                   "document that stalls or kills a worker twice is left out and listed in meta.json "
                   "(default %(default)g)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> None:
    check_flags(args, {"workers": Positive, "seed": int})
    report = encode_corpus(
        Path(args.corpus), Path(args.model), Path(args.tokens), sources=args.sources, workers=args.workers,
        heldout_fraction=args.heldout, seed=args.seed, restart=args.restart,
        show_progress=False if args.no_progress else None, document_budget_s=args.document_timeout,
    )
    rate = report.text_bytes / report.seconds / 1e6 if report.seconds and report.tasks_run else 0
    print(f"encoded {report.tasks_run} corpus shard(s) in {report.seconds:.1f} s ({rate:.1f} MB/s) -> {args.tokens}")
    for name, meta in report.sources.items():
        train, heldout = meta["splits"]["train"], meta["splits"]["heldout"]
        print(f"  {name:14s} train {train['documents']:,} documents, {train['tokens']:,} tokens; "
              f"heldout {heldout['documents']:,} documents, {heldout['tokens']:,} tokens")
