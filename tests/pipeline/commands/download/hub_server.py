"""A Hugging Face Hub stand-in on 127.0.0.1: the tree API of one dataset folder and its
files' resolve URLs, as huggingface_hub and the fetcher request them."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.pipeline.commands.download.server import Server


def serve_dataset(server: Server, repo: str, folder: str, files: dict[str, bytes],
                  sha256: dict[str, str] | None = None, revision: str = "main", lfs: bool = True) -> None:
    """Publish `files` (name -> body) as LFS files of `repo`'s `folder` (`lfs=False`: as files kept
    in git, `"lfs": null`, the listing giving no sha256); `sha256` overrides checksums."""
    tree = [{"type": "directory", "oid": "0" * 40, "size": 0, "path": f"{folder}/subfolder"}]
    for name, body in files.items():
        server.files[f"datasets/{repo}/resolve/{revision}/{folder}/{name}"] = body
        digest = (sha256 or {}).get(name, hashlib.sha256(body).hexdigest())
        tree.append({"type": "file", "oid": hashlib.sha1(body).hexdigest(), "size": len(body),
                     "path": f"{folder}/{name}",
                     "lfs": {"oid": digest, "size": len(body), "pointerSize": 134} if lfs else None})
    server.add_json(f"api/datasets/{repo}/tree/{revision}/{folder}", tree)


@contextmanager
def dataset_server(repo: str, folder: str, bodies: dict[str, bytes]) -> Iterator[Server]:
    """A Hub stand-in publishing `bodies` as `repo`'s `folder`; `server.bodies` keeps them for the asserts."""
    with Server({}) as server:
        server.bodies = bodies
        serve_dataset(server, repo, folder, bodies)
        yield server


def hub_args(server: Server, out: Path, *extra: str) -> list[str]:
    """Arguments of a Hub download command pointed at the stand-in, writing under `out`."""
    return ["--endpoint", server.url, "--out", str(out), "--no-progress", *extra]
