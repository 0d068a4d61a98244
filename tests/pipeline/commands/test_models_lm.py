"""`pipeline models lm`: the lines SentencePiece trains on when the reference text has more than
--sp-sentences, drawn with --seed, and the same model files from the same text and seed; the
documents a corpus folder gives the models (the manifest's, each shard checked)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.commands.models import drawn_lines, iter_texts, load_cited_urls
from pipeline.common.errors import UserError
from pipeline.formats import files as formats_files
from pipeline.text.cited_urls import url_key
from sources.samples.text import document
from tests.conftest import file_states, script, subprocess_env
from tests.hostile.helpers import one_error, run_script
from tests.tokenizer.corpus import write_source


def _numbered_lines(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "normalised.txt"
    path.write_text("".join(f"line {n}\n" for n in range(count)), encoding="utf-8")
    return path


def test_all_lines_in_order_when_the_text_holds_no_more_than_the_draw(tmp_path: Path) -> None:
    text = _numbered_lines(tmp_path, 50)
    every = [f"line {n}" for n in range(50)]
    assert list(drawn_lines(text, 50, 50, seed=0)) == every
    assert list(drawn_lines(text, 50, 0, seed=0)) == every  # 0: no draw


def test_a_draw_is_that_many_distinct_lines_in_file_order_and_the_seed_decides_which(tmp_path: Path) -> None:
    text = _numbered_lines(tmp_path, 1000)
    drawn = list(drawn_lines(text, 1000, 100, seed=0))
    numbers = [int(line.split()[1]) for line in drawn]
    assert len(numbers) == 100 and len(set(numbers)) == 100
    assert numbers == sorted(numbers) and all(0 <= n < 1000 for n in numbers)
    assert list(drawn_lines(text, 1000, 100, seed=0)) == drawn
    assert list(drawn_lines(text, 1000, 100, seed=1)) != drawn


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("reference")
    rng = random.Random(3)
    path = folder / "reference.jsonl"
    path.write_text("\n".join(json.dumps({"text": document(rng, 3)}) for _ in range(300)) + "\n")
    return path


def _models_lm(reference: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([script("pipeline"), "models", "lm", "--input", str(reference), "--out", str(out), *flags],
                          capture_output=True, text=True, env=subprocess_env(), cwd=out.parent)


def test_a_drawn_model_is_the_same_bytes_in_every_run(reference: Path, tmp_path: Path) -> None:
    # Each run is its own process: a draw seeded from the system's entropy differs between
    # processes, never within one.
    for name in ("a", "b"):
        run = _models_lm(reference, tmp_path / name, "--sp-sentences", "200")
        assert run.returncode == 0, run.stderr
    info = json.loads((tmp_path / "a" / "en.lm.json").read_text())
    assert info["lines"] > 200 and info["sentencepiece"]["trained_on_lines"] == 200
    assert info["sentencepiece"]["seed"] == 0
    for name in ("en.sp.model", "en.arpa.bin"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    run = _models_lm(reference, tmp_path / "c", "--sp-sentences", "200", "--seed", "5")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "c" / "en.sp.model").read_bytes() != (tmp_path / "a" / "en.sp.model").read_bytes()


def _ram() -> int:
    """This machine's RAM in bytes, from /proc/meminfo (MemTotal, in kB): what lmplz's % is a share of."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


@pytest.mark.parametrize(("flags", "message"), [
    # SentencePiece's seed is an unsigned 32-bit number whose largest value means "unseeded".
    (["--seed", "-1"], "--seed must not be negative, got -1"),
    (["--seed", str(1 << 31)], "--seed must be at most 2147483647, got 2147483648"),
    # SentencePiece parses the vocabulary size as an int32: this was its traceback.
    (["--vocab-size", "2147483648"], "--vocab-size must be at most 16777216, got 2147483648"),
    (["--vocab-size", "9"], "--vocab-size must be at least 10, got 9"),
    (["--max-documents", "-1"], "--max-documents must not be negative, got -1"),
    (["--sp-sentences", "99999999999999999999"],
     "--sp-sentences must be at most 9223372036854775807, got 99999999999999999999"),
    # lmplz's -S, checked before SentencePiece trains (lmplz failed only after it).
    (["--memory", "0"], "--memory '0': expected a share of the RAM such as 50% or a size such as 500M or 4G "
                        "(lmplz's -S)"),
    (["--memory", "-1"], "--memory '-1': expected a share of the RAM such as 50% or a size such as 500M or 4G "
                         "(lmplz's -S)"),
    (["--memory", "1.5G"], "--memory '1.5G': expected a share of the RAM such as 50% or a size such as 500M or 4G "
                           "(lmplz's -S)"),
    (["--memory", "101%"], "--memory 101%: a share of the RAM is from 1% to 100%"),
    (["--memory", "0%"], "--memory 0%: a share of the RAM is from 1% to 100%"),
    (["--memory", "24M"], "--memory 24M: lmplz needs at least 32M (its vocabulary hash alone takes 24 MiB)"),
    (["--memory", "4096T"], f"--memory 4096T: more than this machine's {_ram() / (1 << 30):.1f} GiB of RAM, which "
                            "lmplz would fail to allocate; give a share such as 50%"),
])
def test_a_numeric_flag_out_of_bounds_is_one_line_before_any_work(reference: Path, tmp_path: Path, flags: list[str],
                                                                   message: str) -> None:
    run = _models_lm(reference, tmp_path / "out", *flags)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [f"pipeline: error: {message}"]
    assert not (tmp_path / "out").exists()  # refused before SentencePiece or lmplz ran


