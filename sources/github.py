"""GitHub: source files of permissively licensed repositories, filtered as in the paper.

Input (local folder or fsspec URL), either or both of:
- one folder per repository directly under the input root, named after the repository,
  holding its files and its licence file (LICENSE, LICENCE, COPYING, with any extension);
- `*.jsonl`, `*.jsonl.gz` or `*.parquet` files directly under the root with BigQuery-style
  rows: `repo_name`, `path`, `content`, `license` (and optionally `binary`).

Ids are unique in the source whatever the inputs hold: a repository folder's file is
`<repo>/<path>`, a row is `<table file>:<row number>` (a table's name has no `/`, so the two
never meet). The same file given twice, as a folder and as a row, or in two rows, thus keeps
two ids, and exact dedup keeps one copy.

Stages, in order: licence (keep MIT, BSD-2/3-Clause, Apache-2.0), extension whitelist,
line-length and alphanumeric quality, removal of a leading licence header, then exact
file-level dedup over all inputs (a global pass: the smallest id of each distinct content is
kept). A repository with several licences (dual licensing) takes the first allowed one. Metadata: repo, path, license, language.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.common.config import Amount, Bytes, Count, Probability
from pipeline.common.errors import InputError, UserError
from pipeline.dedup.exact import ExactDedup
from pipeline.engine.document import Document, Skipped, storable
from pipeline.engine.source import Source, SourceConfig
from pipeline.engine.stage import Stage
from pipeline.filters.code_quality import CodeQuality, ExtensionFilter, LicenseFilter, language_of
from pipeline.formats.files import PARQUET_ERRORS, json_rows
from pipeline.text.licenses import (
    PERMISSIVE,
    choose_license,
    detect_licenses,
    is_license_file,
    normalise_license_name,
)
from pipeline.transforms.strip_license_header import StripLicenseHeader

TABLE_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")
ROW_COLUMNS = ("repo_name", "path", "content", "license")
BINARY_SNIFF_BYTES = 8192
SKIPPED_FOLDERS = {".git", ".hg", ".svn"}


@dataclass
class GitHubConfig(SourceConfig):
    licenses: str = ",".join(PERMISSIVE)  # comma-separated SPDX ids to keep
    max_line_length: Count = 1000
    max_mean_line_length: Amount = 100.0
    min_alnum_fraction: Probability = 0.25
    max_file_bytes: Bytes = 1_000_000  # larger files are data, not code (BigQuery's limit too)
    strip_license_headers: bool = True


def _fs_and_base(path: str) -> tuple[fsspec.AbstractFileSystem, str, str]:
    fs, _, (base,) = fsspec.get_fs_token_paths(path)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    prefix = "" if protocol in ("file", "local") else f"{protocol}://"
    return fs, base, prefix


class GitHub(Source):
    name = "github"
    config_class = GitHubConfig
    patterns = ("<repository folder>/", *(f"*{s}" for s in TABLE_SUFFIXES))

    def list_inputs(self, root: str) -> list[str]:
        """Repository folders and table files directly under `root`: one input each."""
        fs, base, prefix = _fs_and_base(root)
        if not fs.exists(base):
            raise UserError(f"{root}: input path does not exist")
        if fs.isfile(base):
            return [root]
        found = []
        for entry in fs.ls(base, detail=True):
            name = entry["name"].rstrip("/")
            if entry["type"] == "directory" and name.rsplit("/", 1)[-1] not in SKIPPED_FOLDERS:
                found.append(prefix + name)
            elif entry["type"] == "file" and name.endswith(TABLE_SUFFIXES):
                found.append(prefix + name)
        return sorted(found)

    def fields(self) -> list[pa.Field]:
        return [pa.field(n, pa.string()) for n in ("repo", "path", "license", "language")]

    def allowed_licenses(self) -> tuple[str, ...]:
        return tuple(x.strip() for x in self.config.licenses.split(",") if x.strip())

    def stages(self) -> list[Stage]:
        c = self.config
        stages: list[Stage] = [
            LicenseFilter(self.allowed_licenses()),
            ExtensionFilter(),
            CodeQuality(c.max_line_length, c.max_mean_line_length, c.min_alnum_fraction),
        ]
        if c.strip_license_headers:
            stages.append(StripLicenseHeader())
        stages.append(ExactDedup())
        return stages

    def read(self, path: str) -> Iterator[Document | Skipped]:
        table = path.rstrip("/").rsplit("/", 1)[-1]
        if path.endswith((".jsonl", ".jsonl.gz")):
            yield from self._rows(table, self._jsonl_rows(path))
        elif path.endswith(".parquet"):
            yield from self._rows(table, enumerate(self._parquet_rows(path)))
        else:
            yield from self._repository(path)

    # Repository folders -------------------------------------------------------------------

    def _repository(self, folder: str) -> Iterator[Document | Skipped]:
        fs, base, _ = _fs_and_base(folder)
        if not fs.isdir(base):
            raise InputError(folder, "expected a repository folder")
        repo = base.rstrip("/").rsplit("/", 1)[-1]
        relative: list[tuple[str, int]] = []
        for info in sorted(fs.find(base, detail=True).values(), key=lambda info: info["name"]):
            rel = info["name"][len(base.rstrip("/")) + 1 :]
            if SKIPPED_FOLDERS.intersection(rel.split("/")[:-1]):
                continue
            if info.get("islink"):
                # A link can point anywhere (/etc/passwd, another repository): never followed.
                yield Skipped("symlink")
            elif info["type"] == "other":
                yield Skipped("special_file")  # a FIFO or device: reading it could block forever
            elif info["type"] == "file" and not storable(rel):
                # A name that is not UTF-8 (byte 0xff) arrives with lone surrogates, which no
                # id or path column can hold: the file is counted, as the engine counts such inputs.
                yield Skipped("file_name_not_utf8")
            elif info["type"] == "file":
                relative.append((rel, info.get("size") or 0))
        license_id = self._repository_license(fs, base, [p for p, _ in relative if "/" not in p])
        for rel, size in relative:
            if "/" not in rel and is_license_file(rel):
                yield Skipped("license_file")
                continue
            if size > self.config.max_file_bytes:
                yield Skipped("file_too_large")
                continue
            with fs.open(f"{base.rstrip('/')}/{rel}", "rb") as f:
                data = f.read(self.config.max_file_bytes + 1)
            yield self._file_document(repo, rel, data, license_id)

    def _repository_license(self, fs: fsspec.AbstractFileSystem, base: str, top_files: list[str]) -> str:
        """The licence of a repository from its top-level licence files. Dual-licensed
        projects (LICENSE-MIT beside LICENSE-APACHE, or both texts in one LICENSE) let users
        choose: the first allowed one wins."""
        found: list[str] = []
        files = [name for name in top_files if is_license_file(name)]
        for name in files:
            with fs.open(f"{base.rstrip('/')}/{name}", "rb") as f:
                found.extend(detect_licenses(f.read(200_000).decode("utf-8", "replace")))
        if not files:
            return "none"
        return choose_license(found, self.allowed_licenses())

    def _file_document(self, repo: str, rel: str, data: bytes, license_id: str) -> Document | Skipped:
        if b"\0" in data[:BINARY_SNIFF_BYTES]:
            return Skipped("binary_file")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return Skipped("not_utf8")
        meta = {"repo": repo, "path": rel, "license": license_id, "language": language_of(rel)}
        return Document(f"{repo}/{rel}", text, self.name, meta)

    # BigQuery-style rows ------------------------------------------------------------------

    def _jsonl_rows(self, path: str) -> Iterator[tuple[int, dict[str, Any]] | Skipped]:
        for item in json_rows(path):
            if isinstance(item, Skipped):
                yield item
            else:
                yield item if isinstance(item[1], dict) else Skipped("malformed_row")

    def _parquet_rows(self, path: str) -> Iterator[dict[str, Any]]:
        fs, base, _ = _fs_and_base(path)
        with fs.open(base, "rb") as f:
            try:
                table = pq.ParquetFile(f)
                names = set(table.schema_arrow.names)
            except PARQUET_ERRORS as e:
                raise InputError(path, f"not a readable Parquet file ({e})") from None
            missing = [c for c in ROW_COLUMNS if c not in names]
            if missing:
                raise InputError(path, f"Parquet file lacks the column(s) {missing}")
            columns = [c for c in (*ROW_COLUMNS, "binary") if c in names]
            batches = table.iter_batches(batch_size=1024, columns=columns)
            while True:  # a row group damaged past the footer ends the file here, its rows before kept
                try:
                    batch = next(batches, None)
                    rows = batch.to_pylist() if batch is not None else None  # invalid UTF-8 raises here
                except PARQUET_ERRORS as e:
                    raise InputError(path, f"a damaged row group, the rows before it kept ({e})") from None
                if rows is None:
                    return
                yield from rows

    def _rows(self, table: str, rows: Iterable[tuple[int, dict[str, Any]] | Skipped]) -> Iterator[Document | Skipped]:
        for item in rows:
            if isinstance(item, Skipped):
                yield item
                continue
            number, row = item
            repo, rel, content = row.get("repo_name"), row.get("path"), row.get("content")
            license_name = row.get("license")
            if not isinstance(repo, str) or not isinstance(rel, str):
                yield Skipped("missing_repo_or_path")
            elif row.get("binary") or content is None:
                yield Skipped("binary_file")
            elif not isinstance(content, str):
                yield Skipped("malformed_row")
            elif "\0" in content[:BINARY_SNIFF_BYTES]:
                yield Skipped("binary_file")
            elif len(content) > self.config.max_file_bytes:
                yield Skipped("file_too_large")
            elif license_name is not None and not isinstance(license_name, str):
                yield Skipped("malformed_license")  # BigQuery's column is one name: a list or number is not
            elif not storable(content, repo, rel):
                yield Skipped("invalid_unicode")
            else:
                license_id = normalise_license_name(license_name) if license_name else "none"
                meta = {"repo": repo, "path": rel, "license": license_id, "language": language_of(rel)}
                yield Document(f"{table}:{number}", content, self.name, meta)
