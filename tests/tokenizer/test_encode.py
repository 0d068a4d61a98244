"""Must show 4: token shards hold exactly the counted tokens, the index finds every document,
the held-out split is deterministic, and a killed encode resumes into identical files."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2

import tokenizer.encode as encode_module
from pipeline.common.errors import UserError
from tests.conftest import script, subprocess_env
from tests.hostile.helpers import one_error, run_script
from tests.tokenizer.conftest import write_corpus
from tests.tokenizer.corpus import write_source
from tokenizer.encode import encode_corpus
from tokenizer.token_shards import TokenShards, token_dtype
from tokenizer.train import TrainResult

SIZES = {"c4": 300, "wikipedia": 120, "github": 5}


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "_work" not in p.parts}


def _corpus_texts(corpus: Path, source: str) -> list[tuple[str, str]]:
    from pipeline.engine.shards import read_corpus

    return [(d.id, d.text) for d in read_corpus(corpus / source)]


def test_shards_hold_exactly_the_counted_tokens_and_documents(trained: TrainResult, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", SIZES, shard_docs=100)
    report = encode_corpus(corpus, trained.model, tmp_path / "tokens", workers=2, heldout_fraction=0.05,
                           show_progress=False)
    sp = spm.SentencePieceProcessor(model_file=str(trained.model))
    for source, documents in SIZES.items():
        meta = json.loads((tmp_path / "tokens" / source / "meta.json").read_text())
        assert meta == report.sources[source]
        assert (meta["dtype"], meta["bos_id"], meta["eos_id"], meta["vocab_size"]) == ("uint16", 1, 2, 1000)
        assert meta["tokenizer_sha256"] == trained.sha256
        shards = TokenShards(tmp_path / "tokens" / source, tokenizer=trained.model)
        expected = {"train": [], "heldout": []}
        expected_ids: dict[str, list[str]] = {"train": [], "heldout": []}
        for doc_id, text in _corpus_texts(corpus, source):
            split = "heldout" if encode_module.HeldoutRule(0, int(0.05 * 2**64)).held_out(doc_id) else "train"
            expected[split].append([1] + sp.encode(text) + [2])
            expected_ids[split].append(doc_id)
        if source == "github":  # 5 documents: too few for 5%, so the one with the smallest key
            assert len(expected["heldout"]) == 0 and meta["splits"]["heldout"]["documents"] == 1
            continue
        assert 0 < len(expected["heldout"]) < documents // 5
        for split, docs in expected.items():
            entry = meta["splits"][split]
            on_disk = sum((tmp_path / "tokens" / source / s["bin"]).stat().st_size // 2 for s in entry["shards"])
            assert entry["tokens"] == sum(s["tokens"] for s in entry["shards"]) == on_disk == sum(map(len, docs))
            assert entry["documents"] == sum(s["documents"] for s in entry["shards"]) == len(docs)
            loaded = shards.split(split)
            for k, ids in enumerate(docs):
                assert loaded.document(k).tolist() == ids
            # The .ids sidecar names each document's corpus id, in .bin order, checksummed in meta.json.
            sidecar_ids = []
            for shard_entry in entry["shards"]:
                path = tmp_path / "tokens" / source / shard_entry["ids"]
                assert hashlib.sha256(path.read_bytes()).hexdigest() == shard_entry["ids_sha256"]
                sidecar_ids += pa.ipc.open_file(str(path)).read_all().column("id").to_pylist()
            assert sidecar_ids == expected_ids[split]
            raw = np.memmap(tmp_path / "tokens" / source / entry["shards"][0]["bin"], dtype="uint16", mode="r")
            index = np.fromfile(tmp_path / "tokens" / source / entry["shards"][0]["index"], dtype="<i8")
            assert index[0] == 0 and index[-1] == len(raw) and raw[index[1] - 1] == 2
    assert len(report.sources["c4"]["splits"]["train"]["shards"]) == 3  # one per corpus shard


def test_one_and_two_workers_write_identical_files(trained: TrainResult, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", SIZES, shard_docs=100)
    encode_corpus(corpus, trained.model, tmp_path / "one", workers=1, show_progress=False)
    encode_corpus(corpus, trained.model, tmp_path / "two", workers=2, show_progress=False)
    assert _files(tmp_path / "one") == _files(tmp_path / "two")


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_encode_with_nothing_to_do_rewrites_no_file(trained: TrainResult, tmp_path: Path) -> None:
    # README: run again, every step finds its work done (exit 0, nothing rewritten). meta.json was
    # written anew by every run, with the same bytes.
    corpus = write_corpus(tmp_path / "corpus", SIZES, shard_docs=100)
    encode_corpus(corpus, trained.model, tmp_path / "tokens", workers=1, show_progress=False)
    files, times = _files(tmp_path / "tokens"), _mtimes(tmp_path / "tokens")
    assert {"c4/meta.json", "wikipedia/meta.json", "github/meta.json"} <= times.keys()
    again = encode_corpus(corpus, trained.model, tmp_path / "tokens", workers=1, show_progress=False)
    assert again.tasks_run == 0
    assert _mtimes(tmp_path / "tokens") == times and _files(tmp_path / "tokens") == files
    # A meta.json that no longer says what the markers do is written again, to the same bytes.
    meta = tmp_path / "tokens" / "c4" / "meta.json"
    meta.write_text(meta.read_text().replace('"source": "c4"', '"source": "edited"'))
    encode_corpus(corpus, trained.model, tmp_path / "tokens", workers=1, show_progress=False)
    assert _files(tmp_path / "tokens") == files


def test_a_source_named_twice_is_encoded_once(trained: TrainResult, tmp_path: Path) -> None:
    # Two encodes of one source raced on its temporaries: "train-00000.bin.tmp: No such file".
    corpus = write_corpus(tmp_path / "corpus", SIZES, shard_docs=100)
    report = encode_corpus(corpus, trained.model, tmp_path / "twice", sources=["c4", "c4"], workers=2,
                           show_progress=False)
    encode_corpus(corpus, trained.model, tmp_path / "once", sources=["c4"], workers=2, show_progress=False)
    assert list(report.sources) == ["c4"] and _files(tmp_path / "twice") == _files(tmp_path / "once")


def test_crash_midway_resumes_into_identical_files(trained: TrainResult, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = write_corpus(tmp_path / "corpus", SIZES, shard_docs=50)
    encode_corpus(corpus, trained.model, tmp_path / "clean", workers=1, show_progress=False)
    real = encode_module.TokenShardWriter.write
    calls = {"n": 0}

    def crash_on_the_sixth_batch(self, ids, lengths, document_ids):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        real(self, ids, lengths, document_ids)

    monkeypatch.setattr(encode_module.TokenShardWriter, "write", crash_on_the_sixth_batch)
    with pytest.raises(KeyboardInterrupt):
        encode_corpus(corpus, trained.model, tmp_path / "resumed", workers=1, show_progress=False)
    done = list((tmp_path / "resumed").glob("*/_work/done-*.json"))
    assert 0 < len(done) < 10 and not list((tmp_path / "resumed").glob("*/meta.json"))
    (tmp_path / "resumed" / "c4" / "train-00009.bin.tmp").write_bytes(b"torn write of a killed run")
    (tmp_path / "resumed" / "c4" / "notes.tmp").write_text("a user's file of a temporary's suffix")
    monkeypatch.setattr(encode_module.TokenShardWriter, "write", real)
    report = encode_corpus(corpus, trained.model, tmp_path / "resumed", workers=2, show_progress=False)
    assert report.tasks_run == 10 - len(done)
    assert not (tmp_path / "resumed" / "c4" / "train-00009.bin.tmp").exists()
    (tmp_path / "resumed" / "c4" / "notes.tmp").unlink()  # kept: only the shards' own temporaries are removed
    assert _files(tmp_path / "clean") == _files(tmp_path / "resumed")
    again = encode_corpus(corpus, trained.model, tmp_path / "resumed", workers=2, show_progress=False)
    assert again.tasks_run == 0 and _files(tmp_path / "clean") == _files(tmp_path / "resumed")


@pytest.mark.slow
def test_killed_encode_process_resumes_into_identical_files(trained: TrainResult, tmp_path: Path) -> None:
    corpus = tmp_path / "data" / "corpus"
    write_source(corpus, "c4", 3000, shard_docs=250)
    model = tmp_path / "data" / "tokenizer" / "llama1.model"
    model.parent.mkdir(parents=True)
    model.write_bytes(trained.model.read_bytes())
    command = [script("tokenizer"), "encode", "--workers", "1", "--no-progress"]
    subprocess.run(command + ["--tokens", "clean"], cwd=tmp_path, env=subprocess_env(), check=True,
                   capture_output=True, timeout=300)
    process = subprocess.Popen(command, cwd=tmp_path, env=subprocess_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    work = tmp_path / "data" / "tokens" / "c4" / "_work"
    deadline = time.time() + 120
    while not list(work.glob("done-*.json")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    interrupted = len(list(work.glob("done-*.json")))
    assert interrupted < 12, "the encode finished before it could be killed"
    result = subprocess.run(command, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"encoded {12 - interrupted} corpus shard(s)" in result.stdout
    assert _files(tmp_path / "clean") == _files(tmp_path / "data" / "tokens")


def test_other_tokenizer_is_refused(trained: TrainResult, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", {"c4": 20}, shard_docs=None)
    encode_corpus(corpus, trained.model, tmp_path / "tokens", show_progress=False)
    other = tmp_path / "other.model"
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(trained.model.read_bytes())
    proto.trainer_spec.seed_sentencepiece_size += 1  # same pieces, another file: another hash
    other.write_bytes(proto.SerializeToString())
    with pytest.raises(UserError, match="refusing to mix them"):
        encode_corpus(corpus, other, tmp_path / "tokens", show_progress=False)
    with pytest.raises(UserError, match="refusing to mix them"):
        TokenShards(tmp_path / "tokens" / "c4", tokenizer=other)
    encode_corpus(corpus, other, tmp_path / "tokens", restart=True, show_progress=False)
    shards = TokenShards(tmp_path / "tokens" / "c4", tokenizer=other)
    assert (shards.split("train").documents, shards.split("heldout").documents) == (19, 1)


def test_a_model_put_in_place_of_the_one_its_description_records_is_refused(trained: TrainResult,
                                                                             tmp_path: Path) -> None:
    """`tokenizer train` calls such a model another tokenizer's or damaged; encode used it silently."""
    corpus = write_corpus(tmp_path / "corpus", {"c4": 20}, shard_docs=None)
    folder = tmp_path / "tokenizer"
    folder.mkdir()
    (folder / "llama1.json").write_text(trained.model.with_suffix(".json").read_text())
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(trained.model.read_bytes())
    proto.trainer_spec.seed_sentencepiece_size += 1  # the same pieces, another file
    (folder / "llama1.model").write_bytes(proto.SerializeToString())
    with pytest.raises(UserError) as refused:
        encode_corpus(corpus, folder / "llama1.model", tmp_path / "tokens", show_progress=False)
    assert str(refused.value) == (
        f"{folder / 'llama1.model'}: not the model llama1.json beside it records (its sha256 differs: another "
        "tokenizer's put in its place, or damaged since `tokenizer train` wrote it); train it again, or encode with "
        "the model it records")
    assert not (tmp_path / "tokens").exists()
    (folder / "llama1.model").write_bytes(trained.model.read_bytes())  # the model it records
    assert encode_corpus(corpus, folder / "llama1.model", tmp_path / "tokens", show_progress=False)


