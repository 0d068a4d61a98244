"""The run-folder protocol through the class, on real folders: the plan fixed at the first run,
completion markers, the lock, overlap refusal, and --restart deleting only what a run created."""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
from pathlib import Path

import pytest

from pipeline.common.errors import UserError
from pipeline.common.files import SEAL, file_sha256
from pipeline.engine import run_folder
from pipeline.engine.document import Document
from pipeline.engine.run_folder import Recorded, RunFolder, file_problem, read_marker
from pipeline.engine.shards import ShardWriter, build_schema
from tests.conftest import xattrs_kept

CREATED = ("_work", "manifest.json", "shard-*.arrow")


def folder_at(path: Path) -> RunFolder:
    return RunFolder(path, activity="run", noun="run folder", created=CREATED,
                     published=("shard-*.arrow", "manifest.json"), published_noun="shards of an earlier run")


def refuse(earlier: dict, changed: list[str]) -> UserError:
    return UserError(f"changed: {','.join(changed)}; the run there has {[earlier.get(k) for k in changed]}")


def plan_file(path: Path) -> dict:
    return json.loads((path / "_work" / "plan.json").read_text())


def test_the_first_run_writes_the_plan_with_what_it_derived_once(tmp_path: Path) -> None:
    calls = []

    def derive() -> dict:
        calls.append(1)
        return {"split": [3, 1, 2]}

    folder = folder_at(tmp_path / "out")
    plan = folder.fix_plan({"inputs": ["a", "b"], "tasks": 2}, ["inputs"], refuse, first_run=derive)
    assert plan == {"inputs": ["a", "b"], "tasks": 2, "split": [3, 1, 2]}
    assert plan_file(tmp_path / "out") == plan
    again = folder.fix_plan({"inputs": ["a", "b"], "tasks": 5}, ["inputs"], refuse, first_run=derive)
    # A rerun gets the stored plan: the uncompared task count and the derived split of the first run.
    assert again == {"inputs": ["a", "b"], "tasks": 2, "split": [3, 1, 2]}
    assert calls == [1]


def test_a_rerun_with_a_changed_setting_is_refused_and_the_plan_kept(tmp_path: Path) -> None:
    folder = folder_at(tmp_path / "out")
    folder.fix_plan({"inputs": ["a"], "seed": 0, "shard_mb": 256}, ["inputs", "seed", "shard_mb"], refuse)
    before = (tmp_path / "out" / "_work" / "plan.json").read_bytes()
    with pytest.raises(UserError, match=r"^changed: seed,shard_mb; the run there has \[0, 256\]$"):
        folder.fix_plan({"inputs": ["a"], "seed": 1, "shard_mb": 64}, ["inputs", "seed", "shard_mb"], refuse)
    assert (tmp_path / "out" / "_work" / "plan.json").read_bytes() == before


def test_a_key_an_older_plan_lacks_reads_as_its_default(tmp_path: Path) -> None:
    work = tmp_path / "out" / "_work"
    work.mkdir(parents=True)
    (work / "plan.json").write_text('{"inputs": ["a"]}')  # written before "keep" was recorded
    folder = folder_at(tmp_path / "out")
    wanted = {"inputs": ["a"], "keep": False}
    assert folder.fix_plan(wanted, ["inputs", "keep"], refuse, defaults={"keep": False}) == {"inputs": ["a"]}
    with pytest.raises(UserError, match="changed: keep"):
        folder.fix_plan({**wanted, "keep": True}, ["inputs", "keep"], refuse, defaults={"keep": False})


@pytest.mark.parametrize("published", ["shard-00000.arrow", "manifest.json"])
def test_output_without_a_plan_is_refused_and_left_alone(tmp_path: Path, published: str) -> None:
    out = tmp_path / "out"
    (out / "_work").mkdir(parents=True)  # a run folder whose plan.json was deleted
    (out / published).write_text("earlier")
    with pytest.raises(UserError) as refused:
        folder_at(out).fix_plan({"inputs": ["a"]}, ["inputs"], refuse)
    assert str(refused.value) == f"{out}: holds shards of an earlier run; pass --restart to replace them"
    assert (out / published).read_text() == "earlier" and sorted(p.name for p in out.iterdir()) == ["_work", published]


