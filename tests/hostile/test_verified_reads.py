"""Every read of herd's own files is verified where its siblings verify it, and every raw input
is read through the readers' bounds, through the real CLIs:

- `tokenizer train` on a corpus with one shard changed on disk (a byte of text flipped, cut
  short, deleted) ends in one line naming that shard and the problem, exit 2, nothing trained,
  as `pipeline verify` reports it;
- `pipeline audit` on such a corpus names the shard and the problem, not "a file";
- `pipeline audit --raw` given a gzip bomb, a tar bomb, a tar of too many members, a zip bomb or
  an entity bomb refuses or skips it with the reason the source's own reader gives (`pipeline
  run` records that reason), and its peak resident memory, measured, stays bounded.

The expected lines are written out here from the manifest the test reads itself, not computed
with the code under test."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.common.errors import InputError
from pipeline.engine.document import Skipped
from sources.arxiv import ArXiv
from sources.books import Books
from sources.wikipedia import Wikipedia
from tests.hostile.helpers import one_error, run_script
from tests.hostile.measure import cli_peak_mb
from tests.pipeline.commands.test_audit import corpus
from tests.tokenizer.corpus import write_source

pytestmark = pytest.mark.slow

HINT = "; `pipeline verify` lists every damaged shard"
MiB = 1 << 20


# --- damaging one shard --------------------------------------------------------------------


def manifest_bytes(shard: Path) -> int:
    entries = json.loads((shard.parent / "manifest.json").read_text())["shards"]
    return next(e["bytes"] for e in entries if e["file"] == shard.name)


def flip_text_byte(shard: Path) -> str:
    """One letter of a document's text changed: the shard still reads as Arrow, only its sha256 tells."""
    data = bytearray(shard.read_bytes())
    at = data.find(b" the ")
    assert at > 0, "no text to flip in the shard"
    data[at + 1] ^= 0x20  # "the" -> "The"
    shard.write_bytes(bytes(data))
    return "sha256 does not match manifest.json (corrupt shard)"


