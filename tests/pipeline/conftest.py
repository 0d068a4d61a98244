"""Fixtures of the pipeline tests: an S3-compatible server on 127.0.0.1 (moto's server mode).

boto3 and s3fs both reach it through AWS_ENDPOINT_URL (botocore reads it), with dummy
credentials; skipped with a reason where moto is not installed (`pip install 'herd[test]'`).
"""

from __future__ import annotations

from typing import Iterator

import pytest


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server_module = pytest.importorskip("moto.server", reason="moto[server] is not installed (the test extra)")
    pytest.importorskip("boto3", reason="boto3 is not installed (the test extra)")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    for name, value in {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    _forget_s3fs_instances()
    try:
        yield url
    finally:
        _forget_s3fs_instances()
        server.stop()


def _forget_s3fs_instances() -> None:
    """s3fs caches file systems by their arguments, not the environment: a cached one would
    still talk to an earlier test's server."""
    try:
        import s3fs
    except ModuleNotFoundError:
        return
    s3fs.S3FileSystem.clear_instance_cache()
