"""`pipeline run c4 --input s3://... --corpus s3://...` against an S3-compatible server on
127.0.0.1 (moto) writes the same shards as the same run on local folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli import main
from sources.samples.c4 import write as write_c4_sample


def _upload(folder: Path, bucket: str, prefix: str) -> None:
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(folder)}", Body=path.read_bytes())


def _objects(bucket: str, prefix: str) -> dict[str, bytes]:
    import boto3

    s3 = boto3.client("s3")
    found = {}
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        found[item["Key"][len(prefix) + 1 :]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found


@pytest.mark.slow
def test_c4_from_and_to_s3_gives_the_shards_of_local_folders(s3_endpoint: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("s3fs", reason="s3fs is not installed (the s3 extra)")
    monkeypatch.setenv("HERD_STAGING_DIR", str(tmp_path / "staging"))
    write_c4_sample(tmp_path / "raw" / "c4", seed=0)
    _upload(tmp_path / "raw" / "c4", "raw", "c4")
    _upload(tmp_path / "nothing", "corpus", "")  # the output bucket, empty
    main(["run", "c4", "--input", str(tmp_path / "raw" / "c4"), "--corpus", str(tmp_path / "local"),
          "--workers", "2", "--no-progress"])
    main(["run", "c4", "--input", "s3://raw/c4", "--corpus", "s3://corpus/v1", "--workers", "2", "--no-progress"])
    local = tmp_path / "local" / "c4"
    published = _objects("corpus", "v1/c4")
    manifest = json.loads(published["manifest.json"])
    assert manifest == json.loads((local / "manifest.json").read_text())
    assert len(manifest["shards"]) >= 2 and manifest["documents"] > 0
    assert sorted(published) == sorted(["manifest.json", "stats.json", "timings.json",
                                        *(s["file"] for s in manifest["shards"])])
    for shard in manifest["shards"]:
        assert published[shard["file"]] == (local / shard["file"]).read_bytes()
    stats = json.loads(published["stats.json"])
    assert stats["stages"] == json.loads((local / "stats.json").read_text())["stages"]
    # A rerun finds the staged run complete and the same manifest published: nothing changes.
    main(["run", "c4", "--input", "s3://raw/c4", "--corpus", "s3://corpus/v1", "--no-progress"])
    assert {k: v for k, v in _objects("corpus", "v1/c4").items() if k != "timings.json"} == \
        {k: v for k, v in published.items() if k != "timings.json"}


# The entry of a shard holding b"new", as the engine writes it.
NEW_SHARD = {"file": "shard-00000.arrow", "documents": 1, "bytes": 3,
             "sha256": "11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437"}


def test_publish_replaces_an_earlier_runs_shards_and_writes_the_manifest_last(tmp_path: Path) -> None:
    import fsspec

    from pipeline.commands.remote_output import publish, staging_root

    fs = fsspec.filesystem("memory")
    earlier = {"shards": [{**NEW_SHARD, "bytes": 3}, {**NEW_SHARD, "file": "shard-00001.arrow", "bytes": 5}]}
    fs.pipe({"/old/c4/shard-00000.arrow": b"old", "/old/c4/shard-00001.arrow": b"stale", "/old/c4/other": b"kept",
             "/old/c4/manifest.json": json.dumps(earlier).encode()})
    local = tmp_path / "c4"
    local.mkdir()
    (local / "shard-00000.arrow").write_bytes(b"new")
    (local / "stats.json").write_text("{}")
    (local / "manifest.json").write_text(json.dumps({"shards": [NEW_SHARD]}))
    (local / "_work").mkdir()  # never published
    order: list[str] = []
    real_put = fs.put_file
    fs.put_file = lambda src, dst, **kw: (order.append(dst.rsplit("/", 1)[-1]), real_put(src, dst, **kw))
    try:
        published = publish(local, "memory://old/c4")
    finally:
        del fs.put_file
    assert published == ["shard-00000.arrow", "stats.json", "manifest.json"]
    assert order == published  # the manifest last
    assert sorted(fs.find("/old/c4")) == ["/old/c4/manifest.json", "/old/c4/other", "/old/c4/shard-00000.arrow",
                                          "/old/c4/stats.json"]
    assert fs.cat("/old/c4/shard-00000.arrow") == b"new"
    assert publish(local, "memory://old/c4") == []  # up to date: nothing uploaded again
    assert staging_root("s3://bucket/corpus v1/") == Path("data/staging/s3/bucket/corpus_v1")


@pytest.mark.parametrize("output", ["s3://raw", "s3://raw/", "S3://raw", "s3://raw/c4/inside"])
def test_an_s3_output_whose_run_folder_is_the_input_or_holds_it_is_refused(
        s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        output: str) -> None:
    """As for local folders: the run folder OUTPUT/c4 may not be the input, hold it or sit in it."""
    pytest.importorskip("s3fs", reason="s3fs is not installed (the s3 extra)")
    monkeypatch.setenv("HERD_STAGING_DIR", str(tmp_path / "staging"))
    write_c4_sample(tmp_path / "raw" / "c4", seed=0)
    _upload(tmp_path / "raw" / "c4", "raw", "c4")
    before = _objects("raw", "c4")
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "c4", "--input", "s3://raw/c4", "--corpus", output, "--no-progress"])
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("pipeline: error: ") and "overlaps the input s3://raw/c4" in line
    assert _objects("raw", "c4") == before and not (tmp_path / "staging").exists()


def test_publish_refuses_a_manifest_naming_a_dropped_shard_outside_the_folder(tmp_path: Path) -> None:
    import fsspec

    from pipeline.commands.remote_output import publish
    from pipeline.common.errors import UserError

    fs = fsspec.filesystem("memory")
    (tmp_path / "secret.arrow").write_bytes(b"not the corpus's")
    local = tmp_path / "c4"
    local.mkdir()
    (local / "shard-00000.arrow").write_bytes(b"new")
    (local / "manifest.json").write_text(json.dumps({"shards": [NEW_SHARD],
                                                     "dropped_shards": ["dropped/../../secret.arrow"]}))
    with pytest.raises(UserError) as refused:
        publish(local, "memory://refused/c4")
    assert str(refused.value) == (f"{local / 'manifest.json'}: damaged corpus manifest (dropped shard "
                                  "'dropped/../../secret.arrow' is not dropped/<file name>)")
    assert not fs.exists("/refused")


def _put(bucket: str, key: str, body: bytes) -> None:
    import boto3

    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def _run_c4_to_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, corpus: str, *options: str) -> None:
    """`pipeline run c4` from s3://raw/c4 (the sample, uploaded once) to `corpus`."""
    import boto3

    pytest.importorskip("s3fs", reason="s3fs is not installed (the s3 extra)")
    monkeypatch.setenv("HERD_STAGING_DIR", str(tmp_path / "staging"))
    if not (tmp_path / "raw" / "c4").exists():
        write_c4_sample(tmp_path / "raw" / "c4", seed=0)
        _upload(tmp_path / "raw" / "c4", "raw", "c4")
        boto3.client("s3").create_bucket(Bucket="corpus")
    main(["run", "c4", "--input", "s3://raw/c4", "--corpus", corpus, "--no-progress", *options])


