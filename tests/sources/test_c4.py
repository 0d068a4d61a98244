"""The C4 source end to end: json.gz lines in, cleaned pages out, bad lines and files counted."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from datasets import Dataset

from pipeline.commands.run import run_source
from pipeline.common.errors import UserError
from sources.c4 import C4, C4Config
from pipeline.commands.sample import write_samples

GOOD = " ".join(f"Sentence number {n} of a good page is here." for n in range(6))


def _write(path: Path, lines: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def _row(text: str, url: str = "https://a.example/") -> bytes:
    return json.dumps({"text": text, "url": url, "timestamp": "2019-04-25T12:57:54Z"}).encode()


def test_reads_pages_with_url_and_timestamp_and_counts_bad_lines(tmp_path: Path) -> None:
    _write(tmp_path / "in/c4-train.00000-of-01024.json.gz", [
        _row(GOOD + "\nShare this"),
        b'{"text": "cut',
        b'{"text": "caf\xe9"}',
        b'{"url": "no text"}',
        _row("Lorem ipsum dolor sit amet. " * 5),
    ])
    _write(tmp_path / "in/plain.json", [_row(GOOD, "https://b.example/")])
    report = run_source(C4(), str(tmp_path / "in"), str(tmp_path / "out"), show_progress=False)
    read, quality = report.stats["stages"]
    assert read == {"name": "read", "in": 6, "out": 3,
                    "dropped": {"malformed_json": 1, "not_utf8": 1, "no_text_field": 1}}
    assert quality == {"name": "c4_quality", "in": 3, "out": 2, "dropped": {"lorem_ipsum": 1}}
    rows = Dataset.from_file(str(tmp_path / "out/c4/shard-00000.arrow")).to_list()
    assert [(r["id"], r["text"], r["url"], r["c4_lines_removed"]) for r in rows] == [
        ("c4-train.00000-of-01024:0", GOOD, "https://a.example/", 1),
        ("plain:0", GOOD, "https://b.example/", 0),
    ]
    assert rows[0]["timestamp"] == "2019-04-25T12:57:54Z"


def test_a_file_beside_its_own_name_compressed_is_named_in_a_warning(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "in/en/x.json.gz", [_row(GOOD, "https://a.example/")])
    _write(tmp_path / "in/en/x.json", [_row(GOOD, "https://b.example/")])
    report = run_source(C4(), str(tmp_path / "in"), str(tmp_path / "out"), show_progress=False)
    warning = capsys.readouterr().err
    assert f"{tmp_path}/in/en/x.json and {tmp_path}/in/en/x.json.gz" in warning
    assert "dropped as duplicate_id" in warning
    assert report.documents_kept == 1  # both are en/x:0: one record under one id


def test_a_truncated_file_is_counted_and_the_run_goes_on(tmp_path: Path) -> None:
    _write(tmp_path / "in/a.json.gz", [_row(GOOD)])
    whole = gzip.compress(b"\n".join(_row(GOOD) for _ in range(50)))
    (tmp_path / "in/b.json.gz").write_bytes(whole[: len(whole) // 2])
    report = run_source(C4(), str(tmp_path / "in"), str(tmp_path / "out"), show_progress=False)
    (failed,) = report.stats["files"]["failed"]
    assert failed["path"].endswith("b.json.gz") and failed["problem"].startswith("truncated or corrupt gzip file")
    assert report.documents_kept >= 1


def test_an_error_page_saved_as_a_file_is_a_failed_input_beside_the_good_ones(tmp_path: Path) -> None:
    _write(tmp_path / "in/a.json.gz", [_row(GOOD)])
    _write(tmp_path / "in/b.json.gz", [b"<html><head><title>503 Service Unavailable</title></head>", b"<body>",
                                       b"caf\xe9 is closed", b"</body></html>"])
    report = run_source(C4(), str(tmp_path / "in"), str(tmp_path / "out"), show_progress=False)
    (failed,) = report.stats["files"]["failed"]
    assert (Path(failed["path"]).name, failed["problem"]) == (
        "b.json.gz",
        "not JSON lines: no line of it is JSON; it starts with '<html><head><title>503 Service Unavailab' "
        "(an error page?)")
    assert report.stats["stages"][0]["dropped"] == {"malformed_json": 3, "not_utf8": 1}  # its lines still counted
    assert report.documents_kept == 1


def test_only_unusable_inputs_end_with_one_error(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in/a.json.gz").write_bytes(b"this is not gzip at all")
    with pytest.raises(UserError, match=r"a\.json\.gz: truncated or corrupt gzip file"):
        run_source(C4(), str(tmp_path / "in"), str(tmp_path / "out"), show_progress=False)


def test_config_changes_the_thresholds(tmp_path: Path) -> None:
    _write(tmp_path / "in/a.json", [_row("There is only one sentence here.")])
    report = run_source(C4(C4Config(min_sentences=1)), str(tmp_path / "in"), str(tmp_path / "out"),
                        show_progress=False)
    assert report.documents_kept == 1


def test_sample_exercises_every_rule(tmp_path: Path) -> None:
    write_samples(tmp_path / "raw", ["c4"])
    report = run_source(C4(), str(tmp_path / "raw/c4"), str(tmp_path / "out"), workers=2, show_progress=False)
    stats = report.stats
    assert [f["path"].rsplit("/", 1)[1] for f in stats["files"]["failed"]] == ["c4-train.00002-of-00003.json.gz"]
    read, quality = stats["stages"]
    assert read["dropped"] == {"malformed_json": 2, "not_utf8": 2}
    assert set(quality["dropped"]) == {"lorem_ipsum", "curly_bracket", "fewer_than_3_sentences"}
    texts = [r["text"] for p in sorted((tmp_path / "out/c4").glob("shard-*.arrow"))
             for r in Dataset.from_file(str(p)).to_list()]
    joined = "\n".join(texts)
    for removed in ("JavaScript", "cookies", "[1]", "[edit]", "Share this page", "x" * 1001):
        assert removed not in joined