def truncate(shard: Path) -> str:
    size = manifest_bytes(shard)
    shard.write_bytes(shard.read_bytes()[: size // 2])
    return f"{size // 2} bytes, manifest.json says {size} (truncated or replaced)"


def delete(shard: Path) -> str:
    shard.unlink()
    return "listed in manifest.json but missing"


DAMAGES = {"flipped byte": flip_text_byte, "truncated": truncate, "deleted": delete}

TRAIN = ("train", "--vocab-size", "1000", "--allow-smaller-vocab", "--sample-mb", "1", "--threads", "1")


def test_tokenizer_train_trains_on_an_intact_corpus(tmp_path: Path) -> None:
    write_source(tmp_path / "data" / "corpus", "c4", 40, shard_docs=10)
    done = run_script("tokenizer", *TRAIN, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "tokenizer" / "llama1.model").is_file()


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_tokenizer_train_refuses_a_damaged_shard_in_one_line(tmp_path: Path, damage: Callable[[Path], str]) -> None:
    write_source(tmp_path / "data" / "corpus", "c4", 40, shard_docs=10)
    problem = damage(tmp_path / "data" / "corpus" / "c4" / "shard-00002.arrow")
    line = f"data/corpus/c4/shard-00002.arrow: {problem}"
    assert one_error(run_script("tokenizer", *TRAIN, cwd=tmp_path), "tokenizer") == line + HINT
    out = tmp_path / "data" / "tokenizer"
    assert sorted(p.name for p in out.glob("*llama1*")) == []  # no model, vocab, report or sample
    # Its sibling says the same of the same shard.
    verified = run_script("pipeline", "verify", "--corpus", "data/corpus", cwd=tmp_path)
    assert verified.returncode == 2 and verified.stderr.splitlines() == [f"pipeline: error: {line}"]


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_audit_names_the_damaged_shard_and_the_problem(tmp_path: Path, damage: Callable[[Path], str]) -> None:
    corpus(tmp_path, {f"gutenberg/{i}": f"Book {i}: the rain fell in torrents." for i in range(5)})
    assert run_script("pipeline", "audit", "books", "--corpus", "corpus/jsonl", cwd=tmp_path).returncode == 0
    problem = damage(tmp_path / "corpus" / "jsonl" / "shard-00000.arrow")
    error = one_error(run_script("pipeline", "audit", "books", "--corpus", "corpus/jsonl", cwd=tmp_path), "pipeline")
    assert error == f"corpus/jsonl/shard-00000.arrow: {problem}{HINT}"


# --- hostile raw inputs for `audit --raw` -----------------------------------------------------


def gzip_of_zeros(size: int) -> bytes:
    """`size` zero bytes, gzipped without ever holding them: a decompression bomb."""
    packer, zeros, parts = zlib.compressobj(9, wbits=31), bytes(16 * MiB), []
    for _ in range(size // len(zeros)):
        parts.append(packer.compress(zeros))
    return b"".join(parts) + packer.flush()


class Zeros(io.RawIOBase):
    def readinto(self, buffer) -> int:  # type: ignore[override]
        buffer[:] = bytes(len(buffer))
        return len(buffer)

    def readable(self) -> bool:
        return True


def tar_gz(members: dict[str, int]) -> bytes:
    """A gzipped tar of members of zero bytes of these sizes, streamed: never held whole."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0) as packed:
        with tarfile.open(fileobj=packed, mode="w|") as tar:
            for name, size in members.items():
                info = tarfile.TarInfo(name)
                info.size = size
                tar.addfile(info, io.BufferedReader(Zeros()) if size else None)
    return out.getvalue()


def zip_of_zeros(size: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("book.txt", "w", force_zip64=True) as member:
            for _ in range(size // MiB):
                member.write(bytes(MiB))
    return out.getvalue()


BILLION_LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE mediawiki [\n<!ENTITY lol "lol">\n'
                  + b"".join(b'<!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                             for i in range(1, 10))
                  + b']>\n<mediawiki><page><title>A</title><ns>0</ns><id>1</id><revision><text>&lol9;</text>'
                    b'</revision></page></mediawiki>\n')

PAPER = ("\\documentclass{article}\n\\begin{document}\n\\section{Intro}\n"
         "A plain line of the paper that is long enough to count.\n\\end{document}\n")

# source, raw file name, its bytes, and what the source's reader makes of it.
BOMBS = {
    "gzip bomb": ("arxiv", "9901.00001.gz", lambda: gzip_of_zeros(256 * MiB),
                  "decompression_limit (more than 16,777,216 bytes decompressed)"),
    "tar bomb": ("arxiv", "9901.00002.tar.gz", lambda: tar_gz({"main.tex": 320 * MiB}),
                 "decompression_limit (more than 268,435,456 bytes decompressed)"),
    "tar of too many members": ("arxiv", "9901.00003.tar.gz", lambda: tar_gz({f"f{i}.tex": 0 for i in range(10_001)}),
                                "too_many_members (more than 10,000)"),
    "entity bomb": ("wikipedia", "enwiki-20220701-pages-articles.xml", lambda: BILLION_LAUGHS,
                    "dtd_not_allowed (a DOCTYPE or entity declaration (entity-expansion guard))"),
    "zip bomb": ("books", "gutenberg/bomb.zip", lambda: zip_of_zeros(128 * MiB), Skipped("member_too_large")),
}
READERS = {"arxiv": ArXiv, "wikipedia": Wikipedia, "books": Books}
CORPUS = {"arxiv": {"2101.00001": PAPER}, "wikipedia": {"enwiki/1": "A plain line."},
          "books": {"gutenberg/a": "A clean book."}}
GOOD_RAW = {"arxiv": ("2101.00001.gz", lambda: gzip.compress(PAPER.encode(), mtime=0)),
            "wikipedia": ("enwiki-20220701-pages-articles.xml",
                          lambda: b"<mediawiki><page><title>A</title><ns>0</ns><id>1</id><revision><text>A plain "
                                  b"line.</text></revision></page></mediawiki>"),
            "books": ("gutenberg/a.txt", lambda: b"A clean book.")}


def what_the_source_reader_says(source: str, path: Path) -> str | Skipped:
    """The problem the source's own reader (what `pipeline run` counts) reports for `path`."""
    try:
        skipped = [item for item in READERS[source]().read(str(path)) if isinstance(item, Skipped)]
    except InputError as e:
        return e.problem
    assert len(skipped) == 1, skipped
    return Skipped(skipped[0].reason)


def audit_raw(tmp_path: Path, source: str, name: str, data: bytes) -> tuple:
    raw = tmp_path / "raw" / name
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_bytes(data)
    done, peak = cli_peak_mb("pipeline", "audit", source, "--corpus", "corpus/jsonl", "--raw", "raw",
                             cwd=tmp_path)
    raw.unlink()
    return raw, done, peak


@pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
def test_audit_raw_refuses_hostile_inputs_as_the_source_does_in_bounded_memory(tmp_path: Path, bomb) -> None:
    source, name, make, expected = bomb
    corpus(tmp_path, CORPUS[source])
    good_name, good = GOOD_RAW[source]
    _, done, baseline = audit_raw(tmp_path, source, good_name, good())
    assert done.returncode == 0 and done.stderr == "", done.stderr

    raw, done, peak = audit_raw(tmp_path, source, name, make())
    (tmp_path / "raw" / name).write_bytes(make())
    assert what_the_source_reader_says(source, tmp_path / "raw" / name) == expected
    assert done.returncode == 0, done.stderr
    if isinstance(expected, Skipped):  # a member refused, the archive read on
        assert done.stderr == ""
        assert done.stdout.splitlines()[-1] == f"raw: 0 file(s) unreadable; archive members skipped: {expected.reason} 1"
    else:  # the file refused whole, printed as `pipeline run` prints an unreadable input
        assert done.stderr.splitlines() == [f"  unreadable input: raw/{name}: {expected}"]
        assert done.stdout.splitlines()[-1] == "raw: 1 file(s) unreadable; archive members skipped: none"
    # Bounded: over an audit of a good input, at most the 16 MiB a single-file paper may hold, held
    # about three times while it passes the bounded reader's layers (gzip's output, the bounded copy,
    # the buffered result: about 48 MB measured), far below the 128-320 MiB the bombs decompress to.
    assert peak - baseline < 64, (peak, baseline)