def test_memory_lmplz_takes_trains(reference: Path, tmp_path: Path) -> None:
    """The smallest size and a lower-case unit, as lmplz reads them (k is K to it)."""
    for memory in ("32M", "32768k"):
        run = _models_lm(reference, tmp_path / memory, "--memory", memory, "--vocab-size", "200")
        assert run.returncode == 0, run.stderr


def test_an_order_kenlm_cannot_take_is_one_line_before_any_work(reference: Path, tmp_path: Path) -> None:
    run = _models_lm(reference, tmp_path / "out", "--order", "7")
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "pipeline: error: --order 7: KenLM here is built for orders up to 6 (KENLM_MAX_ORDER); CCNet uses 5"]
    assert not (tmp_path / "out").exists()  # refused before SentencePiece or lmplz ran


def test_a_corpus_folder_gives_the_documents_its_manifest_lists_each_checked(tmp_path: Path) -> None:
    texts = [f"document {n}: the words of its one line" for n in range(6)]
    write_source(tmp_path / "corpus", "wikipedia", 6, shard_docs=3, texts=texts)
    folder = tmp_path / "corpus" / "wikipedia"
    # What a corpus folder may hold that is not its documents: a killed run's part, the dropped
    # documents of --keep-dropped, a stray copy the manifest does not list.
    (folder / "_work" / "pass0" / "task-00000").mkdir(parents=True)
    shutil.copy(folder / "shard-00000.arrow", folder / "_work" / "pass0" / "task-00000" / "part-00000.arrow")
    (folder / "dropped").mkdir()
    shutil.copy(folder / "shard-00001.arrow", folder / "dropped" / "shard-00000.arrow")
    shutil.copy(folder / "shard-00000.arrow", folder / "shard-00002.arrow")
    assert list(iter_texts([str(folder)])) == texts
    assert list(iter_texts([str(tmp_path / "corpus")])) == texts  # a folder holding corpus folders
    shard = folder / "shard-00001.arrow"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01  # the same size: only its sha256 tells
    shard.write_bytes(bytes(data))
    with pytest.raises(UserError) as refused:
        list(iter_texts([str(folder)]))
    assert str(refused.value) == (f"{shard}: sha256 does not match manifest.json (corrupt shard); "
                                  "`pipeline verify` lists every damaged shard")
    # The run folder without its manifest (killed before it finished): refused, its parts and
    # shards never walked as files.
    (folder / "manifest.json").unlink()
    for given in (folder, tmp_path / "corpus"):
        with pytest.raises(UserError, match=r"wikipedia: a `pipeline run wikipedia` began here and has not finished"):
            list(iter_texts([str(given)]))


def test_text_lines_end_as_a_text_files_do_and_one_too_long_is_passed_over_unheld(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats_files, "MAX_LINE_BYTES", 100)  # a run's cap on one line, 64 MiB, made small
    long = "x" * 101
    (tmp_path / "a.txt").write_bytes(f"\ufeffone\r\ntwo\rthree\n{long}\n\nfour".encode())
    assert list(iter_texts([str(tmp_path / "a.txt")])) == ["one", "two", "three", "four"]
    rows = [json.dumps({"text": "kept"}), json.dumps({"text": long}), json.dumps({"text": "also kept"})]
    (tmp_path / "a.jsonl").write_text("\r\n".join(rows))
    assert list(iter_texts([str(tmp_path / "a.jsonl")])) == ["kept", "also kept"]
    urls = ["https://a.example/x\rhttps://b.example/y", f"https://{long}", "https://c.example/"]
    (tmp_path / "urls.txt").write_text("\n".join(urls))
    assert load_cited_urls([str(tmp_path / "urls.txt")]) == {url_key(f"https://{u}") for u in
                                                             ("a.example/x", "b.example/y", "c.example/")}


def _refused(args: list[str], cwd: Path) -> str:
    """The one line `pipeline models` ends with (a FIFO given: a short timeout, it must not wait)."""
    return one_error(run_script("pipeline", "models", *args, cwd=cwd, timeout=30), "pipeline")