USERS = {"shard-00042.arrow": b"a user's", "shard-old.arrow": b"a user's too", "dropped/shard-notes.arrow": b"notes"}


def test_publishing_deletes_only_the_shards_an_earlier_publish_recorded_and_names_the_others(
        s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Objects named like shards that no manifest.json published there listed are a user's: left,
    and named in one warning; the shards of an earlier publish that the new one drops are deleted."""
    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v2", "--workers", "2")
    first = _objects("corpus", "v2/c4")
    earlier = json.loads(first["manifest.json"])
    assert len(earlier["shards"]) >= 2
    for name, body in USERS.items():
        _put("corpus", f"v2/c4/{name}", body)
    capsys.readouterr()
    # A restart in one task publishes one shard: the earlier ones it no longer lists go.
    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v2", "--restart", "--workers", "1")
    published = _objects("corpus", "v2/c4")
    manifest = json.loads(published["manifest.json"])
    assert [s["file"] for s in manifest["shards"]] == ["shard-00000.arrow"]
    assert sorted(published) == sorted(["manifest.json", "stats.json", "timings.json", "shard-00000.arrow", *USERS])
    assert {name: published[name] for name in USERS} == USERS
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: s3://corpus/v2/c4")]
    assert warnings == ["warning: s3://corpus/v2/c4: left 3 object(s) named like shards that no earlier publish there "
                        "recorded: dropped/shard-notes.arrow, shard-00042.arrow, shard-old.arrow; the new "
                        "manifest.json does not list them"]


def test_a_users_object_under_a_new_shards_name_is_never_overwritten(
        s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A shard name this run would upload, held by an object no publish there recorded (a user's
    copy): refused before any upload. One this staged run put there itself (a publish killed
    before its manifest.json) is its own to overwrite."""
    import boto3

    client = boto3.client("s3")
    if "corpus" not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket="corpus")
    _put("corpus", "v5/c4/shard-00000.arrow", b"a user's own file")
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:
        _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v5", "--workers", "1")
    assert refused.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "pipeline: error: s3://corpus/v5/c4: holds shard-00000.arrow, which no publish of a run there wrote; "
        "publishing would overwrite it: move it away, or publish to another --corpus (nothing was uploaded)")
    assert _objects("corpus", "v5/c4") == {"shard-00000.arrow": b"a user's own file"}
    client.delete_object(Bucket="corpus", Key="v5/c4/shard-00000.arrow")
    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v5", "--workers", "1")
    published = _objects("corpus", "v5/c4")
    # As a publish killed after its shards and before its manifest leaves it: the rerun finishes it.
    client.delete_object(Bucket="corpus", Key="v5/c4/manifest.json")
    _put("corpus", "v5/c4/shard-00000.arrow", b"cut")
    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v5", "--workers", "1")
    assert _objects("corpus", "v5/c4") == published


