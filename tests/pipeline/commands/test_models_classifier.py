"""`pipeline models classifier` run again: with the same inputs and settings, and classifier.bin as
classifier.json records it, one line says it is already trained and nothing is written; another
input (changed in place), another setting, or a model deleted or damaged trains it again."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from sources.samples.commoncrawl import encyclopedic, spam_page, wet_records, write_members
from tests.conftest import file_states, script, subprocess_env
from tests.hostile.helpers import one_error, run_script

pytestmark = pytest.mark.slow  # each test trains classifiers, a CLI run each


def _reference(rng: random.Random) -> str:
    return encyclopedic(rng) + "\n" + encyclopedic(rng)  # always over the 1000-character minimum


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """wiki.jsonl (40 reference pages), cc.jsonl (50 random pages), and for the cited recipe
    pages.wet.gz holding 20 reference pages at https://ref.example/ and the 50 random ones
    elsewhere, with cited.txt citing the 20."""
    folder = tmp_path_factory.mktemp("pages")
    rng = random.Random(0)
    wiki = [_reference(rng) for _ in range(40)]
    cc = [spam_page(rng) for _ in range(50)]
    (folder / "wiki.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in wiki))
    (folder / "cc.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in cc))
    cited = [f"https://ref.example/{n:05d}-page.html" for n in range(20)]
    random_urls = [f"https://spam.example/{n:05d}-page.html" for n in range(50)]
    write_members(folder / "pages.wet.gz", wet_records(rng, [*zip(cited, wiki), *zip(random_urls, cc)]))
    (folder / "cited.txt").write_text("".join(url + "\n" for url in cited))
    return folder


def _models_classifier(out: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([script("pipeline"), "models", "classifier", "--out", str(out), *flags],
                          capture_output=True, text=True, env=subprocess_env(), cwd=out.parent)


def _plain(folder: Path, *flags: str) -> list[str]:
    return ["--positives", str(folder / "wiki.jsonl"), "--negatives", str(folder / "cc.jsonl"), *flags]


def _skipped_line(out: Path) -> str:
    return (f"the reference classifier is already trained with these inputs and settings: {out}/classifier.bin "
            "(classifier.json); nothing to do\n")


def _assert_trained(run: subprocess.CompletedProcess) -> None:
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("trained the reference classifier on "), run.stdout


def test_run_again_says_it_is_trained_in_one_line_and_writes_nothing(pages: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    _assert_trained(_models_classifier(out, *_plain(pages)))
    before = file_states(out)
    assert sorted(before) == ["classifier.bin", "classifier.json"]
    run = _models_classifier(out, *_plain(pages))
    assert (run.returncode, run.stdout, run.stderr) == (0, _skipped_line(out), "")
    assert file_states(out) == before


def test_trains_again_on_an_input_changed_in_place_or_another_setting(pages: Path, tmp_path: Path) -> None:
    shutil.copytree(pages, tmp_path / "pages")
    folder, out = tmp_path / "pages", tmp_path / "models"
    _assert_trained(_models_classifier(out, *_plain(folder)))
    before = file_states(out)
    random_pages = folder / "cc.jsonl"
    content = random_pages.read_text()
    random_pages.write_text(content.replace("a", "A", 1))  # as many bytes: only the mtime tells
    _assert_trained(_models_classifier(out, *_plain(folder)))
    assert file_states(out)["classifier.bin"][1] != before["classifier.bin"][1]
    for flags in (("--epochs", "5"), ("--seed", "1"), ("--min-chars", "500"), ("--max-per-class", "30")):
        _assert_trained(_models_classifier(out, *_plain(folder, *flags)))
    # The two inputs swapped: the same files in other roles make another model.
    swapped = ["--positives", str(folder / "cc.jsonl"), "--negatives", str(folder / "wiki.jsonl"),
               "--max-per-class", "30"]
    _assert_trained(_models_classifier(out, *swapped))
    run = _models_classifier(out, *swapped)
    assert (run.returncode, run.stdout) == (0, _skipped_line(out))


def test_trains_again_when_the_model_is_deleted_or_damaged_or_its_description_predates_the_record(
        pages: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    _assert_trained(_models_classifier(out, *_plain(pages)))
    model = out / "classifier.bin"
    trained = model.read_bytes()
    model.unlink()
    _assert_trained(_models_classifier(out, *_plain(pages)))
    assert model.read_bytes() == trained  # the same inputs and settings: the same model
    with open(model, "r+b") as f:  # written over in place, as many bytes as before
        f.seek(len(trained) // 2)
        f.write(b"\xff" * 8)
    _assert_trained(_models_classifier(out, *_plain(pages)))
    assert model.read_bytes() == trained
    os.truncate(model, len(trained) // 3)
    _assert_trained(_models_classifier(out, *_plain(pages)))
    assert model.read_bytes() == trained
    # An older herd's description: no record of what the model was made from.
    description = json.loads((out / "classifier.json").read_text())
    del description["made_from"]
    (out / "classifier.json").write_text(json.dumps(description))
    _assert_trained(_models_classifier(out, *_plain(pages)))
    assert model.read_bytes() == trained


def test_the_cited_recipe_is_trained_once_and_again_when_other_urls_are_cited(pages: Path, tmp_path: Path) -> None:
    cited = tmp_path / "cited.txt"
    shutil.copy(pages / "cited.txt", cited)
    out = tmp_path / "models"
    flags = ["--positives", "cited", "--cited-urls", str(cited), "--negatives", str(pages / "pages.wet.gz")]
    run = _models_classifier(out, *flags)
    assert run.returncode == 0, run.stderr
    assert run.stdout == (f"trained the reference classifier on 20 pages per class (20 cited pages found in "
                          f"{pages / 'pages.wet.gz'}, of 20 URLs cited; against {pages / 'pages.wet.gz'}) "
                          f"-> {out}/classifier.bin\n")
    before = file_states(out)
    run = _models_classifier(out, *flags)
    assert (run.returncode, run.stdout, run.stderr) == (0, _skipped_line(out), "")
    assert file_states(out) == before
    cited.write_text("".join(cited.read_text().splitlines(keepends=True)[:19]))  # one URL no longer cited
    run = _models_classifier(out, *flags)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("trained the reference classifier on 19 pages per class (19 cited pages found")


def test_an_input_or_out_it_cannot_use_is_one_line_before_any_work(pages: Path, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")  # no writer: a reader that opened it would wait for ever (a short timeout)
    shutil.copytree(pages, tmp_path / "pages")
    before = file_states(tmp_path / "pages")
    wiki, cc, cited = "pages/wiki.jsonl", "pages/cc.jsonl", "pages/cited.txt"
    for flags, line in [
        (["--positives", "fifo", "--negatives", cc], "fifo: a FIFO, not an input file or folder"),
        (["--positives", wiki, "--negatives", "/dev/zero"], "/dev/zero: a device, not an input file or folder"),
        (["--positives", "cited", "--cited-urls", "fifo", "--negatives", "pages/pages.wet.gz"],
         "fifo: a FIFO, not an input file or folder"),
        (["--positives", "cited", "--cited-urls", cited, "--cited-pages", "fifo", "--negatives", cc],
         "fifo: a FIFO, not an input file or folder"),
        (["--positives", wiki, "--negatives", cc, "--out", "/dev/null"],
         "/dev/null: a device, not a folder (give another output folder)"),
        (["--positives", wiki, "--negatives", "pages", "--out", "pages/models"],
         "pages/models: the model folder overlaps the input pages; pick an --out outside the inputs"),
        (["--positives", "cited", "--cited-urls", "pages", "--negatives", cc, "--out", "pages/models"],
         "pages/models: the model folder overlaps the input pages; pick an --out outside the inputs"),
    ]:
        done = run_script("pipeline", "models", "classifier", *flags, cwd=tmp_path, timeout=30)
        assert one_error(done, "pipeline") == line, flags
    assert file_states(tmp_path / "pages") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "pages"]  # no model folder made


@pytest.mark.parametrize(("flags", "message"), [
    # fastText takes both as C++ ints: past one, its message was pybind11's about the call's arguments.
    (["--epochs", "100000000000000000000"], "--epochs must be at most 1000, got 100000000000000000000"),
    (["--epochs", "2147483648"], "--epochs must be at most 1000, got 2147483648"),
    (["--seed", "100000000000000000000"], "--seed must be below 2147483648, got 100000000000000000000"),
    (["--seed", "-2147483649"], "--seed must be at least -2147483648, got -2147483649"),
    # Zero epochs: fastText trained a model of its initial weights without a word.
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--max-per-class", "0"], "--max-per-class must be at least 1, got 0"),
    (["--max-per-class", "99999999999999999999"],
     "--max-per-class must be at most 9223372036854775807, got 99999999999999999999"),
    (["--min-chars", "-1"], "--min-chars must not be negative, got -1"),
])
def test_a_numeric_flag_out_of_bounds_is_one_line_before_any_page_is_read(pages: Path, tmp_path: Path,
                                                                          flags: list[str], message: str) -> None:
    run = _models_classifier(tmp_path / "out", *_plain(pages, *flags))
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [f"pipeline: error: {message}"]
    assert not (tmp_path / "out").exists()