def user_folder(out: Path) -> dict[str, str]:
    """A folder of the user's (no `_work/`) holding files of a run's names and one of its own."""
    (out / "_work_notes").mkdir(parents=True)
    files = {"manifest.json": "my own manifest", "shard-2023.arrow": "my own table", "notes.txt": "mine",
             "_work_notes/todo.txt": "mine too"}
    for name, text in files.items():
        (out / name).write_text(text)
    return files


def left_in(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()}


@pytest.mark.parametrize("restart", [True, False])
def test_a_folder_without_work_is_no_run_folder_and_nothing_in_it_is_touched(tmp_path: Path, restart: bool) -> None:
    out = tmp_path / "home"
    files = user_folder(out)
    with pytest.raises(UserError) as refused:
        folder_at(out).fix_plan({"inputs": ["a"]}, ["inputs"], refuse, restart=restart)
    doing = "delete" if restart else "overwrite"
    assert str(refused.value) == (f"{out / 'manifest.json'}: not made by a run here (no _work/ beside it, so this is "
                                  f"no run folder); refusing to {doing} it; move it away or give another output folder")
    assert left_in(out) == files and not (out / "_work").exists()


def test_a_work_link_or_file_does_not_make_a_run_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "plan.json.123.tmp").write_text("the user's, in the folder the link points to")
    out.mkdir()
    (out / "_work").symlink_to(elsewhere)
    with pytest.raises(UserError, match=r"/out/_work: not made by a run here .*refusing to delete it"):
        folder_at(out).clear()
    assert (out / "_work").is_symlink() and left_in(elsewhere) == {
        "plan.json.123.tmp": "the user's, in the folder the link points to"}
    (out / "_work").unlink()
    (out / "_work").write_text("a file")
    with pytest.raises(UserError, match=r"/out/_work: not made by a run here .*refusing to overwrite it"):
        folder_at(out).fix_plan({"inputs": ["a"]}, ["inputs"], refuse)
    assert (out / "_work").read_text() == "a file"


def test_a_folder_holding_only_other_files_becomes_a_run_folder_and_keeps_them(tmp_path: Path) -> None:
    out = tmp_path / "home"
    (out / "mine").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    (out / "mine" / "manifest.json").write_text("below the top: no run file")
    folder = folder_at(out)
    folder.fix_plan({"inputs": ["a"]}, ["inputs"], refuse)
    (out / "shard-00000.arrow").write_bytes(b"shard")
    folder.fix_plan({"inputs": ["b"]}, ["inputs"], refuse, restart=True)
    left = left_in(out)
    assert json.loads(left.pop("_work/plan.json")) == {"inputs": ["b"]}
    assert left == {"notes.txt": "mine", "mine/manifest.json": "below the top: no run file"}


