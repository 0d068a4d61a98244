"""What a source module provides: how its raw files are found and read, and its stages."""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

import fsspec
import pyarrow as pa
from pydantic import with_config

from pipeline.common.config import STRICT
from pipeline.common.errors import UserError
from pipeline.common.files import check_regular_file, file_kind
from pipeline.common.generated import GENERATED_MARKER
from pipeline.common.warn import warn
from pipeline.engine.document import Document, Skipped, printable
from pipeline.engine.stage import Stage


@with_config(STRICT)
@dataclass
class SourceConfig:
    """Base of every source's typed configuration; `[<source>]` tables in --config override it.

    Its fields' types are its schema, checked by pydantic in the override layer
    (pipeline/common/config.py); a source whose settings have rules no type says (an order)
    says so in `check`."""

    def check(self) -> str | None:
        """What is wrong with these settings together, or None."""
        return None


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system of `url` and the path in it; a protocol whose package is missing
    (s3:// without s3fs) or that fsspec does not know is one line."""
    try:
        fs, _, paths = fsspec.get_fs_token_paths(url)
    except ImportError as e:
        protocol = url.split("://", 1)[0]
        raise UserError(f"{url}: reading {protocol}:// needs a package that is not installed "
                        f"({str(e).splitlines()[0]})") from None
    except ValueError as e:
        raise UserError(f"{url}: not a path or URL fsspec can open ({e})") from None
    if len(paths) != 1:
        raise UserError(f"{url}: names {len(paths)} paths; give one folder or file")
    return fs, paths[0]


def _warn_skipped(path: str, why: str) -> None:
    warn(f"warning: {printable(path)}: {why}; skipped")


def _regular_files(matched: list[str]) -> set[str]:
    """The regular files (links followed) among the local paths a source's patterns matched.
    Folders are passed over; anything else is left out with a warning naming it, never read nor
    passed over in silence: a FIFO would block its task's reader until something writes to it, a
    device (a link to /dev/zero) never ends, a link to nothing or in a loop cannot be opened."""
    files = set()
    for path in matched:
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            _warn_skipped(path, "a link to nothing (its target is missing)")
            continue
        except OSError as e:
            loop = e.errno == errno.ELOOP
            _warn_skipped(path, "a link in a loop" if loop else f"cannot be looked at ({e.strerror or e})")
            continue
        if stat.S_ISREG(mode):
            files.add(path)
        elif not stat.S_ISDIR(mode):
            _warn_skipped(path, f"not a regular file ({file_kind(mode)})")
    return files


def _inside(found: set[str], base: str) -> list[str]:
    root = os.path.realpath(base)
    kept = []
    for path in found:
        real = os.path.realpath(path)
        if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
            _warn_skipped(path, f"a link to {real!r}, outside the input folder")
            continue
        kept.append(path)
    return kept


# Compressions a file name may end in: a source's input under one it does not read (c4's
# `x.json.xz`) is named, not passed over in silence.
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst", ".zstd", ".lz4", ".7z", ".zip", ".br", ".tgz")


def _uncompressed(name: str) -> str:
    for suffix in COMPRESSIONS:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def unread_forms(base: str, found: set[str], patterns: tuple[str, ...]) -> list[str]:
    """The regular files under the local folder `base`, outside `found`, whose names are an input's
    but in a case or a compression the patterns do not take: `X.JSON.GZ`, `x.json.xz`, `x.json.bz2`
    for `*.json.gz` and `*.json`. What a pattern names alone by its compression (`*.gz`, `*.zip`)
    says nothing of a name, and is not used."""
    forms = {form for pattern in patterns if (form := _uncompressed(pattern.rsplit("/", 1)[-1].lower())) != "*"}
    unread = []
    for folder, _, names in os.walk(base):
        for name in names:
            path = os.path.join(folder, name)
            if (path not in found and not name.startswith(".") and name != GENERATED_MARKER
                    and any(fnmatch.fnmatchcase(_uncompressed(name.lower()), form) for form in forms)
                    and os.path.isfile(path)):
                unread.append(path)
    return sorted(unread)


class Source:
    """Base of the seven sources (and the passthrough `jsonl`).

    `read(path)` yields documents, or `Skipped(reason)` for a raw record it could not use,
    and raises `InputError` when the whole file is unusable. Readers must be deterministic:
    ids and order depend on the file alone, so reruns and other task splits agree. A reader
    that works for long before its first record or between two (loading, unpacking, sorting)
    calls `pipeline.engine.heartbeat.heartbeat(done, note)` as it goes, or --document-timeout
    takes it for a stalled document.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[SourceConfig]] = SourceConfig
    # Glob patterns (relative to the input root, recursive) that make up the inputs.
    patterns: ClassVar[tuple[str, ...]] = ("**/*",)

    def __init__(self, config: SourceConfig | None = None) -> None:
        self.config = config if config is not None else self.config_class()

    def list_inputs(self, root: str) -> list[str]:
        """Every input file under `root` (a local path or fsspec URL), sorted and unique. A local
        file that is a link to somewhere outside `root` is left out with a warning: a run reads
        only the folder it was given; so is a match that is no regular file (`_regular_files`)."""
        fs, base = filesystem(root)
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        local = protocol in ("file", "local")
        try:
            if not fs.exists(base):
                raise UserError(f"{root}: input path does not exist")
            if fs.isfile(base):
                return [root]
            if local:
                check_regular_file(root.removeprefix("file://"), "a folder of inputs or an input file",
                                   folder_ok=True)
            matched = sorted({p for pattern in self.patterns for p in fs.glob(f"{base.rstrip('/')}/{pattern}")})
            found = _regular_files(matched) if local else {p for p in matched if fs.isfile(p)}
            # `pipeline sample`'s list of what it wrote is no input, whatever a source's patterns say.
            found = {p for p in found if p.rsplit("/", 1)[-1] != GENERATED_MARKER}
        except UserError:
            raise
        except OSError as e:
            if isinstance(e, FileNotFoundError):
                raise UserError(f"{root}: input path does not exist") from None
            raise UserError(f"{root}: cannot list the inputs ({e.strerror or e})") from None
        except Exception as e:  # noqa: BLE001  (remote stores raise their own kinds: no credentials, ...)
            raise UserError(f"{root}: cannot list the inputs ({type(e).__name__}: {e})") from None
        if local:
            unread = unread_forms(base, found, self.patterns)
            if unread:
                shown = ", ".join(printable(os.path.relpath(p, base)) for p in unread[:5])
                more = f" and {len(unread) - 5} more" if len(unread) > 5 else ""
                warn(f"warning: {printable(root)}: {len(unread)} file(s) named like {self.name} inputs in a case or "
                     f"compression it does not read ({', '.join(self.patterns)}): {shown}{more}; skipped")
            return sorted(_inside(found, base))
        return sorted(f"{protocol}://{p}" for p in found)

    def read(self, path: str) -> Iterator[Document | Skipped]:
        raise NotImplementedError

    def fields(self) -> list[pa.Field]:
        """Metadata columns the reader fills."""
        return []

    def stages(self) -> list[Stage]:
        return []
