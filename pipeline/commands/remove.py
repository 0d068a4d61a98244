"""`pipeline remove SOURCE --corpus DIR --ids FILE [--tokens DIR]`: take documents out of a
finished corpus (a takedown) without rebuilding it.

Only the shards that hold a listed id are rewritten, the dropped/ shards of --keep-dropped
included (a takedown must leave no copy of the text behind). Every new shard is written under
a temporary name first; the plan of the whole removal (the new manifest entries and counts) is
written to `_work/remove.json`; then the shards are renamed into place and manifest.json
(sha256, bytes, documents), stats.json (`removed`, `documents_kept`), the run's task markers (so
that a rerun of `pipeline run` finds the run complete, not damaged) and the log
`removals.jsonl` (who, when, which ids, which shards) are brought up to date. A removal killed
midway is finished by the next `pipeline remove` or `pipeline run` of that corpus before anything
else, once its shards are found to be the ones it was written for (their size and sha256 are in
the journal); `pipeline stats` says when one is pending (`pending_removal_problem`). Everything a
removal rewrites is checked before any of it is: damaged bookkeeping is one line, nothing changed.

With --tokens, the token shards of the changed corpus shards are encoded again with the
tokenizer that wrote them (tokenizer/encode.py follows corpus shards rewritten in place), so
that the token folder is what a fresh `tokenizer encode` of the reduced corpus writes.

The corpus folder's lock (the one `pipeline run` holds) keeps a run and a removal apart.
Ids not found are listed; the exit status stays 0. A rebuild (`pipeline run --restart`, or a
task rerun because its input changed) brings removed documents back: remove them again with
the same ids file (removals.jsonl lists every id removed).
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import itertools
import json
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from pipeline.common.cli import path_arg
from pipeline.common.config import Positive, check_flags
from pipeline.common.errors import UserError
from pipeline.common.files import check_regular_file, file_sha256, read_json, with_path, write_json_atomic
from pipeline.common.warn import warn
from pipeline.corpus.folder import REMOVALS, corpus_folder
from pipeline.engine.run_driver import corpus_run_folder
from pipeline.engine.run_folder import NUMBERED, WORK, json_problem
from pipeline.engine.run_record import COMPLETE, published_sha256
from pipeline.engine.corpus_manifest import checked_manifest, is_count
from pipeline.engine.shards import record_batches, shard_problem, unreadable_shard, verified_shard_paths

JOURNAL = "remove.json"  # in _work/: a removal between renaming its shards and recording them
TEMPORARY = ".removing"  # suffix of a rewritten shard before it is renamed into place
# The shards a run writes, the only files a removal rewrites (and whose temporaries it deletes):
# never a user's shard-mine.arrow, nor a name a damaged manifest or journal gives (../x).
SHARD_FILE = re.compile(r"(dropped/)?shard-[0-9]{5,}\.arrow")
# An ids file is read a line at a time: a line longer than this is no id (a source's name and a
# place in it, a URL at most), and `--ids /dev/zero` must end at once, not fill the memory.
MAX_ID_BYTES = 64 << 10
# Each id costs about 150 bytes in memory (the list, the set Arrow matches against): 5 million
# stay under a GiB. A longer list is removed in parts.
MAX_IDS = 5_000_000


def read_ids(path: Path, max_ids: int = MAX_IDS) -> list[str]:
    """The ids of an ids file: one a line; blank lines and lines starting with `#` are skipped.
    A `#` later in a line is part of the id (ids may hold one: a URL's fragment). Read a line at a
    time (a pipe, `--ids <(grep ...)`, works): a line over MAX_ID_BYTES or more than `max_ids`
    ids is one line naming the file."""
    # A named FIFO would block the open until something writes to it, a device (/dev/zero) never
    # ends: refused unopened. The anonymous pipe of `--ids <(grep ...)` is read.
    check_regular_file(path, "an ids file", pipe_ok=True)
    ids: dict[str, None] = {}
    offset = 0  # of the line in the file: where a byte that is not UTF-8 is
    try:
        with open(path, "rb") as f:
            for number in itertools.count(1):
                line = f.readline(MAX_ID_BYTES + 1)
                if not line:
                    break
                if len(line) - line.endswith(b"\n") > MAX_ID_BYTES:
                    raise UserError(f"{path}: line {number:,} is longer than {MAX_ID_BYTES:,} bytes (no id is); "
                                    "one id a line")
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {offset + e.start})") from None
                offset += len(line)
                # A byte order mark (a Windows editor's) is no part of the first id; every line
                # break str knows ends an id, as when the file was read whole.
                for piece in (text.removeprefix("\ufeff") if number == 1 else text).splitlines():
                    doc_id = piece.strip()
                    if doc_id and not doc_id.startswith("#"):
                        ids[doc_id] = None
                if len(ids) > max_ids:
                    raise UserError(f"{path}: more than {max_ids:,} ids; split the list and remove each part in turn")
    except FileNotFoundError:
        raise UserError(f"{path}: ids file does not exist") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read the ids file ({e.strerror})") from None
    return list(ids)


@dataclass
class Rewrite:
    """One shard that holds listed ids: what it becomes."""

    file: str  # relative to the corpus folder: shard-00003.arrow, dropped/shard-00000.arrow
    old_sha256: str
    removed: list[str]  # the ids taken out of it
    entry: dict  # its new documents, bytes, sha256
    old_bytes: int | None = None  # None in a journal of an earlier herd


def find_listed(path: Path, listed: pa.Array) -> list[str]:
    """The listed ids that this shard holds (a pass over its id column only)."""
    found: list[str] = []
    for batch in record_batches(path):
        ids = batch.column("id")
        found += ids.filter(pc.is_in(ids, value_set=listed)).to_pylist()
    return found


def write_without(path: Path, listed: pa.Array) -> dict:
    """Write `path` minus the listed ids' rows as `path.removing`, batch by batch (the same
    schema, each batch filtered); its documents, bytes and sha256. A shard left with no
    documents stays, as one batch of no rows (`datasets` cannot load a stream of none): the
    shards keep their names, and so their token shards theirs."""
    tmp = path.with_name(path.name + TEMPORARY)
    documents = 0
    try:
        with pa.memory_map(str(path)) as source:
            reader = pa.ipc.open_stream(source)
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, reader.schema) as writer:
                for batch in reader:
                    kept = batch.filter(pc.invert(pc.is_in(batch.column("id"), value_set=listed)))
                    if kept.num_rows:
                        writer.write_batch(kept)
                        documents += kept.num_rows
                if not documents:
                    writer.write_batch(pa.RecordBatch.from_pylist([], schema=reader.schema))
    except pa.ArrowException as e:
        tmp.unlink(missing_ok=True)
        raise unreadable_shard(path, e) from None
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise with_path(e, tmp) from e
    return {"documents": documents, "bytes": tmp.stat().st_size, "sha256": file_sha256(tmp)}


def who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


# ---------------------------------------------------------------------------------------
# The bookkeeping a removal rewrites, checked whole before anything is: a damaged file found
# halfway would leave shards rewritten and their record not (one line, exit 2, nothing changed).

def _json_object(path: Path, advice: str = "") -> dict:
    """The JSON object in `path`; anything else is one line naming it (and `advice`)."""
    problem = json_problem(path)
    if problem:
        raise UserError(f"{path}: {problem}{advice}")
    return json.loads(path.read_bytes())


def check_bookkeeping(folder: Path) -> tuple[dict, dict]:
    """The corpus's manifest and stats, once every file a removal rewrites is found whole: the
    manifest (its shards and dropped shards named as a run names them, with their counts),
    stats.json (its counts), the run's task markers and complete.json."""
    # Each shard entry a file of the folder, once, with its counts and sha256; each dropped shard
    # dropped/<file name>, once.
    manifest = checked_manifest(folder / "manifest.json")
    stats_path = folder / "stats.json"
    rebuild = f"; rerun `pipeline run {folder.name}` to write it again from the run's records"
    stats = _json_object(stats_path, rebuild)
    if not is_count(stats.get("documents_kept")) or not is_count(stats.get("removed", 0)):
        raise UserError(f"{stats_path}: damaged (no documents_kept count){rebuild}")
    restart = (f"; `pipeline remove` records the rewritten shards in the run's records: rebuild with "
               f"`pipeline run {folder.name} --restart`, then remove again")
    for marker in sorted((folder / WORK).glob("pass*/task-*.done.json")):
        record = _json_object(marker, restart)
        if not all(isinstance(parts, list) and all(isinstance(p, dict) for p in parts)
                   for parts in (record.get("parts", []), record.get("dropped_parts", []))):
            raise UserError(f"{marker}: damaged (no lists of parts){restart}")
    if (folder / WORK / COMPLETE).exists():
        _json_object(folder / WORK / COMPLETE, restart)
    return manifest, stats


