"""`pipeline download github` (codeparrot/github-code parquet) against a Hub stand-in on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.commands.download.github import REPO
from pipeline.commands.download import github as downloader
from pipeline.engine.document import Document
from sources.github import GitHub
from tests.pipeline.commands.download.hub_server import dataset_server, hub_args, serve_dataset
from tests.pipeline.commands.download.server import Server, cli_error, cut_once, files_under, requested_by, resumed_gets, download_with

NAMES = [f"train-{n:05d}-of-01126.parquet" for n in range(2)]


def _parquet(n: int) -> bytes:
    """Rows in codeparrot/github-code's columns, two row groups."""
    table = pa.table({
        "code": [f"def f{n}_{i}():\n    return {i}\n" for i in range(50)],
        "repo_name": [f"owner/repo{n}" for _ in range(50)],
        "path": [f"src/f{i}.py" for i in range(50)],
        "language": ["Python"] * 50,
        "license": ["mit"] * 50,
        "size": [30] * 50,
    })
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=25)
    return sink.getvalue()


@pytest.fixture
def server() -> Iterator[Server]:
    with dataset_server(REPO, "data", {name: _parquet(n) for n, name in enumerate(NAMES)}) as s:
        yield s


def test_verified_files_get_the_column_names_the_source_reads(server: Server, tmp_path: Path) -> None:
    written = download_with(downloader, hub_args(server, tmp_path, "--files", "2"))
    assert [p.name for p in written] == NAMES
    assert files_under(tmp_path) == NAMES  # the fetched originals are gone
    original = pq.read_table(io.BytesIO(server.bodies[NAMES[0]]))
    converted = pq.read_table(written[0])
    assert converted.column_names == ["content", "repo_name", "path", "language", "license", "size"]
    assert converted.column("content").to_pylist() == original.column("code").to_pylist()
    source = GitHub()
    assert source.list_inputs(str(tmp_path)) == [str(p) for p in written]
    docs = [d for d in source.read(str(written[0])) if isinstance(d, Document)]
    assert [d.text for d in docs] == original.column("code").to_pylist()
    # A rerun finds the converted files and fetches nothing.
    rerun = requested_by(server, lambda: download_with(downloader, hub_args(server, tmp_path, "--files", "2")))
    assert rerun == [f"api/datasets/{REPO}/tree/main/data"]


def test_a_cut_file_resumes_with_a_range_request(server: Server, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = f"datasets/{REPO}/resolve/main/data/{NAMES[0]}"
    cut_once(server, monkeypatch, path)
    download_with(downloader, hub_args(server, tmp_path))
    assert server.gets(path) == resumed_gets(server.bodies[NAMES[0]])
    assert pq.read_table(tmp_path / NAMES[0]).column("content").to_pylist() == \
        pq.read_table(io.BytesIO(server.bodies[NAMES[0]])).column("code").to_pylist()


def test_a_sha256_mismatch_and_a_404_are_one_line(server: Server, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    serve_dataset(server, REPO, "data", server.bodies, {NAMES[0]: "b" * 64})
    err = cli_error(["download", "github", *hub_args(server, tmp_path)], capsys)
    assert f"sha256 mismatch: expected {'b' * 64}, got {hashlib.sha256(server.bodies[NAMES[0]]).hexdigest()}" in err
    assert files_under(tmp_path) == []
    serve_dataset(server, REPO, "data", server.bodies)
    del server.files[f"datasets/{REPO}/resolve/main/data/{NAMES[0]}"]
    err = cli_error(["download", "github", *hub_args(server, tmp_path)], capsys)
    assert f"/resolve/main/data/{NAMES[0]}: HTTP 404" in err


def test_a_download_left_beside_its_converted_file_is_removed_on_a_rerun(server: Server, tmp_path: Path) -> None:
    """A run stopped between the conversion's rename and the removal of the download keeps both."""
    download_with(downloader, hub_args(server, tmp_path))
    (tmp_path / f"{NAMES[0]}.fetched").write_bytes(server.bodies[NAMES[0]])
    rerun = requested_by(server, lambda: download_with(downloader, hub_args(server, tmp_path)))
    assert rerun == [f"api/datasets/{REPO}/tree/main/data"]
    assert files_under(tmp_path) == [NAMES[0]]


def _damaged_parquet(table: pa.Table, seed: int) -> bytes:
    """`table` as Parquet with a few bytes changed, as a fuzz found them: pyarrow raises on it other
    errors than ArrowInvalid (ArrowIndexError "Index 102 out of bounds", UnicodeDecodeError)."""
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=100)
    data, rng = bytearray(sink.getvalue()), __import__("random").Random(seed)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(4, len(data) - 4)
        data[at] = rng.randrange(256)
    return bytes(data)


def test_a_damaged_parquet_behind_a_valid_sha256_is_one_line_and_leaves_no_temporary(tmp_path: Path) -> None:
    """It was a traceback (exit 1) leaving its .tmp, on every rerun."""
    from pipeline.common.errors import UserError

    src = tmp_path / "train-00000.parquet.fetched"
    src.write_bytes(_damaged_parquet(pa.table({"code": [f"x{i}" for i in range(500)], "license": ["mit"] * 500}), 4))
    with pytest.raises(UserError) as refused:
        downloader.rename_columns(src, tmp_path / "train-00000.parquet", "https://hub/train-00000.parquet")
    assert str(refused.value).startswith(f"{src}: not a readable parquet file (")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train-00000.parquet.fetched"]
