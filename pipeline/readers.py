"""Opening raw inputs, local or remote (fsspec URLs), compressed or not."""

from __future__ import annotations

import contextlib
import io
from typing import IO, Iterator

import fsspec

from pipeline.errors import InputError


@contextlib.contextmanager
def open_binary(path: str) -> Iterator[IO[bytes]]:
    """The decompressed bytes of `path`; compression inferred from the name (.gz, .bz2, .xz, .zst)."""
    try:
        with fsspec.open(path, "rb", compression="infer") as f:
            yield f
    except FileNotFoundError:
        raise InputError(path, "file does not exist") from None
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, expected a file") from None


@contextlib.contextmanager
def open_text(path: str) -> Iterator[IO[str]]:
    """Text lines of `path` as UTF-8; invalid bytes become U+FFFD instead of failing the file."""
    with open_binary(path) as raw:
        yield io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