def _read_journal(path: Path) -> tuple[dict, list[Rewrite]]:
    """The journal of a removal killed midway and its rewrites, checked whole: a damaged one is
    one line (its shards may be half renamed: `pipeline verify` tells)."""
    problem = json_problem(path)
    journal = None if problem else json.loads(path.read_bytes())
    problem = problem or _journal_problem(journal)
    if problem:
        raise UserError(f"{path}: damaged removal journal ({problem}); the removal it records cannot be finished: "
                        "check the corpus with `pipeline verify`, then delete it and run `pipeline remove` again")
    return journal, [Rewrite(**r) for r in journal["rewrites"]]


def _journal_problem(journal: dict) -> str | None:
    """What a journal (a JSON object) lacks, or None."""
    rewrites, log = journal.get("rewrites"), journal.get("log")
    if not (isinstance(rewrites, list) and all(_is_rewrite(r) for r in rewrites)):
        return "rewrites is not a list of shard rewrites"
    if not (is_count(journal.get("documents_kept")) and is_count(journal.get("removed"))):
        return "no documents_kept and removed counts"
    if not (isinstance(log, dict) and isinstance(log.get("shards"), dict)
            and all(isinstance(log.get(key), list) for key in ("removed", "not_found"))):
        return "no log of the removal"
    return None