def test_an_input_that_is_no_regular_file_nor_folder_is_one_line_before_any_work(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")  # no writer: a reader that opened it would wait for ever
    (tmp_path / "z.txt").symlink_to("/dev/zero")  # a name of a kind it reads, bytes without end
    assert _refused(["lm", "--input", "fifo"], tmp_path) == "fifo: a FIFO, not an input file or folder"
    assert _refused(["lm", "--input", "z.txt"], tmp_path) == ("z.txt: a device (a link to /dev/zero), not an input "
                                                              "file or folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "z.txt"]  # no model folder made


def test_an_out_that_is_no_folder_or_overlaps_an_input_is_one_line_before_any_work(reference: Path,
                                                                                    tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(reference, raw / "reference.jsonl")
    (tmp_path / "file").write_text("the user's")
    before = file_states(tmp_path)
    for out, line in [
        ("/dev/null", "/dev/null: a device, not a folder (give another output folder)"),
        ("file", "file: a file, not a folder (give another output folder)"),
        ("raw/models", "raw/models: the model folder overlaps the input raw; pick an --out outside the inputs"),
        ("raw", "raw: the model folder overlaps the input raw; pick an --out outside the inputs"),
        (".", ".: the model folder overlaps the input raw; pick an --out outside the inputs"),
    ]:
        assert _refused(["lm", "--input", "raw", "--out", out], tmp_path) == line
    assert file_states(tmp_path) == before


# --- a rerun with the same inputs and settings trains nothing -------------------------------


def _skipped_line(out: Path) -> str:
    return (f"the en perplexity model is already trained with these inputs and settings: {out}/en.sp.model, "
            "en.arpa.bin (en.lm.json); nothing to do\n")


def _assert_trained(run: subprocess.CompletedProcess, documents: int = 300) -> None:
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"trained the en perplexity model on {documents} documents ("), run.stdout


@pytest.mark.slow  # trains models, a CLI run each
def test_lm_run_again_says_it_is_trained_in_one_line_and_writes_nothing(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    _assert_trained(_models_lm(reference, out))
    before = file_states(out)
    assert sorted(before) == ["en.arpa.bin", "en.lm.json", "en.sp.model"]
    # --memory sizes lmplz's sort buffers, not the model: it is no reason to train again.
    for flags in ((), ("--memory", "1G")):
        run = _models_lm(reference, out, *flags)
        assert (run.returncode, run.stdout, run.stderr) == (0, _skipped_line(out), "")
        assert file_states(out) == before


@pytest.mark.slow  # trains models, a CLI run each
def test_lm_trains_again_on_an_input_changed_in_place_or_another_setting(reference: Path, tmp_path: Path) -> None:
    text = tmp_path / "reference.jsonl"
    shutil.copy(reference, text)
    out = tmp_path / "models"
    _assert_trained(_models_lm(text, out))
    before = file_states(out)
    # One word changed, the file as long as it was: only its mtime tells.
    content = text.read_text()
    assert " the " in content
    text.write_text(content.replace(" the ", " THE ", 1))
    assert text.stat().st_size == len(content.encode())
    _assert_trained(_models_lm(text, out))
    changed = file_states(out)
    assert all(changed[name][1] != before[name][1] for name in before)  # each file written again
    for flags in (("--seed", "1"), ("--vocab-size", "200"), ("--order", "4"), ("--max-documents", "299")):
        _assert_trained(_models_lm(text, out, *flags), 299 if "--max-documents" in flags else 300)
    run = _models_lm(text, out, "--max-documents", "299")  # as the last run: nothing to do
    assert (run.returncode, run.stdout) == (0, _skipped_line(out))


@pytest.mark.slow  # trains models, a CLI run each
def test_lm_trains_again_when_a_model_is_deleted_or_damaged_or_its_description_predates_the_record(
        reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    _assert_trained(_models_lm(reference, out))
    trained = {name: content for name, (content, _) in file_states(out).items()}
    (out / "en.arpa.bin").unlink()
    _assert_trained(_models_lm(reference, out))
    assert (out / "en.arpa.bin").read_bytes() == trained["en.arpa.bin"]  # the same text: the same model
    model = out / "en.sp.model"
    with open(model, "r+b") as f:  # written over in place, as many bytes as before
        f.seek(model.stat().st_size // 2)
        f.write(b"\0" * 8)
    assert model.read_bytes() != trained["en.sp.model"]
    _assert_trained(_models_lm(reference, out))
    assert model.read_bytes() == trained["en.sp.model"]
    # An older herd's description: no record of what the model was made from.
    description = json.loads((out / "en.lm.json").read_text())
    del description["made_from"]
    (out / "en.lm.json").write_text(json.dumps(description))
    _assert_trained(_models_lm(reference, out))
    (out / "en.lm.json").unlink()
    _assert_trained(_models_lm(reference, out))
    assert {name: content for name, (content, _) in file_states(out).items() if name != "en.lm.json"} == {
        name: content for name, content in trained.items() if name != "en.lm.json"}
