"""`pipeline download arxiv` against an S3-compatible server on 127.0.0.1 (moto)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from pipeline.commands.download import arxiv
from pipeline.commands.download.arxiv import MANIFEST, unpack
from pipeline.common.errors import UserError
from pipeline.commands.download import arxiv as downloader
from sources.arxiv import ArXiv
from tests.pipeline.commands.download.server import cli_error, files_under, no_sleep, download_with

TEX = rb"\documentclass{article}\begin{document}\section{Intro}Hello.\end{document}" + b"\n"


def _tar(members: dict[str, bytes], compress: bool = False) -> bytes:
    sink = io.BytesIO()
    with tarfile.open(fileobj=sink, mode="w:gz" if compress else "w") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return sink.getvalue()


def _archive(yymm: str) -> bytes:
    """An arXiv source archive: a paper of several files, a single gzipped .tex, a PDF-only one."""
    return _tar({
        f"{yymm}/{yymm}.00001.gz": _tar({"main.tex": TEX, "fig.txt": b"figure"}, compress=True),
        f"{yymm}/{yymm}.00002.gz": gzip.compress(TEX, mtime=0),
        f"{yymm}/{yymm}.00003.pdf": b"%PDF-1.4 ...",
    })


def _manifest(tars: dict[str, bytes], md5: dict[str, str] | None = None) -> bytes:
    entries = "".join(
        f"<file><content_md5sum>x</content_md5sum><filename>{key}</filename><md5sum>"
        f"{(md5 or {}).get(key, hashlib.md5(body).hexdigest())}</md5sum><num_items>3</num_items>"
        f"<seq_num>{n}</seq_num><size>{len(body)}</size><yymm>{key.split('_')[2]}</yymm></file>"
        for n, (key, body) in enumerate(tars.items(), 1)
    )
    return f"<arXivSRC>{entries}</arXivSRC>".encode()


@pytest.fixture
def bucket(s3_endpoint: str) -> dict[str, bytes]:
    import boto3

    tars = {f"src/arXiv_src_{yymm}_001.tar": _archive(yymm) for yymm in ("2301", "2302")}
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="arxiv")
    s3.put_bucket_request_payment(Bucket="arxiv", RequestPaymentConfiguration={"Payer": "Requester"})
    for key, body in tars.items():
        s3.put_object(Bucket="arxiv", Key=key, Body=body)
    s3.put_object(Bucket="arxiv", Key=MANIFEST, Body=_manifest(tars))
    return tars


def _args(s3_endpoint: str, out: Path, *extra: str) -> list[str]:
    return ["--endpoint-url", s3_endpoint, "--out", str(out), "--no-progress", *extra]


def test_archives_are_verified_and_unpacked_one_file_per_paper(bucket: dict, s3_endpoint: str,
                                                               tmp_path: Path) -> None:
    markers = download_with(downloader, _args(s3_endpoint, tmp_path, "--months", "2302"))
    assert [m.name for m in markers] == ["arXiv_src_2302_001.tar.unpacked"]
    assert json.loads(markers[0].read_text()) == {"papers": 2, "pdf_only": 1, "other": 0}
    assert files_under(tmp_path) == ["2302/2302.00001.tar.gz", "2302/2302.00002.gz", "arXiv_src_2302_001.tar.unpacked"]
    with tarfile.open(tmp_path / "2302" / "2302.00001.tar.gz") as t:
        assert t.extractfile("main.tex").read() == TEX
    assert gzip.decompress((tmp_path / "2302" / "2302.00002.gz").read_bytes()) == TEX
    inputs = ArXiv().list_inputs(str(tmp_path))
    assert inputs == [str(tmp_path / "2302" / "2302.00001.tar.gz"), str(tmp_path / "2302" / "2302.00002.gz")]
    assert [d.id for i in inputs for d in ArXiv().read(i)] == ["2302.00001", "2302.00002"]
    # --files takes the manifest's order; an archive already unpacked is not fetched again.
    markers = download_with(downloader, _args(s3_endpoint, tmp_path, "--files", "2", "--keep-tars"))
    assert (tmp_path / "arXiv_src_2301_001.tar.fetched").read_bytes() == bucket["src/arXiv_src_2301_001.tar"]
    assert not (tmp_path / "arXiv_src_2302_001.tar.fetched").exists()


def test_a_cut_download_resumes_with_a_ranged_get(bucket: dict, s3_endpoint: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    no_sleep(monkeypatch)
    ranges: list[int] = []
    real_get = arxiv.S3Objects._get

    def get_and_cut_the_first_body(self, key: str, first_byte: int = 0):
        response = real_get(self, key, first_byte)
        if key.endswith(".tar"):
            ranges.append(first_byte)
            if len(ranges) == 1:  # the first GET of the archive: the connection drops halfway
                body, half = response["Body"].read(), response["ContentLength"] // 2
                response["Body"] = _CutStream(body[:half])
        return response

    monkeypatch.setattr(arxiv.S3Objects, "_get", get_and_cut_the_first_body)
    download_with(downloader, _args(s3_endpoint, tmp_path, "--keep-tars"))
    key = "src/arXiv_src_2301_001.tar"
    assert ranges == [0, len(bucket[key]) // 2]
    assert (tmp_path / "arXiv_src_2301_001.tar.fetched").read_bytes() == bucket[key]


class _CutStream(io.BytesIO):
    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        if not data:
            raise ConnectionError("connection reset by peer")
        return data


def test_an_md5_mismatch_and_a_missing_archive_are_one_line(bucket: dict, s3_endpoint: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    import boto3

    s3 = boto3.client("s3")
    s3.put_object(Bucket="arxiv", Key=MANIFEST, Body=_manifest(bucket, {"src/arXiv_src_2301_001.tar": "c" * 32}))
    err = cli_error(["download", "arxiv", *_args(s3_endpoint, tmp_path)], capsys)
    assert f"s3://arxiv/src/arXiv_src_2301_001.tar: md5 mismatch: expected {'c' * 32}" in err
    assert files_under(tmp_path) == []
    s3.put_object(Bucket="arxiv", Key=MANIFEST, Body=_manifest(bucket))
    s3.delete_object(Bucket="arxiv", Key="src/arXiv_src_2301_001.tar")
    err = cli_error(["download", "arxiv", *_args(s3_endpoint, tmp_path)], capsys)
    assert "s3://arxiv/src/arXiv_src_2301_001.tar: HTTP 404 NoSuchKey" in err
    err = cli_error(["download", "arxiv", *_args(s3_endpoint, tmp_path, "--bucket", "nosuch")], capsys)
    assert f"s3://nosuch/{MANIFEST}: HTTP 404 NoSuchBucket" in err


def test_a_member_folder_named_like_another_archives_marker_cannot_stop_it(bucket: dict, s3_endpoint: str,
                                                                         tmp_path: Path) -> None:
    """A member `arXiv_src_2302_001.tar.unpacked/x.gz` would make that path a folder, which the next
    archive would take for its own marker and be skipped: members land in YYMM folders only."""
    import boto3

    hostile = _tar({"arXiv_src_2302_001.tar.unpacked/2301.00009.gz": gzip.compress(TEX, mtime=0),
                    "2301/2301.00001.gz": gzip.compress(TEX, mtime=0)})
    tars = {**bucket, "src/arXiv_src_2301_001.tar": hostile}
    s3 = boto3.client("s3")
    s3.put_object(Bucket="arxiv", Key="src/arXiv_src_2301_001.tar", Body=hostile)
    s3.put_object(Bucket="arxiv", Key=MANIFEST, Body=_manifest(tars))
    download_with(downloader, _args(s3_endpoint, tmp_path, "--files", "2"))
    assert files_under(tmp_path) == ["2301/2301.00001.gz", "2302/2302.00001.tar.gz", "2302/2302.00002.gz",
                                     "arXiv_src_2301_001.tar.unpacked", "arXiv_src_2302_001.tar.unpacked",
                                     "papers/2301.00009.gz"]
    assert json.loads((tmp_path / "arXiv_src_2302_001.tar.unpacked").read_text()) == {"papers": 2, "pdf_only": 1,
                                                                                     "other": 0}


def test_an_archive_cut_short_under_its_final_name_is_resumed_and_a_huge_listed_size_refused(
        bucket: dict, s3_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import boto3

    key = "src/arXiv_src_2301_001.tar"
    body = bucket[key]
    fetched = tmp_path / "arXiv_src_2301_001.tar.fetched"
    fetched.write_bytes(body[:2048])  # kept by a run of an older herd, or copied in by hand
    download_with(downloader, _args(s3_endpoint, tmp_path, "--keep-tars"))
    assert fetched.read_bytes() == body
    assert capsys.readouterr().out.splitlines()[0] == f"{fetched}: 2,048 bytes where the listing says {len(body):,}; " \
                                                      f"resumed"
    s3 = boto3.client("s3")
    s3.put_object(Bucket="arxiv", Key=MANIFEST, Body=_manifest(bucket).replace(
        f"<size>{len(bucket['src/arXiv_src_2302_001.tar'])}</size>".encode(), b"<size>99999999999999</size>"))
    err = cli_error(["download", "arxiv", *_args(s3_endpoint, tmp_path, "--months", "2302")], capsys)
    assert err == ("pipeline: error: s3://arxiv/src/arXiv_src_2302_001.tar: listed as 99,999,999,999,999 bytes, more "
                   "than 16 GiB, the most herd fetches of such a file; refused\n")
    assert not (tmp_path / "arXiv_src_2302_001.tar.fetched").exists()


def _sparse_member(name: str, real: int) -> bytes:
    """An old-GNU sparse member of `real` bytes stored as one byte at its end: the rest holes."""
    info = tarfile.TarInfo(name)
    info.size, info.type = 1, tarfile.GNUTYPE_SPARSE
    header = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    header[386:410] = b"%011o\0%011o\0" % (real - 1, 1)  # the map: one byte at offset real - 1
    header[483:495] = b"%011o\0" % real  # its real size
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header) + b"x".ljust(512, b"\0")


def test_sparse_members_that_would_unpack_past_the_archive_are_refused(tmp_path: Path) -> None:
    """Four 500 MiB members of holes in a 5 KB tar (each under the per-paper cap) filled 2 GB."""
    tar = tmp_path / "arXiv_src_2301_001.tar"
    tar.write_bytes(b"".join(_sparse_member(f"2301/2301.{i:05d}.gz", 500 << 20) for i in range(4)) + b"\0" * 1024)
    with pytest.raises(UserError) as refused:
        unpack(tar, tmp_path / "out", "s3://arxiv/src/arXiv_src_2301_001.tar")
    assert str(refused.value) == ("s3://arxiv/src/arXiv_src_2301_001.tar: member '2301/2301.00000.gz' is a sparse "
                                  "file (524,288,000 bytes of mostly holes), which no arXiv paper is; refused")
    assert sum(path.stat().st_size for path in tmp_path.rglob("*") if path.is_file()) == tar.stat().st_size


def test_an_out_that_is_no_folder_is_one_line_before_the_manifest_is_asked_for(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "file").write_text("the user's")
    unreachable = "http://127.0.0.1:9"  # the discard port: a request there would fail, not pass
    for out, line in [("/dev/null", "/dev/null: a device, not a folder (give another output folder)"),
                      (str(tmp_path / "file"), f"{tmp_path}/file: a file, not a folder (give another output folder)")]:
        err = cli_error(["download", "arxiv", "--out", out, "--endpoint-url", unreachable, "--retries", "0",
                         "--no-progress"], capsys)
        assert err == f"pipeline: error: {line}\n"
    assert (tmp_path / "file").read_text() == "the user's"