def _is_rewrite(record: object) -> bool:
    if not isinstance(record, dict) or set(record) - {"file", "old_sha256", "removed", "entry", "old_bytes"}:
        return False
    entry = record.get("entry")
    return (isinstance(record.get("file"), str) and bool(SHARD_FILE.fullmatch(record["file"]))
            and isinstance(record.get("old_sha256"), str) and isinstance(record.get("removed"), list)
            and (record.get("old_bytes") is None or is_count(record["old_bytes"]))
            and isinstance(entry, dict) and is_count(entry.get("documents")) and is_count(entry.get("bytes"))
            and isinstance(entry.get("sha256"), str))


def _holds(path: Path, size: int | None, sha256: str) -> bool:
    """Whether `path` is the file of that size (None: not known) and sha256."""
    return shard_problem(path, {"sha256": sha256} if size is None else {"bytes": size, "sha256": sha256}) is None


def _pending_renames(folder: Path, journal: Path, rewrites: list[Rewrite]) -> list[Rewrite]:
    """The rewrites still under their temporary names. Each shard must be the one the journal
    rewrote, its rewrite beside it, or that rewrite: a shard rebuilt or replaced since (an
    earlier herd's `pipeline run` ran the task again) is no shard of this journal, and recording
    its rewrite would put a stale manifest entry, and a removal that did not happen, on it."""
    pending: list[Rewrite] = []
    for rewrite in rewrites:
        shard, tmp = folder / rewrite.file, folder / (rewrite.file + TEMPORARY)
        new = (rewrite.entry["bytes"], rewrite.entry["sha256"])
        if tmp.exists() and _holds(tmp, *new) and _holds(shard, rewrite.old_bytes, rewrite.old_sha256):
            pending.append(rewrite)
        elif tmp.exists() or not _holds(shard, *new):
            raise UserError(f"{journal}: a `pipeline remove` killed midway, written for other shards ({rewrite.file} "
                            "is neither the shard it rewrote nor what it rewrote it to: rebuilt or replaced since), "
                            "cannot be finished; delete it, then run `pipeline remove` again with the ids it lists "
                            "under log.removed")
    return pending