def test_a_model_that_is_no_regular_file_is_one_line_and_never_opened(tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus", {"c4": 5}, shard_docs=None)
    os.mkfifo(tmp_path / "fifo")  # no writer: SentencePiece's open of it would wait for ever (a short timeout)
    for model, line in [("fifo", "fifo: a FIFO, not a tokenizer model"),
                        ("/dev/zero", "/dev/zero: a device, not a tokenizer model")]:
        done = run_script("tokenizer", "encode", "--corpus", "corpus", "--model", model, "--tokens", "tokens",
                          cwd=tmp_path, timeout=30)
        assert one_error(done, "tokenizer") == line
    assert not (tmp_path / "tokens").exists()


def test_dtype_follows_vocabulary_size() -> None:
    assert (token_dtype(32000), token_dtype(65536), token_dtype(65537)) == ("uint16", "uint16", "uint32")


def _tokenizer(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([script("tokenizer"), *args], cwd=cwd, env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cli_encode_help_and_bad_input_is_one_line(trained: TrainResult, tmp_path: Path) -> None:
    help_text = _tokenizer("encode", "--help", cwd=tmp_path).stdout
    for flag in ("--corpus", "--model", "--tokens", "--workers", "--heldout", "--restart"):
        assert flag in help_text
    cases = []
    cases.append((_tokenizer("encode", "--model", str(trained.model), cwd=tmp_path), "no corpus found"))
    write_source(tmp_path / "data" / "corpus", "c4", 0, texts=[])
    cases.append((_tokenizer("encode", "--model", str(trained.model), cwd=tmp_path), "empty source"))
    cases.append((_tokenizer("encode", cwd=tmp_path), "tokenizer model does not exist"))
    for result, needle in cases:
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0] and "Traceback" not in result.stderr, result.stderr


def test_corrupt_shard_and_rebuilt_corpus_are_refused(trained: TrainResult, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", {"c4": 20}, shard_docs=None)
    encode_corpus(corpus, trained.model, tmp_path / "tokens", show_progress=False)
    write_source(corpus, "c4", 21)  # the corpus was rebuilt: same shard name, other content
    with pytest.raises(UserError, match="corpus_shards differ from the encode started there"):
        encode_corpus(corpus, trained.model, tmp_path / "tokens", show_progress=False)
    (corpus / "c4" / "shard-00000.arrow").write_bytes(b"not arrow")
    with pytest.raises(UserError, match="shard-00000.arrow: unreadable corpus shard"):
        encode_corpus(corpus, trained.model, tmp_path / "tokens", show_progress=False)


def _flip_a_byte_in_place(path: Path, at: int) -> None:
    """Overwrite one byte where it is: the same size, and a write that moves the file's time."""
    with open(path, "r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0x01]))


@pytest.mark.parametrize("name, damage", [
    ("train-00001.ids", "cut"),  # a torn copy: the Arrow file's footer is gone
    ("train-00001.ids", "overwritten"),  # the same size: only the sha256 meta.json recorded tells
    ("train-00001.bin", "overwritten"),  # a token id
    ("train-00001.idx", "overwritten"),  # the second document's offset
])
def test_a_rerun_encodes_again_a_shard_whose_file_was_damaged(
        trained: TrainResult, tmp_path: Path, capsys: pytest.CaptureFixture, name: str, damage: str) -> None:
    corpus = write_corpus(tmp_path / "corpus", {"c4": 40}, shard_docs=20)
    encode_corpus(corpus, trained.model, tmp_path / "tokens", heldout_fraction=0, show_progress=False)
    folder = tmp_path / "tokens" / "c4"
    before = _files(folder)
    damaged = folder / name
    size = len(before[name])
    if damage == "cut":
        damaged.write_bytes(before[name][:size // 2])
        problem = f"{size // 2:,} bytes, not the {size:,} written"
    else:
        _flip_a_byte_in_place(damaged, 9 if name.endswith((".bin", ".idx")) else size - 9)
        assert damaged.stat().st_size == size
        problem = "not as written (its sha256 differs)"
    capsys.readouterr()
    report = encode_corpus(corpus, trained.model, tmp_path / "tokens", heldout_fraction=0, show_progress=False)
    assert report.tasks_run == 1
    assert capsys.readouterr().err.splitlines() == [
        f"warning: {damaged}: {problem}; encoding {corpus / 'c4' / 'shard-00001.arrow'} again"]
    assert _files(folder) == before
    table = pa.ipc.open_file(str(folder / "train-00001.ids")).read_all()
    assert table.column("id").to_pylist() == [doc_id for doc_id, _ in _corpus_texts(corpus, "c4")[20:]]
    entry = json.loads((folder / "meta.json").read_text())["splits"]["train"]["shards"][1]
    assert entry["bin_sha256"] == hashlib.sha256(before["train-00001.bin"]).hexdigest()
    assert entry["index_sha256"] == hashlib.sha256(before["train-00001.idx"]).hexdigest()


def test_a_rerun_hashes_only_the_large_token_shards_written_since_the_encode(
        trained: TrainResult, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every shard counts as large here: an untouched one is trusted by its seal (size and time as
    # sealed when written), one written since is hashed and encoded again.
    import pipeline.engine.run_folder as run_folder

    corpus = write_corpus(tmp_path / "corpus", {"c4": 40}, shard_docs=20)
    encode_corpus(corpus, trained.model, tmp_path / "tokens", heldout_fraction=0, show_progress=False)
    folder = tmp_path / "tokens" / "c4"
    before = _files(folder)
    hashed: list[str] = []
    real_sha256 = run_folder.file_sha256
    monkeypatch.setattr(run_folder, "CHEAP_TO_HASH", 0)
    monkeypatch.setattr(run_folder, "file_sha256", lambda path: hashed.append(Path(path).name) or real_sha256(path))
    assert encode_corpus(corpus, trained.model, tmp_path / "tokens", heldout_fraction=0,
                         show_progress=False).tasks_run == 0
    assert hashed == []
    _flip_a_byte_in_place(folder / "train-00000.bin", 5)
    capsys.readouterr()
    assert encode_corpus(corpus, trained.model, tmp_path / "tokens", heldout_fraction=0,
                         show_progress=False).tasks_run == 1
    assert hashed == ["train-00000.bin"]
    assert _files(folder) == before


@pytest.mark.parametrize(("flags", "message"), [
    (["--workers", "0"], "--workers must be at least 1, got 0"),
    (["--workers", "99999999999999999999"], "--workers must be at most 9223372036854775807, got 99999999999999999999"),
    (["--seed", "99999999999999999999"], "--seed must be at most 9223372036854775807, got 99999999999999999999"),
])
def test_a_numeric_flag_out_of_bounds_is_one_line_before_any_work(flags: list[str], message: str, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    from tokenizer.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["encode", "--corpus", str(tmp_path / "corpus"), "--tokens", str(tmp_path / "tokens"), *flags])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"tokenizer: error: {message}\n"
    assert list(tmp_path.iterdir()) == []
