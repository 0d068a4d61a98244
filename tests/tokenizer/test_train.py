"""Must show 1: LLaMA's tokenizer settings hold on a model trained here (digits split, byte
fallback, lossless round trip with whitespace runs, ids 0/1/2), and the training failures."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2

from pipeline.common.errors import UserError
from pipeline.common.files import file_sha256
from tests.conftest import file_states, script, subprocess_env
from tests.hostile.helpers import one_error, run_script
from tests.tokenizer.conftest import MIXTURE, VOCAB, write_corpus
from tests.tokenizer.corpus import TEST_SET, write_source
import tokenizer.train as tokenizer_train
from tokenizer.train import TrainResult, train_tokenizer


def _processor(trained: TrainResult) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(trained.model))


def test_digits_split_into_single_digit_pieces(trained: TrainResult) -> None:
    sp = _processor(trained)
    # The dummy prefix "▁" comes first, then one learned piece per digit (not byte pieces).
    assert sp.encode("12345", out_type=str) == ["▁", "1", "2", "3", "4", "5"]
    assert sp.encode("in 2024", out_type=str)[-4:] == ["2", "0", "2", "4"]
    assert not any(sp.is_byte(sp.piece_to_id(d)) for d in "12345")


def test_unseen_characters_round_trip_through_byte_pieces(trained: TrainResult) -> None:
    sp = _processor(trained)
    for text in ("🙂", "龘"):
        assert sp.piece_to_id(text) == sp.unk_id()  # never seen in training: not in the vocabulary
        pieces = sp.encode(text, out_type=str)
        assert pieces[0] == "▁" and len(pieces) == 1 + len(text.encode())
        assert pieces[1:] == [f"<0x{b:02X}>" for b in text.encode()]
        assert sp.decode(sp.encode(text)) == text
    assert sp.unk_id() not in sp.encode(" ".join(TEST_SET))  # byte fallback: nothing is unknown


def test_decode_encode_is_lossless_on_multilingual_whitespace_runs(trained: TrainResult) -> None:
    sp = _processor(trained)
    for text in TEST_SET:
        assert sp.decode(sp.encode(text)) == text, repr(text)
    # Runs of spaces survive as whitespace pieces; newlines come back from byte pieces.
    assert "<0x0A>" in sp.encode("a\n\nb", out_type=str)


def test_special_ids_and_no_pad(trained: TrainResult) -> None:
    sp = _processor(trained)
    assert [sp.id_to_piece(i) for i in range(3)] == ["<unk>", "<s>", "</s>"]
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) == (0, 1, 2, -1)
    assert sp.id_to_piece(3) == "<0x00>" and sp.vocab_size() == VOCAB


def test_model_records_llama_trainer_settings(trained: TrainResult) -> None:
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(trained.model.read_bytes())
    spec, normalizer = proto.trainer_spec, proto.normalizer_spec
    assert spec.model_type == sentencepiece_model_pb2.TrainerSpec.BPE
    assert (spec.split_digits, spec.byte_fallback, spec.allow_whitespace_only_pieces) == (True, True, True)
    assert spec.character_coverage == pytest.approx(0.99995)
    assert spec.max_sentencepiece_length == 16
    assert normalizer.name == "identity"
    assert normalizer.add_dummy_prefix and not normalizer.remove_extra_whitespaces


def test_the_same_sample_trained_in_another_folder_is_the_same_model_file(trained: TrainResult,
                                                                         tmp_path: Path) -> None:
    # The fixture's corpus, settings and seed, another output folder and thread count: the same
    # bytes, so the same sha256 (`tokenizer encode` refuses to mix token shards of two sha256s).
    again = train_tokenizer(MIXTURE, trained.model.parent.parent / "corpus", tmp_path / "elsewhere",
                            vocab_size=VOCAB, sample_bytes=300_000, threads=2)
    assert again.model.read_bytes() == trained.model.read_bytes() and again.sha256 == trained.sha256
    spec = sentencepiece_model_pb2.ModelProto.FromString(again.model.read_bytes()).trainer_spec
    assert (list(spec.input), spec.model_prefix) == (["test.sample.txt"], "test")
    assert not spec.HasField("num_threads")


def test_json_describes_model_and_sample(trained: TrainResult) -> None:
    described = json.loads(trained.report.read_text())
    assert described["sha256"] == file_sha256(trained.model) == trained.sha256
    assert described["vocab_size"] == described["requested_vocab_size"] == VOCAB
    sample = described["sample"]
    assert set(sample["sources"]) == set(MIXTURE.proportions)
    assert sample["bytes"] == sum(s["bytes"] for s in sample["sources"].values())
    assert sample["documents"] == sum(s["documents"] for s in sample["sources"].values()) > 0
    assert trained.vocab.exists() and not list(trained.model.parent.glob("*.sample.txt"))


@pytest.mark.parametrize("threads", [0, -2, 1025, 100_000])
def test_threads_out_of_range_is_one_line_before_the_sample(tmp_path: Path, threads: int) -> None:
    """Below one is not "all cores"; past 1,024 SentencePiece refused only after the sample was drawn."""
    corpus = write_corpus(tmp_path / "corpus", {"c4": 10})
    with pytest.raises(UserError) as error:
        train_tokenizer(MIXTURE, corpus, tmp_path / "tok", vocab_size=VOCAB, threads=threads)
    assert str(error.value) == (f"--threads {threads}: must be from 1 to 1024 (SentencePiece's most), checked before "
                                "the sample is drawn")
    assert not (tmp_path / "tok").exists()


def test_vocab_too_large_for_the_sample_names_the_limit(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", {"c4": 40, "wikipedia": 20, "github": 20})
    with pytest.raises(UserError, match=r"supports at most \d+ pieces, fewer than --vocab-size 32000"):
        train_tokenizer(MIXTURE, corpus, tmp_path / "tok", vocab_size=32000, threads=1)
    assert not list((tmp_path / "tok").glob("*.model"))
    smaller = train_tokenizer(MIXTURE, corpus, tmp_path / "tok", vocab_size=32000, threads=1, allow_smaller_vocab=True)
    described = json.loads(smaller.report.read_text())
    assert described["requested_vocab_size"] == 32000 and described["hard_vocab_limit"] is False
    assert 260 < smaller.vocab_size == described["vocab_size"] < 32000
    # The corpus is far below the 1 GB default cap: the JSON says every source gave all it had.
    for entry in described["sample"]["sources"].values():
        assert entry["short"] and entry["bytes"] == entry["available_bytes"]
        assert entry["note"] == "had less text than its share of the cap: all of it was taken"


def test_vocab_below_the_samples_characters_names_the_least_size_that_trains(tmp_path: Path) -> None:
    """A --vocab-size under what the sample's characters, the byte pieces and the special ones
    take: one line giving the least size, which --allow-smaller-vocab cannot lower; that size
    trains, one less does not."""
    import re

    corpus = write_corpus(tmp_path / "corpus", {"c4": 40, "wikipedia": 20, "github": 20})
    with pytest.raises(UserError, match=r"--vocab-size 270 is below the (\d+) pieces") as error:
        train_tokenizer(MIXTURE, corpus, tmp_path / "tok", vocab_size=270, threads=1, allow_smaller_vocab=True)
    least = int(re.search(r"below the (\d+) pieces", str(error.value)).group(1))
    assert least > 256 + 3 and str(error.value).endswith(f"pass --vocab-size {least} or more")
    with pytest.raises(UserError, match=f"--vocab-size {least - 1} is below the {least} pieces"):
        train_tokenizer(MIXTURE, corpus, tmp_path / "tok", vocab_size=least - 1, threads=1)
    trained = train_tokenizer(MIXTURE, corpus, tmp_path / "tok", vocab_size=least, threads=1, allow_smaller_vocab=True)
    assert trained.vocab_size <= least


def test_training_never_overwrites_a_model_it_did_not_write_and_keeps_the_sample_only_when_asked(
        tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", {"c4": 40, "wikipedia": 20, "github": 20})
    out = tmp_path / "tok"
    first = train_tokenizer(MIXTURE, corpus, out, vocab_size=VOCAB, threads=1, allow_smaller_vocab=True)
    assert sorted(p.name for p in out.iterdir()) == [f"{MIXTURE.name}.{s}" for s in ("json", "model", "vocab")]
    # Its own model, described by its JSON: trained again in place, and the sample kept when asked.
    again = train_tokenizer(MIXTURE, corpus, out, vocab_size=VOCAB, threads=1, allow_smaller_vocab=True,
                            keep_sample=True)
    assert again.sha256 == first.sha256
    sample = out / f"{MIXTURE.name}.sample.txt"
    assert sample.stat().st_size > 0 and not list(out.glob(".*"))  # no temporary left
    # Another tool's model under the same name, its JSON left as it was: refused, nothing touched.
    mine = out / f"{MIXTURE.name}.model"
    mine.write_bytes(b"a model of another tokenizer")
    with pytest.raises(UserError) as error:
        train_tokenizer(MIXTURE, corpus, out, vocab_size=VOCAB, threads=1, allow_smaller_vocab=True)
    assert str(error.value) == (
        f"{mine}: not the model {MIXTURE.name}.json beside it records (its sha256 differs: another tokenizer's put in "
        "its place, or damaged since `tokenizer train` wrote it); move it away or give another --out (nothing was "
        "overwritten)")
    assert mine.read_bytes() == b"a model of another tokenizer" and sample.stat().st_size > 0
    # A user's sample.txt in a fresh folder: refused as well.
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / f"{MIXTURE.name}.sample.txt").write_text("my notes")
    with pytest.raises(UserError, match=r"sample\.txt: exists, and no"):
        train_tokenizer(MIXTURE, corpus, tmp_path / "fresh", vocab_size=VOCAB, threads=1, allow_smaller_vocab=True)
    assert (tmp_path / "fresh" / f"{MIXTURE.name}.sample.txt").read_text() == "my notes"


def _tokenizer(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([script("tokenizer"), *args], cwd=cwd, env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)


def _one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.slow
def test_cli_train_defaults_and_help(tmp_path: Path) -> None:
    help_text = _tokenizer("train", "--help", cwd=tmp_path).stdout
    for flag in ("--corpus", "--mixture", "--vocab-size", "--out", "--sample-mb", "--allow-smaller-vocab"):
        assert flag in help_text
    write_corpus(tmp_path / "data/corpus", {"c4": 60, "wikipedia": 30, "github": 20}, shard_docs=None)
    mixture = tmp_path / "mine.toml"
    mixture.write_text('name = "llama1"\n[proportions]\nc4 = 0.5\nwikipedia = 0.3\ngithub = 0.2\n')
    result = _tokenizer("train", "--mixture", str(mixture), "--vocab-size", "500", "--threads", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data/tokenizer/llama1.model").exists() and "500 pieces" in result.stdout


@pytest.mark.slow
def test_cli_train_bad_input_is_one_line(tmp_path: Path) -> None:
    _one_line_error(_tokenizer("train", cwd=tmp_path), "data/corpus", "no corpus found")
    (tmp_path / "data/corpus/c4").mkdir(parents=True)
    (tmp_path / "data/corpus/c4/manifest.json").write_text('{"source": "c4", "documents": 0, "shards": []}')
    _one_line_error(_tokenizer("train", cwd=tmp_path), "data/corpus/c4", "empty source")
    _one_line_error(_tokenizer("train", "--mixture", "nosuch", cwd=tmp_path), "unknown mixture 'nosuch'")


def test_an_out_among_the_corpus_or_a_mixture_that_is_no_file_is_one_line_before_any_work(tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus", {"c4": 5}, shard_docs=None)
    (tmp_path / "c4only.toml").write_text('name = "c4only"\n[proportions]\nc4 = 1.0\n')
    os.mkfifo(tmp_path / "fifo")  # no writer: a reader that opened it would wait for ever (a short timeout)
    before = file_states(tmp_path / "corpus")
    for flags, line in [
        (["--out", "corpus/c4/tok"], "corpus/c4/tok: the tokenizer folder overlaps the corpus folder corpus/c4; "
                                     "pick another --out"),
        (["--out", "corpus"], "corpus: the tokenizer folder overlaps the corpus folder corpus/c4; pick another --out"),
        (["--out", "/dev/null"], "/dev/null: a device, not a folder (give another output folder)"),
    ]:
        done = run_script("tokenizer", "train", "--corpus", "corpus", "--mixture", "c4only.toml", *flags, cwd=tmp_path)
        assert one_error(done, "tokenizer") == line
    done = run_script("tokenizer", "train", "--corpus", "corpus", "--mixture", "fifo", cwd=tmp_path, timeout=30)
    assert one_error(done, "tokenizer") == "fifo: a FIFO, not a mixture file"
    assert file_states(tmp_path / "corpus") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c4only.toml", "corpus", "fifo"]


@pytest.mark.parametrize(("flags", "message"), [
    # SentencePiece parses the size as an int32: this was its traceback, after the sample was drawn.
    (["--vocab-size", "2147483648"], "--vocab-size must be at most 16777216, got 2147483648"),
    (["--seed", "99999999999999999999"], "--seed must be at most 9223372036854775807, got 99999999999999999999"),
])
def test_cli_train_flags_out_of_bounds_are_one_line_before_any_work(tmp_path: Path, flags: list[str],
                                                                     message: str) -> None:
    result = _tokenizer("train", *flags, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"tokenizer: error: {message}"]
    assert list(tmp_path.iterdir()) == []


# --- a rerun finds its work done (README: exit 0, nothing rewritten) -----------------------------

SMALL = {"c4": 40, "wikipedia": 20, "github": 20}
OUTPUTS = [f"{MIXTURE.name}.{suffix}" for suffix in ("json", "model", "vocab")]
AGED_NS = 1_000_000_000  # a modification time no write of this run gives a file


def _train_small(corpus: Path, out: Path, **overrides: object) -> TrainResult:
    settings: dict = {"vocab_size": VOCAB, "threads": 1, "allow_smaller_vocab": True, **overrides}
    return train_tokenizer(MIXTURE, corpus, out, **settings)


def _age(out: Path) -> None:
    """Set every file's modification time back to AGED_NS, so that a write of any kind shows."""
    for path in out.iterdir():
        os.utime(path, ns=(AGED_NS, AGED_NS))