def pending_removal_problem(folder: Path) -> str | None:
    """None, or the line saying that a `pipeline remove` of the corpus in `folder` was killed
    midway: its shards, manifest, stats and log may disagree until it is finished (by the next
    `pipeline remove` or `pipeline run`). For the commands that only read a corpus."""
    path = folder / WORK / JOURNAL
    if not path.exists():
        return None
    try:
        _, rewrites = _read_journal(path)
    except UserError as e:
        return str(e)
    return (f"{path}: a `pipeline remove` was killed midway ({sum(len(r.removed) for r in rewrites):,} document(s) "
            f"of {len(rewrites):,} shard(s)) and is not recorded everywhere yet; rerun `pipeline remove` (any ids "
            "file) or `pipeline run` to finish it")


# ---------------------------------------------------------------------------------------
# A removal: planned (shards written under temporary names, the journal), then finished

def plan_removal(folder: Path, ids: list[str], ids_file: Path) -> dict:
    """Write the rewritten shards under temporary names and return the journal that records
    them: the new manifest entries, the counts stats.json will hold, and the log line."""
    listed = pa.array(ids, pa.string())
    manifest, stats = check_bookkeeping(folder)
    kept_paths = verified_shard_paths(folder)  # a damaged shard is refused before anything is written
    recorded = {entry["file"]: entry["sha256"] for entry in manifest["shards"] if "sha256" in entry}
    paths = [(p.name, p) for p in kept_paths] + [(name, folder / name) for name in manifest.get("dropped_shards", [])]
    rewrites: list[Rewrite] = []
    for name, path in tqdm(paths, unit=" shards", desc="looking for the ids", disable=None, mininterval=1.0):
        found = find_listed(path, listed)
        if found:  # a kept shard's sha256 was just checked against the manifest's; a dropped one has none there
            sha256 = recorded.get(name) or file_sha256(path)
            rewrites.append(Rewrite(name, sha256, found, write_without(path, listed), path.stat().st_size))
    removed_kept = sum(len(r.removed) for r in rewrites if "/" not in r.file)
    found_ids = {i for r in rewrites for i in r.removed}
    return {
        "rewrites": [vars(r) for r in rewrites],
        "documents_kept": stats["documents_kept"] - removed_kept,
        "removed": stats.get("removed", 0) + removed_kept,
        "log": {"at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "by": who(),
                "ids_file": str(ids_file), "removed": [i for i in ids if i in found_ids],
                "not_found": [i for i in ids if i not in found_ids],
                "shards": {r.file: len(r.removed) for r in rewrites}},
    }