def test_restart_deletes_what_the_run_created_and_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "out"
    folder = folder_at(out)
    folder.fix_plan({"inputs": ["a"]}, ["inputs"], refuse)
    (out / "_work" / "pass0").mkdir()
    (out / "_work" / "pass0" / "task-00000.done.json").write_text("{}")
    (out / "shard-00000.arrow").write_bytes(b"shard")
    (out / "manifest.json").write_text("{}")
    # What the user keeps there: a file, a folder, and a folder a run-file name links to.
    (out / "notes.txt").write_text("mine")
    (out / "mine").mkdir()
    (out / "mine" / "shard-00001.arrow").write_bytes(b"not in the run folder's top level")
    kept_elsewhere = tmp_path / "elsewhere"
    kept_elsewhere.mkdir()
    (kept_elsewhere / "data.txt").write_text("keep")
    (out / "shard-00002.arrow").symlink_to(kept_elsewhere)

    plan = folder.fix_plan({"inputs": ["b"]}, ["inputs"], refuse, restart=True)

    assert plan == {"inputs": ["b"]} and plan_file(out) == plan
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert left == ["_work", "_work/plan.json", "mine", "mine/shard-00001.arrow", "notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"
    assert (kept_elsewhere / "data.txt").read_text() == "keep"  # the link went, not what it pointed at


def test_clear_of_a_folder_that_does_not_exist_does_nothing(tmp_path: Path) -> None:
    folder_at(tmp_path / "never").clear()
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("output", ["raw", "raw/c4", "raw/c4/out", "raw/c4/.."])
def test_an_output_overlapping_the_input_is_refused(tmp_path: Path, output: str) -> None:
    raw = tmp_path / "raw" / "c4"
    raw.mkdir(parents=True)
    folder = folder_at(tmp_path / output)
    with pytest.raises(UserError) as refused:
        folder.refuse_overlap(raw, "the input raw/c4", "pick another --output")
    assert str(refused.value) == f"{tmp_path / output}: the run folder overlaps the input raw/c4; pick another --output"


def test_an_output_beside_the_input_or_linked_to_it(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "c4"
    raw.mkdir(parents=True)
    folder_at(tmp_path / "raw" / "c4-out").refuse_overlap(raw, "the input", "advice")  # a sibling: fine
    (tmp_path / "link").symlink_to(raw)
    with pytest.raises(UserError, match="overlaps the input"):
        folder_at(tmp_path / "link" / "out").refuse_overlap(raw, "the input", "advice")


def _try_lock(folder: RunFolder, errors: multiprocessing.Queue) -> None:
    try:
        with folder.lock():
            errors.put("")
    except UserError as e:
        errors.put(str(e))


def test_a_second_process_cannot_take_the_lock_while_it_is_held(tmp_path: Path) -> None:
    folder = folder_at(tmp_path / "out")
    context = multiprocessing.get_context("fork")  # record locks are per process: the second is a child
    errors = context.Queue()
    with folder.lock():
        assert (tmp_path / "out" / ".lock").exists()
        child = context.Process(target=_try_lock, args=(folder, errors))
        child.start()
        message = errors.get(timeout=30)
        child.join()
    assert message.startswith(f"{tmp_path / 'out'}: another run is writing here (pid ")
    assert not (tmp_path / "out" / ".lock").exists()
    child = context.Process(target=_try_lock, args=(folder, errors))
    child.start()
    assert errors.get(timeout=30) == ""  # released with its holder's block
    child.join()


def test_markers_missing_finished_and_damaged(tmp_path: Path) -> None:
    work = tmp_path / "out" / "_work"
    work.mkdir(parents=True)
    marker = work / "task-00000.done.json"
    assert read_marker(marker, dict) is None
    marker.write_text('{"task": 0, "documents": 7}')
    assert read_marker(marker, lambda data: data["documents"]) == 7
    for damaged in [b'{"task": 0, "docu', b'{"task": 0}', b"[1, 2]", b"\xff\xfe"]:
        marker.write_bytes(damaged)
        assert read_marker(marker, lambda data: data["documents"]) is None
        assert not marker.exists()  # removed: its task runs again


def test_a_folder_whose_restart_would_keep_the_plan_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must include _work"):
        RunFolder(tmp_path, activity="run", noun="run folder", created=("manifest.json",), published=(),
                  published_noun="shards")


def test_a_large_shard_is_hashed_again_only_when_written_since_its_seal(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    if not xattrs_kept(tmp_path):
        pytest.skip(f"{tmp_path}: the file system keeps no extended attributes (no seals: size only)")
    monkeypatch.setattr(run_folder, "CHEAP_TO_HASH", 16)  # every file here counts as large
    schema = build_schema([])
    writer = ShardWriter(tmp_path, schema, "shard")
    writer.write_many([Document(f"d{i}", f"text {i} " * 50, "s") for i in range(40)])
    [shard] = writer.close()
    digest = hashlib.sha256(shard.read_bytes()).hexdigest()  # an oracle apart from the writer's hashing thread
    assert writer.info[0]["sha256"] == digest
    record = Recorded(shard, shard.stat().st_size, digest)
    assert file_problem(record) is None
    original = shard.read_bytes()
    # A byte changed in place, at once (in the clock tick of the write): the time moves all the same,
    # the seal no longer fits, and the file is hashed and found changed.
    with open(shard, "r+b") as f:
        f.seek(len(original) // 2)
        f.write(bytes([original[len(original) // 2] ^ 0xFF]))
    assert file_problem(record) == "not as written (its sha256 differs)"
    # The same bytes changed with the time put back (what no tool but a deliberate one does): the
    # seal is what is trusted, so the large file is not read, as a rerun of a big corpus needs.
    shard.write_bytes(original)
    sealed_time = json.loads(os.getxattr(shard, SEAL))[1]
    os.utime(shard, ns=(sealed_time, sealed_time))
    assert file_problem(record) is None
    changed = bytearray(original)
    changed[-100] ^= 0xFF
    shard.write_bytes(bytes(changed))
    os.utime(shard, ns=(sealed_time, sealed_time))
    assert file_problem(record) is None
    # A copy without the seal (cp without -a): size only, as before seals, never a full read.
    os.removexattr(shard, SEAL)
    assert file_problem(record) is None


def test_a_large_shard_holding_no_seal_is_trusted_by_its_recorded_mtime(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no seal is kept (a file system without extended attributes, a copy that dropped it),
    the writer's recorded mtime stands in for it: a write in place moves the time, and the file is
    hashed; found intact it is sealed again, so the next check trusts it unread."""
    monkeypatch.setattr(run_folder, "CHEAP_TO_HASH", 16)  # every file here counts as large
    writer = ShardWriter(tmp_path, build_schema([]), "shard")
    writer.write_many([Document(f"d{i}", f"text {i} " * 50, "s") for i in range(40)])
    [shard] = writer.close()
    info = writer.info[0]
    assert info["mtime_ns"] == shard.stat().st_mtime_ns
    record = Recorded(shard, info["bytes"], info["sha256"], info["mtime_ns"])
    with contextlib.suppress(OSError):
        os.removexattr(shard, SEAL)
    hashed = []
    monkeypatch.setattr(run_folder, "file_sha256", lambda path: hashed.append(path) or file_sha256(path))
    assert file_problem(record) is None and hashed == []  # as recorded: its size is the check
    original = shard.read_bytes()
    with open(shard, "r+b") as f:  # a byte changed in place, the size kept
        f.seek(len(original) // 2)
        f.write(bytes([original[len(original) // 2] ^ 0xFF]))
    assert file_problem(record) == "not as written (its sha256 differs)" and hashed == [shard]
    shard.write_bytes(original)  # the same bytes again, at another time: hashed, found intact
    os.utime(shard, ns=(info["mtime_ns"] - 10**10, info["mtime_ns"] - 10**10))
    assert file_problem(record) is None and hashed == [shard, shard]
    if xattrs_kept(tmp_path):  # and sealed again: the next check reads nothing
        assert file_problem(record) is None and hashed == [shard, shard]


def _s3_object(key: str, body: bytes | None) -> str:
    """The s3:// URL of `key` in bucket "inputs", holding `body` (None: deleted)."""
    import boto3

    s3 = boto3.client("s3")
    if "inputs" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket="inputs")
    if body is None:
        s3.delete_object(Bucket="inputs", Key=key)
    else:
        s3.put_object(Bucket="inputs", Key=key, Body=body)
    return f"s3://inputs/{key}"


def test_a_remote_input_is_fingerprinted_by_size_etag_and_upload_time(s3_endpoint: str) -> None:
    """A rewrite with other bytes changes the ETag, as a local file's mtime: read again. One that
    failed is read again once uploaded anew (same bytes: a later upload time), or when it could not
    be looked up when read (listed, then gone) and can be now."""
    pytest.importorskip("s3fs", reason="s3fs is not installed (the s3 extra)")
    one = b'{"text": "one"}\n'
    url = _s3_object("c4/a.json", one)
    first = run_folder.fingerprint(url)
    assert first is not None and first[:2] == [16, f'"{hashlib.md5(one).hexdigest()}"']  # S3's ETag of one part
    assert isinstance(first[2], int) and first[2] > 0
    assert run_folder.reread_reason(url, first, failed=False) is None
    assert run_folder.reread_reason(url, first, failed=True) is None  # untouched: it would fail the same way
    _s3_object("c4/a.json", b'{"text": "two, longer"}\n')
    assert run_folder.reread_reason(url, first, failed=False) == "changed since it was read (16 bytes then, 24 now)"
    # The same bytes uploaded again: only the upload time moves.
    touched = [*first[:2], first[2] - 1]
    assert run_folder.reread_reason(_s3_object("c4/a.json", one), touched, failed=False) is None
    assert run_folder.reread_reason(url, touched, failed=True) == (
        "failed when it was read and was touched since (replaced or its permissions changed)")
    gone = _s3_object("c4/gone.json", None)
    assert run_folder.fingerprint(gone) is None
    assert run_folder.reread_reason(gone, None, failed=True) is None  # still gone
    _s3_object("c4/gone.json", b"{}\n")
    assert run_folder.reread_reason(gone, None, failed=True) == "failed when it was read and was uploaded since"
    assert run_folder.reread_reason(gone, None, failed=False) is None  # read by an older herd: taken as read