def _written(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.stat().st_mtime_ns != AGED_NS)


def _contents(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_a_rerun_with_the_same_inputs_and_settings_writes_nothing(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", SMALL)
    out = tmp_path / "tok"
    first = _train_small(corpus, out)
    assert not first.already_trained and sorted(p.name for p in out.iterdir()) == OUTPUTS
    described = json.loads(first.report.read_text())
    manifest = json.loads((corpus / "c4" / "manifest.json").read_text())
    assert described["corpus_shards"]["c4"] == [f"{s['file']}:{s['sha256']}" for s in manifest["shards"]]
    assert described["vocab_sha256"] == file_sha256(first.vocab)
    contents = _contents(out)
    _age(out)
    # Another thread count: not in the model (its trainer spec holds none), so the same work.
    again = _train_small(corpus, out, threads=2)
    assert again == TrainResult(first.model, first.vocab, first.report, first.vocab_size, first.sha256,
                                already_trained=True)
    assert _written(out) == [] and _contents(out) == contents


def test_other_inputs_or_settings_train_again_in_place(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", SMALL)
    out = tmp_path / "tok"
    _train_small(corpus, out)
    for change in ({"seed": 1}, {"sample_bytes": 40_000}, {"vocab_size": 800}, {"allow_smaller_vocab": False}):
        _age(out)
        assert not _train_small(corpus, out, **change).already_trained, change
        assert _written(out) == OUTPUTS, change
        _age(out)  # and the same again: done
        assert _train_small(corpus, out, **change).already_trained and _written(out) == [], change
    settings = {"vocab_size": 800, "allow_smaller_vocab": False}
    # The corpus rebuilt since (one source's shards, and so its manifest's sha256s, differ).
    write_source(corpus, "wikipedia", 20, seed=1)
    _age(out)
    assert not _train_small(corpus, out, **settings).already_trained and _written(out) == OUTPUTS
    # A .vocab changed since it was written: trained again, to the bytes the model's training gives.
    vocab = out / f"{MIXTURE.name}.vocab"
    written = vocab.read_bytes()
    vocab.write_bytes(written + b"x\t0\n")
    _age(out)
    assert not _train_small(corpus, out, **settings).already_trained and _written(out) == OUTPUTS
    assert vocab.read_bytes() == written


def test_a_json_from_before_the_inputs_were_recorded_trains_again_once(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", SMALL)
    out = tmp_path / "tok"
    first = _train_small(corpus, out)
    described = json.loads(first.report.read_text())
    for key in ("corpus_shards", "seed", "sample_cap_bytes", "vocab_sha256", "sample_sha256"):
        del described[key]
    first.report.write_text(json.dumps(described))
    _age(out)
    assert not _train_small(corpus, out).already_trained and _written(out) == OUTPUTS
    _age(out)
    assert _train_small(corpus, out).already_trained and _written(out) == []


@pytest.mark.parametrize("killed_at", ["model", "vocab"])  # the move it is killed at (the model's done before the vocabulary's)
def test_a_training_killed_while_it_installs_its_model_is_finished_by_the_rerun(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, killed_at: str) -> None:
    corpus = write_corpus(tmp_path / "corpus", SMALL)
    out = tmp_path / "tok"
    _train_small(corpus, out)  # an earlier tokenizer, then one with other settings killed as it finishes
    real_replace = os.replace

    def killed(source: object, target: object) -> None:
        if Path(target) == out / f"{MIXTURE.name}.{killed_at}":
            raise KeyboardInterrupt  # as a kill -9 at that point leaves the files
        real_replace(source, target)

    monkeypatch.setattr(tokenizer_train.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        _train_small(corpus, out, seed=1)
    monkeypatch.setattr(tokenizer_train.os, "replace", real_replace)
    # The same command again: the trained model is installed with its description, and found done.
    _age(out)
    again = _train_small(corpus, out, seed=1)
    assert again.already_trained
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS  # no temporary file or pending description left
    described = json.loads(again.report.read_text())
    assert described["seed"] == 1 and described["sha256"] == file_sha256(again.model)
    assert described["vocab_sha256"] == file_sha256(again.vocab)
    # The bytes a training with these settings writes, as a clean training in another folder has them.
    clean = _train_small(corpus, tmp_path / "clean", seed=1)
    assert again.model.read_bytes() == clean.model.read_bytes() and again.vocab.read_bytes() == clean.vocab.read_bytes()


def test_a_kept_sample_is_part_of_the_work_done(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", SMALL)
    out = tmp_path / "tok"
    _train_small(corpus, out)
    # Asked to keep the sample, and none there: the work is not done yet.
    assert not _train_small(corpus, out, keep_sample=True).already_trained
    sample = out / f"{MIXTURE.name}.sample.txt"
    kept = sample.read_bytes()
    _age(out)
    assert _train_small(corpus, out, keep_sample=True).already_trained and _written(out) == []
    sample.write_bytes(kept[: len(kept) // 2])  # cut since: drawn and trained again
    _age(out)
    assert not _train_small(corpus, out, keep_sample=True).already_trained
    assert _written(out) == sorted([*OUTPUTS, sample.name]) and sample.read_bytes() == kept


def test_a_deleted_model_is_trained_again_and_a_damaged_json_is_named(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", SMALL)
    out = tmp_path / "tok"
    first = _train_small(corpus, out)
    model_bytes = first.model.read_bytes()
    # The command's own model gone, its .vocab and .json still there: nothing foreign to protect.
    first.model.unlink()
    again = _train_small(corpus, out)
    assert not again.already_trained and again.model.read_bytes() == model_bytes
    # A JSON cut short: named as damaged, nothing overwritten.
    report = out / f"{MIXTURE.name}.json"
    report.write_text(report.read_text()[:100])
    contents = _contents(out)
    _age(out)
    with pytest.raises(UserError) as error:
        _train_small(corpus, out)
    assert str(error.value) == (
        f"{report}: damaged (not valid JSON), so nothing shows that `tokenizer train` wrote {MIXTURE.name}.model "
        "beside it; move them away or give another --out (nothing was overwritten)")
    assert _contents(out) == contents and _written(out) == []
    # Valid JSON that is not what `tokenizer train` writes (no model sha256): damaged as well.
    report.write_text('{"model": "elsewhere"}')
    with pytest.raises(UserError) as error:
        _train_small(corpus, out)
    assert str(error.value) == (
        f"{report}: damaged (it records no model sha256), so nothing shows that `tokenizer train` wrote "
        f"{MIXTURE.name}.model beside it; move them away or give another --out (nothing was overwritten)")
    # Model and JSON both gone, the .vocab left: no JSON says whose it is, as before.
    report.unlink()
    first.model.unlink()
    with pytest.raises(UserError) as error:
        _train_small(corpus, out)
    assert str(error.value) == (
        f"{out / MIXTURE.name}.vocab: exists, and no {MIXTURE.name}.json beside it says `tokenizer train` wrote it "
        "(another tokenizer's, a copy, or a training killed while finishing); move it away or give another --out "
        "(nothing was overwritten)")


@pytest.mark.slow
def test_cli_rerun_says_done_in_one_line_and_a_cut_json_is_named(tmp_path: Path) -> None:
    write_corpus(tmp_path / "data/corpus", SMALL, shard_docs=None)
    (tmp_path / "mine.toml").write_text('name = "llama1"\n[proportions]\nc4 = 0.5\nwikipedia = 0.3\ngithub = 0.2\n')
    train = ("train", "--mixture", "mine.toml", "--vocab-size", "32000", "--allow-smaller-vocab", "--threads", "1")
    first = _tokenizer(*train, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    out = tmp_path / "data/tokenizer"
    contents = _contents(out)
    _age(out)
    again = _tokenizer(*train, cwd=tmp_path)
    assert (again.returncode, again.stdout, again.stderr) == (
        0, "data/tokenizer/llama1.model: already trained with these settings; nothing to do\n", "")
    assert _written(out) == [] and _contents(out) == contents
    # The model deleted: trained again, to the same bytes.
    (out / "llama1.model").unlink()
    redone = _tokenizer(*train, cwd=tmp_path)
    assert redone.returncode == 0 and redone.stdout.startswith("data/tokenizer/llama1.model: "), redone.stderr
    assert {name: data for name, data in _contents(out).items() if name != "llama1.json"} == {
        name: data for name, data in contents.items() if name != "llama1.json"}
    (out / "llama1.json").write_text((out / "llama1.json").read_text()[:100])
    cut = _tokenizer(*train, cwd=tmp_path)
    assert (cut.returncode, cut.stdout) == (2, "")
    assert cut.stderr == (
        "tokenizer: error: data/tokenizer/llama1.json: damaged (not valid JSON), so nothing shows that `tokenizer "
        "train` wrote llama1.model beside it; move them away or give another --out (nothing was overwritten)\n")