def finish_removal(folder: Path, checked: bool = False) -> dict | None:
    """Carry out the journal in `_work/` (after a kill, again: every step is idempotent) and
    delete it; the journal, or None when there was none. Everything it rewrites is checked
    first, and, unless `checked` (this process planned it, under the lock), that the shards are
    the ones it was written for. Call with the corpus's lock held."""
    path = folder / WORK / JOURNAL
    if not path.exists():
        return None
    journal, rewrites = _read_journal(path)
    manifest, stats = check_bookkeeping(folder)
    pending = rewrites if checked else _pending_renames(folder, path, rewrites)
    for rewrite in pending:
        os.replace(folder / (rewrite.file + TEMPORARY), folder / rewrite.file)
    new = {r.file: r.entry for r in rewrites}
    manifest["shards"] = [dict(s, **new.get(s["file"], {})) for s in manifest["shards"]]
    manifest["documents"] = sum(s["documents"] for s in manifest["shards"])
    manifest["bytes"] = sum(s["bytes"] for s in manifest["shards"])
    write_json_atomic(folder / "manifest.json", manifest)
    stats.update(documents_kept=journal["documents_kept"], removed=journal["removed"])
    write_json_atomic(folder / "stats.json", stats)
    _update_task_markers(folder, rewrites, journal["documents_kept"])
    log = folder / REMOVALS
    line = json.dumps(journal["log"], ensure_ascii=False, sort_keys=True)
    if not log.exists() or line not in log.read_text(encoding="utf-8").splitlines():
        with open(log, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    path.unlink()
    return journal


def _update_task_markers(folder: Path, rewrites: list[Rewrite], documents_kept: int) -> None:
    """Record the rewritten shards in the run's task markers, found by the sha256 they recorded
    for the part that became the shard: a rerun of `pipeline run` checks a finished run's shards
    against its markers, and must find it complete, not damaged (which would run the task again
    and bring the removed documents back)."""
    by_sha = {r.old_sha256: r.entry for r in rewrites}
    work = folder / WORK
    for marker in sorted(work.glob("pass*/task-*.done.json")):
        record = read_json(marker)
        changed = False
        for key in ("parts", "dropped_parts"):
            for part in record.get(key, []):
                if part.get("sha256") in by_sha:
                    part.update(by_sha[part["sha256"]])
                    changed = True
        if changed:
            write_json_atomic(marker, record)
    complete = work / COMPLETE
    if complete.exists():
        recorded = read_json(complete)
        if "written" in recorded:  # the manifest and stats as rewritten here are the run's now
            recorded["written"] = published_sha256(folder)
        write_json_atomic(complete, dict(recorded, documents_kept=documents_kept))


def remove_documents(source: str, corpus: Path, ids_file: Path) -> tuple[Path, dict | None, dict | None]:
    """Take the ids of `ids_file` out of `source`'s corpus: its folder, the removal killed midway
    that was finished first (or None), and this removal's record (None when the finished one
    removed every listed id: rerunning the killed command finishes it and logs nothing more, or the
    ids file lists none: nothing is removed, logged or written)."""
    ids = read_ids(ids_file)
    folder = corpus_folder(corpus, source)
    with corpus_run_folder(folder).lock():
        finished = finish_removal(folder)
        # Written by a removal killed before its journal: never renamed into place. A run's
        # shard names only: another `*.removing` in the folder is not this command's to delete.
        for pattern in (f"shard-{NUMBERED}.arrow{TEMPORARY}", f"dropped/shard-{NUMBERED}.arrow{TEMPORARY}"):
            for stray in folder.glob(pattern):
                stray.unlink()
        done = set(finished["log"]["removed"]) if finished else set()
        if not ids or (finished and not [i for i in ids if i not in done]):
            # No ids (an empty file, a `<(grep ...)` that matched none): a removal of nothing
            # would still log a record in removals.jsonl and rewrite the manifest and stats.
            return folder, finished, None
        ids = [i for i in ids if i not in done]
        journal = plan_removal(folder, ids, ids_file)
        write_json_atomic(folder / WORK / JOURNAL, journal)
        finish_removal(folder, checked=True)
    return folder, finished, journal


def removal_summary(source: str, folder: Path, journal: dict, finished: bool = False) -> list[str]:
    """What a removal did, for the terminal: the documents removed from kept and dropped shards,
    the documents left, and the ids not found."""
    log = journal["log"]
    in_kept = sum(n for name, n in log["shards"].items() if "/" not in name)
    in_dropped = sum(n for name, n in log["shards"].items() if "/" in name)
    lines = [f"{source}: {'finished a `pipeline remove` killed midway: ' if finished else ''}removed {in_kept:,} "
             f"document(s) from {sum('/' not in n for n in log['shards'])} shard(s) of {folder}"
             + (f", and {in_dropped:,} from its dropped/ shards" if in_dropped else "")
             + f"; {journal['documents_kept']:,} documents left (logged in {folder / REMOVALS})"]
    if log["not_found"]:
        lines.append(f"{len(log['not_found']):,} listed id(s) not found in the corpus:")
        lines += [f"  {doc_id}" for doc_id in log["not_found"]]
    return lines


def token_root(tokens: Path, source: str, corpus_dir: Path) -> Path:
    """The token root that `tokenizer encode` wrote `source`'s shards under: --tokens names the
    root or the source's folder in it. Checked before the corpus changes."""
    if corpus_dir.name != source:
        raise UserError(f"{corpus_dir}: --tokens needs the corpus in a folder named {source} (as `tokenizer encode` "
                        "reads it)")
    for folder in (tokens / source, tokens):
        meta = folder / "meta.json"
        if meta.is_file():
            found = read_json(meta).get("source")
            if found != source or folder.name != source:
                raise UserError(f"{folder}: token shards of {found!r} in a folder named {folder.name!r}, "
                                f"not of {source!r}")
            return folder.parent
    raise UserError(f"{tokens}: no token shards of {source} here (no meta.json in {tokens / source} or {tokens})")


def reencode(source: str, corpus_dir: Path, root: Path, model: Path | None, workers: int,
             show_progress: bool | None) -> dict:
    """Bring `source`'s token shards under `root` up to date with its corpus, with the tokenizer
    and held-out rule that wrote them; the new meta.json."""
    # Here, not at the top: `pipeline run` and `pipeline verify` import this module for its journal
    # (finish_removal, pending_removal_problem), and encode's imports would cost them for nothing.
    from tokenizer.encode import encode_corpus

    meta = read_json(root / source / "meta.json")
    plan = read_json(root / source / "_work" / "plan.json")
    report = encode_corpus(corpus_dir.parent, model or Path(meta.get("tokenizer", "")), root, sources=[source],
                           workers=workers, heldout_fraction=plan["heldout_fraction"], seed=plan["seed"],
                           show_progress=show_progress, follow_corpus=True)
    print(f"{source}: token shards of {report.tasks_run} corpus shard(s) encoded again -> {root / source}")
    return report.sources[source]


DESCRIPTION = """\
Take the documents listed in --ids (one id a line; blank lines and lines starting with # are
skipped) out of a finished corpus, rewriting only the shards that hold them (dropped/ shards
included): manifest.json, stats.json (`removed`) and the log removals.jsonl (who, when, which
ids, which shards) are updated, and `pipeline verify` passes after. With --tokens, the token
shards of the changed corpus shards are encoded again with the same tokenizer, equal to a fresh
`tokenizer encode` of the reduced corpus. Ids not found are listed (exit status 0). An ids file
that lists no id (empty, or only blank and # lines) removes nothing and writes nothing: it says
so (exit status 0), after finishing a removal killed midway if there is one.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="the source the documents are of (c4, wikipedia, ...)")
    p.add_argument("--corpus", type=path_arg, default="data/corpus", metavar="DIR",
                   help="corpus root or the source's folder in it (default %(default)s)")
    p.add_argument("--ids", type=path_arg, required=True, metavar="FILE", help="the ids to remove, one a line")
    p.add_argument("--tokens", type=path_arg, metavar="DIR",
                   help="also re-encode the source's token shards: the token root "
                   "(data/tokens) or the source's folder in it")
    p.add_argument("--model", type=path_arg, metavar="FILE",
                   help="the tokenizer, where it is not at the path meta.json names "
                   "(its sha256 must be the one that encoded the shards)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="encoding processes for --tokens (default: the number of cores, %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar while encoding")


def run(args: argparse.Namespace) -> None:
    check_flags(args, {"workers": Positive})  # before the removal, not when re-encoding after it
    tokens = token_root(Path(args.tokens), args.source, corpus_folder(Path(args.corpus), args.source)) \
        if args.tokens else None
    folder, finished, journal = remove_documents(args.source, Path(args.corpus), Path(args.ids))
    if journal is None and finished is None:
        print(f"{args.source}: {args.ids} lists no id; nothing to remove (nothing written)")
        return
    for line in removal_summary(args.source, folder, finished, finished=True) if finished else []:
        print(line)
    for line in removal_summary(args.source, folder, journal) if journal else []:
        print(line)
    if tokens is not None:
        reencode(args.source, folder, tokens, Path(args.model) if args.model else None, args.workers,
                 False if args.no_progress else None)
    elif any(j and any(n for name, n in j["log"]["shards"].items() if "/" not in name) for j in (finished, journal)):
        stale = stale_tokens(args.source, Path(args.corpus))
        if stale is not None:
            warn(f"warning: {stale}: its token shards were encoded before this removal and still hold the removed "
                 f"documents; rerun with --tokens {stale.parent}, or `tokenizer encode`, before training on them")


def stale_tokens(source: str, corpus: Path) -> Path | None:
    """The source's token folder beside the corpus root (`tokenizer encode`'s default layout:
    data/corpus and data/tokens), if there is one, for the warning that a removal without
    --tokens leaves it stale (`pipeline mix` and a new `train` would count and draw them)."""
    folder = corpus.parent / "tokens" / source
    return folder if (folder / "meta.json").is_file() else None