def test_a_rerun_uploads_again_the_published_shards_deleted_or_changed_in_size(
        s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The same manifest published is not enough to call the corpus published: a shard deleted,
    or overwritten by 7 bytes, is named and uploaded again from the staged run."""
    import boto3

    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v3", "--workers", "2")
    published = _objects("corpus", "v3/c4")
    assert {"shard-00000.arrow", "shard-00001.arrow"} <= set(published)
    boto3.client("s3").delete_object(Bucket="corpus", Key="v3/c4/shard-00000.arrow")
    _put("corpus", "v3/c4/shard-00001.arrow", b"garbage")
    capsys.readouterr()
    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v3", "--workers", "2")
    assert _objects("corpus", "v3/c4") == published
    assert [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: s3://")] == [
        "warning: s3://corpus/v3/c4: 2 published file(s) not as uploaded: shard-00000.arrow (missing), "
        f"shard-00001.arrow (7 bytes, not {len(published['shard-00001.arrow']):,}); uploading them again"]
    # Intact, a rerun uploads nothing and says nothing.
    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v3", "--workers", "2")
    assert _objects("corpus", "v3/c4") == published
    assert "warning: s3://" not in capsys.readouterr().err


def test_an_s3_input_replaced_or_fixed_after_a_run_is_read_again_and_an_unchanged_one_is_not(
        s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """As for local inputs: an object replaced since its task read it, or one that failed (the
    sample's cut .gz) uploaded anew, is named and read again; an unchanged rerun reads nothing."""
    import gzip

    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v4", "--workers", "3")
    first = json.loads(_objects("corpus", "v4/c4")["manifest.json"])
    raw = tmp_path / "raw" / "c4"
    failed = "c4-train.00002-of-00003.json.gz"
    assert json.loads(_objects("corpus", "v4/c4")["stats.json"])["files"]["failed"][0]["path"] == f"s3://raw/c4/{failed}"
    capsys.readouterr()
    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v4", "--workers", "3")
    assert "(already complete)" in capsys.readouterr().out
    replaced = "c4-train.00000-of-00003.json.gz"
    record = {"text": "A new first document. It has three sentences now. And it is long enough to keep.",
              "url": "https://example.com/new", "timestamp": "2019-04-25T12:00:00Z"}
    _put("raw", f"c4/{replaced}", gzip.compress((json.dumps(record) + "\n").encode()))
    _put("raw", f"c4/{failed}", gzip.compress(gzip.decompress((raw / replaced).read_bytes())))
    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v4", "--workers", "3")
    output = capsys.readouterr()
    assert "(already complete)" not in output.out
    size_then = (raw / replaced).stat().st_size
    assert [line for line in output.err.splitlines() if line.startswith("warning: s3://raw/")] == [
        f"warning: s3://raw/c4/{replaced}: changed since it was read ({size_then:,} bytes then, "
        f"{len(_raw_object(replaced)):,} now); reading it again",
        f"warning: s3://raw/c4/{failed}: changed since it was read ({(raw / failed).stat().st_size:,} bytes then, "
        f"{len(_raw_object(failed)):,} now); reading it again"]
    published = _objects("corpus", "v4/c4")
    assert json.loads(published["manifest.json"]) != first
    assert json.loads(published["stats.json"])["files"]["failed"] == []
    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v4", "--workers", "3")
    output = capsys.readouterr()
    assert "(already complete)" in output.out and "reading it again" not in output.err


def _raw_object(name: str) -> bytes:
    import boto3

    return boto3.client("s3").get_object(Bucket="raw", Key=f"c4/{name}")["Body"].read()


def _etag(bucket: str, key: str) -> str:
    import boto3

    return boto3.client("s3").head_object(Bucket=bucket, Key=key)["ETag"]


def test_a_rerun_uploads_again_a_published_shard_overwritten_with_other_bytes_of_its_size(
        s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Its size is as the manifest lists: only the ETag its upload recorded tells the bytes changed."""
    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v6", "--workers", "2")
    published = _objects("corpus", "v6/c4")
    uploaded = _etag("corpus", "v6/c4/shard-00001.arrow")
    _put("corpus", "v6/c4/shard-00001.arrow", bytes(reversed(published["shard-00001.arrow"])))
    overwritten = _etag("corpus", "v6/c4/shard-00001.arrow")
    assert overwritten != uploaded
    capsys.readouterr()
    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v6", "--workers", "2")
    assert _objects("corpus", "v6/c4") == published
    assert _etag("corpus", "v6/c4/shard-00001.arrow") == uploaded
    assert [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: s3://")] == [
        f"warning: s3://corpus/v6/c4: 1 published file(s) not as uploaded: shard-00001.arrow (ETag {overwritten!r} "
        f"where its upload recorded {uploaded!r}); uploading them again"]
    # Uploaded again, its new ETag is recorded: the next rerun uploads nothing and says nothing.
    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v6", "--workers", "2")
    assert _objects("corpus", "v6/c4") == published
    assert "warning: s3://" not in capsys.readouterr().err


def test_a_dropped_shard_or_manifest_written_over_is_published_again_and_a_damaged_staged_copy_refused(
        s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Same-size bytes over a dropped shard are found by its ETag, and over manifest.json by its
    bytes (read whole on every publish). A staged copy that is not as the run recorded it must not
    replace a damaged object: one line, nothing uploaded."""
    import os

    from tests.conftest import xattrs_kept

    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v7", "--workers", "2", "--keep-dropped")
    published = _objects("corpus", "v7/c4")
    dropped = sorted(name for name in published if name.startswith("dropped/"))
    assert dropped
    _put("corpus", f"v7/c4/{dropped[0]}", bytes(reversed(published[dropped[0]])))
    overwritten, uploaded = _etag("corpus", f"v7/c4/{dropped[0]}"), _etag_of(published[dropped[0]])
    capsys.readouterr()
    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v7", "--workers", "2", "--keep-dropped")
    assert _objects("corpus", "v7/c4") == published
    assert [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: s3://")] == [
        f"warning: s3://corpus/v7/c4: 1 published file(s) not as uploaded: {dropped[0]} (ETag {overwritten!r} "
        f"where its upload recorded {uploaded!r}); uploading them again"]
    _put("corpus", "v7/c4/manifest.json", published["manifest.json"].replace(b'"c4"', b'"c5"'))
    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v7", "--workers", "2", "--keep-dropped")
    assert _objects("corpus", "v7/c4") == published
    # A staged shard whose bytes changed under an intact seal (bit rot: same size, same time): the
    # run trusts it, and only reading it whole tells. Without extended attributes the run hashes it.
    staged = tmp_path / "staging" / "s3" / "corpus" / "v7" / "c4" / "shard-00000.arrow"
    if not xattrs_kept(staged.parent):
        return
    before = staged.stat()
    staged.write_bytes(bytes(reversed(staged.read_bytes())))
    os.utime(staged, ns=(before.st_atime_ns, before.st_mtime_ns))
    _put("corpus", "v7/c4/shard-00000.arrow", b"x" * len(published["shard-00000.arrow"]))
    overwritten = _etag("corpus", "v7/c4/shard-00000.arrow")
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:
        _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v7", "--workers", "2", "--keep-dropped")
    assert refused.value.code == 2
    sha256 = json.loads(published["manifest.json"])["shards"][0]["sha256"]
    assert [line for line in capsys.readouterr().err.splitlines() if "s3://" in line] == [
        f"pipeline: error: s3://corpus/v7/c4/shard-00000.arrow is not as uploaded (ETag {overwritten!r} where its "
        f"upload recorded {_etag_of(published['shard-00000.arrow'])!r}), and its staged copy {staged} is not as the "
        f"run recorded it (its sha256 is not {sha256}): nothing was uploaded; pass --restart to run it again"]
    assert _objects("corpus", "v7/c4")["shard-00000.arrow"] == b"x" * len(published["shard-00000.arrow"])


def _etag_of(body: bytes) -> str:
    """S3's ETag of a single-part upload of `body`: its MD5 in quotes (the test's own reading)."""
    import hashlib

    return f'"{hashlib.md5(body).hexdigest()}"'


def test_a_publish_recorded_without_etags_uploads_each_file_again_once(
        s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """An older herd recorded the names it uploaded and no ETag: nothing says the objects are still
    those bytes, so each is uploaded again once, and its ETag recorded."""
    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v8", "--workers", "2")
    published = _objects("corpus", "v8/c4")
    record = tmp_path / "staging" / "s3" / "corpus" / "v8" / "c4" / "_work" / "uploaded.json"
    record.write_text(json.dumps(sorted(json.loads(record.read_text()))))
    capsys.readouterr()
    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v8", "--workers", "2")
    files = sorted(name for name in published if name != "manifest.json")
    assert [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: s3://")] == [
        f"warning: s3://corpus/v8/c4: {len(files)} published file(s) not as uploaded: "
        + ", ".join(f"{name} (ETag {_etag_of(published[name])!r}, and none recorded at its upload)" for name in files)
        + "; uploading them again"]
    # manifest.json is compared byte for byte, never by its ETag: not uploaded again, its record stays empty.
    assert json.loads(record.read_text()) == {name: _etag_of(published[name]) for name in files} | {
        "manifest.json": None}
    _run_c4_to_s3(tmp_path, monkeypatch, "s3://corpus/v8", "--workers", "2")
    assert "warning: s3://" not in capsys.readouterr().err and _objects("corpus", "v8/c4") == published


def test_the_warning_of_a_rerun_names_ten_files_and_counts_the_rest(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A storage without ETags (memory://) is judged by size alone; the warning stays one short line."""
    import hashlib

    import fsspec

    from pipeline.commands.remote_output import publish

    local = tmp_path / "c4"
    local.mkdir()
    shards = []
    for n in range(12):
        body = f"shard {n}".encode()
        (local / f"shard-{n:05d}.arrow").write_bytes(body)
        shards.append({"file": f"shard-{n:05d}.arrow", "documents": 1, "bytes": len(body),
                       "sha256": hashlib.sha256(body).hexdigest()})
    (local / "manifest.json").write_text(json.dumps({"shards": shards}))
    publish(local, "memory://many/c4")
    fs = fsspec.filesystem("memory")
    assert json.loads((local / "_work" / "uploaded.json").read_text()) == {
        name: None for name in ["manifest.json", *(s["file"] for s in shards)]}
    fs.rm([f"/many/c4/{s['file']}" for s in shards])
    capsys.readouterr()
    assert publish(local, "memory://many/c4") == [s["file"] for s in shards]
    assert capsys.readouterr().err == (
        "warning: memory://many/c4: 12 published file(s) not as uploaded: "
        + ", ".join(f"shard-{n:05d}.arrow (missing)" for n in range(10)) + ", and 2 more; uploading them again\n")
    assert all(fs.cat(f"/many/c4/{s['file']}") == (local / s["file"]).read_bytes() for s in shards)
