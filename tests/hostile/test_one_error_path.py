"""One error path for every command, through the real CLIs: unwritable outputs, closed pipes,
damaged JSON, bad config values and flags, a remote path without its package, file names that
are not UTF-8, and paths that lead outside the named folders end with one line and exit 2 (or
the right output), never a traceback; in == kept + dropped still holds where a run finishes."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import re
import string
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow as pa
import pytest

from tests.conftest import REPO, script, subprocess_env
from tests.hostile.helpers import assert_balanced, file_size_limit, one_error, write_lines
from tests.hostile.helpers import run_script as cli
from tests.hostile.sources_data import BOOK, c4_lines
from tests.tokenizer.conftest import trained  # noqa: F401  (the session's small tokenizer)
from tests.tokenizer.corpus import write_source
from tokenizer.train import TrainResult

# Every test here runs a CLI (or a worker pool) end to end.
pytestmark = pytest.mark.slow


def run_c4(cwd: Path, raw: str = "raw/c4", *extra: str) -> subprocess.CompletedProcess:
    return cli("pipeline", "run", "c4", "--input", raw, "--corpus", "corpus", "--workers", "1", "--no-progress",
               *extra, cwd=cwd)


def test_unwritable_outputs_are_one_line_for_every_command(tmp_path: Path) -> None:
    write_lines(tmp_path / "raw" / "c4" / "a.json", c4_lines(3))
    (tmp_path / "file").write_text("a file, not a folder")
    error = one_error(cli("pipeline", "run", "c4", "--input", "raw/c4", "--corpus", "file/corpus", "--no-progress",
                          cwd=tmp_path), "pipeline")
    assert error.startswith("file/corpus/c4") and "Not a directory (ENOTDIR)" in error
    write_source(tmp_path / "data" / "corpus", "c4", 10)
    (tmp_path / "m.model").write_bytes(b"not a model")
    error = one_error(cli("tokenizer", "train", "--out", "file/tok", cwd=tmp_path), "tokenizer")
    assert error.startswith("file/tok") and "(ENOTDIR)" in error
    error = one_error(cli("pipeline", "sample", "--raw", "file/raw", "--sources", "c4", cwd=tmp_path), "pipeline")
    assert error == "file: a file, not a folder, so file/raw cannot be made (give another output folder)"


def test_a_closed_stdout_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    write_lines(tmp_path / "raw" / "c4" / "a.json", c4_lines(3))
    assert run_c4(tmp_path).returncode == 0
    process = subprocess.Popen([script("pipeline"), "stats", "--corpus", "corpus"], cwd=tmp_path,
                               env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # `| head -0`: the reader is gone before the first line
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 2
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines() == [("pipeline: error: standard output was closed (the reading end of the "
                                            "pipe stopped); output cut short")]


@pytest.mark.parametrize("damage, command, message", [
    (lambda c: (c / "stats.json").write_text("{not json"), "stats", "corpus/c4/stats.json: damaged stats"),
    (lambda c: (c / "stats.json").write_text('{"source": "c4"}'), "stats", "corpus/c4/stats.json: damaged stats"),
    (lambda c: _manifest_file(c, 5), "verify", "damaged corpus manifest (shard file 5 is not a file name"),
    (lambda c: _manifest_file(c, "/etc/hostname"), "verify", "shard file '/etc/hostname' is not a file name"),
    (lambda c: _manifest_file(c, "../c4/shard-00000.arrow"), "verify", "is not a file name in its folder"),
    (lambda c: (c / "_work" / "plan.json").write_text("[1, "), "run", "corpus/c4/_work/plan.json: damaged"),
])
def test_damaged_json_is_one_line(tmp_path: Path, damage, command: str, message: str) -> None:
    write_lines(tmp_path / "raw" / "c4" / "a.json", c4_lines(3))
    assert run_c4(tmp_path).returncode == 0
    damage(tmp_path / "corpus" / "c4")
    args = ["run", "c4", "--input", "raw/c4", "--no-progress"] if command == "run" else [command]
    assert message in one_error(cli("pipeline", *args, "--corpus", "corpus", cwd=tmp_path), "pipeline")


def _manifest_file(folder: Path, name: object) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["shards"][0]["file"] = name
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("table, message", [
    ("perplexity_percentiles = [60, 30]", "perplexity_percentiles = [60.0, 30.0]: two increasing percentiles"),
    ("languages = 5", "setting 'languages' must be a list of str, got 5"),
    ("dedup_span_files = -1", "setting 'dedup_span_files' must not be negative, got -1"),
    ("lang_threshold = nan", "setting 'lang_threshold' must be finite, got nan"),
])
def test_bad_config_values_are_one_line(tmp_path: Path, table: str, message: str) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "bad.toml").write_text(f"[commoncrawl]\n{table}\n")
    done = cli("pipeline", "run", "commoncrawl", "--input", "raw", "--corpus", "corpus", "--config", "bad.toml",
               "--no-progress", cwd=tmp_path)
    assert message in one_error(done, "pipeline")


@pytest.mark.parametrize("command, message", [
    (["pipeline", "mix", "--mixture", "llama1", "--total-tokens", "1e999"], "the token count must be positive and below"),
    (["pipeline", "mix", "--mixture", "inf.toml", "--total-tokens", "1e9"], "inf.toml: setting 'reference_tokens' must be finite, got inf"),
    (["tokenizer", "train", "--sample-mb", "nan"], "--sample-mb nan: must be a positive number of megabytes"),
    (["pipeline", "models", "lm", "--max-documents", "-1"], "--max-documents must not be negative, got -1"),
    # Zero epochs: fastText trained a model of its initial weights without a word.
    (["pipeline", "models", "classifier", "--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["pipeline", "models", "classifier", "--max-per-class", "0"], "--max-per-class must be at least 1, got 0"),
    (["pipeline", "models", "classifier", "--min-chars", "-1"], "--min-chars must not be negative, got -1"),
    # NaN fails no `<= 0` test: it ran these (a plan's traceback, an audit that passed everything).
    (["pipeline", "mix", "--mixture", "llama1", "--total-tokens", "1e9", "--max-epochs", "nan"],
     "--bytes-per-token must be between 1 and 64, --max-epochs positive"),
    *((["pipeline", "mix", "--mixture", "llama1", "--total-tokens", "1e9", "--bytes-per-token", value],
       "--bytes-per-token must be between 1 and 64, --max-epochs positive") for value in ("nan", "1e308", "1e-300")),
    (["pipeline", "plan", "c4", "--sample-mb", "nan"], "--sample-mb must be finite, got nan"),
    (["pipeline", "audit", "wikipedia", "--max-residue", "nan"], "--max-residue and --max-missing are shares: from 0 to 1"),
    (["pipeline", "audit", "wikipedia", "--max-missing", "-1"], "--max-residue and --max-missing are shares: from 0 to 1"),
    (["pipeline", "download", "books", "--ids", "1", "--delay", "nan"], "--delay must be finite, got nan"),
])
def test_bad_flags_are_one_line(tmp_path: Path, command: list[str], message: str) -> None:
    (tmp_path / "inf.toml").write_text('name = "x"\nreference_tokens = inf\n[proportions]\nc4 = 1.0\n')
    done = cli(command[0], *command[1:], cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr.strip().splitlines()[-1], done.stderr


def test_a_remote_input_without_its_package_is_one_line(tmp_path: Path) -> None:
    shim = tmp_path / "shim" / "s3fs"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("No module named \'s3fs\'")\n')
    env = {"PYTHONPATH": f"{tmp_path / 'shim'}{os.pathsep}{subprocess_env()['PYTHONPATH']}"}
    done = cli("pipeline", "run", "c4", "--input", "s3://bucket/c4", "--corpus", "corpus", cwd=tmp_path, env=env)
    assert one_error(done, "pipeline") == ("s3://bucket/c4: reading s3:// needs a package that is not installed "
                                           "(Install s3fs to access S3)")


def _books(raw: Path, name: bytes) -> None:
    good = raw / "gutenberg"
    good.mkdir(parents=True)
    (good / "a.txt").write_text(BOOK)
    os.makedirs(os.path.join(bytes(raw), name), exist_ok=True)
    Path(os.fsdecode(os.path.join(bytes(raw), name, b"b.txt"))).write_text(BOOK + " other")


def _c4(raw: Path, name: bytes) -> None:
    write_lines(raw / "good.json", c4_lines(2))
    Path(os.fsdecode(os.path.join(bytes(raw), name + b".json"))).write_bytes(b"".join(c4_lines(1)) + b"\n")


def _jsonl(raw: Path, name: bytes) -> None:
    write_lines(raw / "good.jsonl", [json.dumps({"text": "a good document"}).encode()])
    Path(os.fsdecode(os.path.join(bytes(raw), name + b".jsonl"))).write_text(json.dumps({"text": "other"}) + "\n")


@pytest.mark.parametrize("source, write", [("c4", _c4), ("jsonl", _jsonl), ("books", _books)])
def test_a_file_name_with_byte_ff_is_a_failed_input_and_the_rest_is_kept(tmp_path: Path, source: str,
                                                                          write) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    write(raw, b"bad\xff")
    done = cli("pipeline", "run", source, "--input", "raw", "--corpus", "corpus", "--workers", "1", "--no-progress",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "bad\ufffd" in done.stderr and "file name is not valid UTF-8" in done.stderr
    stats = json.loads((tmp_path / "corpus" / source / "stats.json").read_text())
    assert_balanced(stats)
    assert [f["problem"] for f in stats["files"]["failed"]] == ["file name is not valid UTF-8"]
    assert stats["documents_kept"] >= 1


@pytest.mark.slow
def test_member_names_with_byte_ff_inside_an_arxiv_tar_are_read(tmp_path: Path) -> None:
    """A tar stores names as bytes: a paper whose section file is named with 0xff is inlined and
    kept, and nothing in its shard or stats is undecodable."""
    main = (b"\\documentclass{article}\n\\begin{document}\n\\section{Intro}\n"
            + b"Text of the paper that is long enough to be kept. " * 30 + b"\n\\input{sec\xff}\n\\end{document}\n")
    members = [(b"main.tex", main), (b"sec\xff.tex", b"\\section{Inner}\n" + b"Words of the inner part. " * 40),
               (b"fig\xff/a.tex", b"x")]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name.decode("latin-1"))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "2101.00001.tar.gz").write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
    done = cli("pipeline", "run", "arxiv", "--input", "raw", "--corpus", "corpus", "--workers", "1", "--no-progress",
               cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    stats = json.loads((tmp_path / "corpus" / "arxiv" / "stats.json").read_text())
    assert_balanced(stats)
    assert stats["documents_kept"] == 1
    with pa.memory_map(str(tmp_path / "corpus" / "arxiv" / "shard-00000.arrow")) as source:
        (text,) = pa.ipc.open_stream(source).read_all().column("text").to_pylist()
    assert "Words of the inner part." in text and "Text of the paper" in text


@pytest.mark.parametrize("source, name, line", [
    ("c4", "a.json", b"".join(c4_lines(1))),
    ("jsonl", "a.jsonl", json.dumps({"text": "a secret from outside"}).encode()),
    ("books", "gutenberg/a.txt", BOOK.encode()),
])
def test_a_link_to_a_file_outside_the_input_folder_is_not_read(tmp_path: Path, source: str, name: str,
                                                               line: bytes) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / Path(name).name).write_bytes(line + b"\n")
    raw = tmp_path / "raw"
    (raw / name).parent.mkdir(parents=True)
    (raw / name).symlink_to(outside / Path(name).name)
    link = raw / Path(name).parent / f"good{Path(name).suffix}"
    link.write_bytes(line + b"\n")  # the same content inside the folder: read
    done = cli("pipeline", "run", source, "--input", "raw", "--corpus", "corpus", "--workers", "1", "--no-progress",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"raw/{name}: a link to " in done.stderr and "outside the input folder; skipped" in done.stderr
    stats = json.loads((tmp_path / "corpus" / source / "stats.json").read_text())
    assert_balanced(stats)
    assert stats["files"]["total"] == 1 and stats["documents_read"] == 1


def test_inputs_in_a_case_or_compression_the_source_does_not_read_are_named_not_passed_over(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = b"\n".join(c4_lines(3)) + b"\n"
    (raw / "a.json").write_bytes(lines)  # read
    (raw / "B.JSON.GZ").write_bytes(gzip.compress(lines))
    (raw / "c.json.bz2").write_bytes(lines)  # the name is what counts here, not the bytes
    (raw / "d.json.xz").write_bytes(lines)
    (raw / "notes.txt").write_text("no input of c4's\n")  # no c4 name: nothing to say
    done = cli("pipeline", "run", "c4", "--input", "raw", "--corpus", "corpus", "--workers", "1", "--no-progress",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("warning: ")] == [
        "warning: raw: 3 file(s) named like c4 inputs in a case or compression it does not read (**/*.json.gz, "
        "**/*.json): B.JSON.GZ, c.json.bz2, d.json.xz; skipped"]
    stats = json.loads((tmp_path / "corpus" / "c4" / "stats.json").read_text())
    assert stats["files"]["total"] == 1 and stats["documents_read"] == 3


def test_what_matches_an_input_pattern_but_is_no_regular_file_is_named_and_left_out(tmp_path: Path) -> None:
    # A FIFO would block a reader until something writes to it, /dev/zero never ends, a link to
    # nothing or in a loop cannot be opened: each is named in a warning, none is read or hangs.
    folder = tmp_path / "raw" / "gutenberg"
    folder.mkdir(parents=True)
    (folder / "good.txt").write_text(BOOK)
    os.mkfifo(folder / "fifo.txt")
    (folder / "zero.txt").symlink_to("/dev/zero")
    (folder / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    (folder / "loop-a.txt").symlink_to(folder / "loop-b.txt")
    (folder / "loop-b.txt").symlink_to(folder / "loop-a.txt")
    (folder / "folder.txt").mkdir()  # a folder the pattern matches: passed over, it holds no input
    done = cli("pipeline", "run", "books", "--input", "raw", "--corpus", "corpus", "--workers", "1", "--no-progress",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    warnings = sorted(line for line in done.stderr.splitlines() if line.startswith("warning: "))
    assert warnings == [f"warning: {folder / name}: {why}; skipped" for name, why in [
        ("fifo.txt", "not a regular file (a FIFO)"), ("gone.txt", "a link to nothing (its target is missing)"),
        ("loop-a.txt", "a link in a loop"), ("loop-b.txt", "a link in a loop"),
        ("zero.txt", "not a regular file (a device)")]]
    stats = json.loads((tmp_path / "corpus" / "books" / "stats.json").read_text())
    assert_balanced(stats)
    assert stats["files"]["total"] == 1 and stats["documents_read"] == 1
    given = cli("pipeline", "run", "books", "--input", "raw/gutenberg/fifo.txt", "--corpus", "corpus", cwd=tmp_path)
    assert one_error(given, "pipeline") == "raw/gutenberg/fifo.txt: a FIFO, not a folder of inputs or an input file"


def test_names_that_are_paths_never_write_outside_the_output(tmp_path: Path, trained: TrainResult) -> None:
    (tmp_path / "evil.toml").write_text(f'name = "{tmp_path / "escaped"}"\n[proportions]\nc4 = 1.0\n')
    write_source(tmp_path / "data" / "corpus", "c4", 10)
    done = cli("tokenizer", "train", "--mixture", "evil.toml", "--out", "tok", cwd=tmp_path)
    assert "must be a plain name" in one_error(done, "tokenizer")
    lm = cli("pipeline", "models", "lm", "--language", "../../x", "--input", "data/corpus/c4", "--out", "models",
             cwd=tmp_path)
    assert "--language '../../x': expected a language code" in one_error(lm, "pipeline")
    assert not list(tmp_path.glob("escaped*")) and not (tmp_path / "x.sp.model").exists()
    # A source name is a folder's name: `../outside/c4` encoded the corpus there into TOKENS/../outside/c4.
    write_source(tmp_path / "outside", "c4", 10)
    for name in ("../../outside/c4", "..", "c4/"):
        encode = cli("tokenizer", "encode", "--sources", name, "--model", str(trained.model), cwd=tmp_path)
        assert one_error(encode, "tokenizer") == f"--sources {name!r}: not a source name (a folder directly in data/corpus)"
    assert not (tmp_path / "outside" / "c4" / "meta.json").exists() and not (tmp_path / "data" / "tokens").exists()


def test_disk_full_during_the_line_dedup_hash_pass_is_one_line_and_a_rerun_finishes(tmp_path: Path) -> None:
    rng = random.Random(0)
    raw = tmp_path / "raw"
    raw.mkdir()
    for f in range(2):  # distinct lines: the hash pass writes 8 bytes a line, more than the texts
        rows = ["\n".join("".join(rng.choice(string.ascii_lowercase) for _ in range(6)) for _ in range(20))
                for _ in range(300)]
        (raw / f"{f}.jsonl").write_text("".join(json.dumps({"text": r}) + "\n" for r in rows))
    command = [sys.executable, "-m", "tests.hostile.fragile", "run", "linededup", "--input", str(raw), "--corpus",
               str(tmp_path / "out"), "--workers", "2", "--no-progress"]
    full = subprocess.run(command, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=300,
                          preexec_fn=file_size_limit(32 << 10), check=False)
    error = one_error(full, "pipeline")
    assert re.fullmatch(r".*/out/linededup/_work/pass0/task-0000[01]: cannot write: No space left on device "
                        r"\(ENOSPC\); free space and rerun the same command to resume", error), error
    again = subprocess.run(command, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=300,
                           check=False)
    assert again.returncode == 0, again.stderr
    stats = json.loads((tmp_path / "out" / "linededup" / "stats.json").read_text())
    assert_balanced(stats)
    assert stats["documents_read"] == 600


def test_disk_full_while_unpacking_a_stack_exchange_archive_is_one_line_not_a_corrupt_archive(tmp_path: Path) -> None:
    """Posts.xml unpacked from a .7z into a file system that fills up: the run ends in one line
    saying so (a rerun with space reads the site), never a site counted as a corrupt archive."""
    import py7zr

    from tests.hostile.sources_data import se_site

    posts = se_site(3000)  # about 400 KB unpacked, a few KB packed
    (tmp_path / "raw").mkdir()
    with py7zr.SevenZipFile(tmp_path / "raw" / "big.example.7z", "w") as archive:
        archive.writestr(posts, "Posts.xml")
    command = [script("pipeline"), "run", "stackexchange", "--input", "raw", "--corpus", "out", "--workers", "1",
               "--no-progress"]
    full = subprocess.run(command, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=300,
                          preexec_fn=file_size_limit(128 << 10), check=False)
    error = one_error(full, "pipeline")
    assert "File too large (EFBIG); free space and rerun the same command to resume" in error, error
    assert "corrupt" not in error
    again = subprocess.run(command, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=300,
                           check=False)
    assert again.returncode == 0, again.stderr
    stats = json.loads((tmp_path / "out" / "stackexchange" / "stats.json").read_text())
    assert_balanced(stats)
    assert stats["files"]["failed"] == [] and stats["documents_kept"] == 3000
