"""CCNet line-level deduplication as a global stage.

Semantics (CCNet, Wenzek et al. 2020, and cc_net's dedup.py): each document is split on "\\n"; each line is normalised
(`pipeline.text.normalize.dedup_lines`: CCNet's form, or a stricter one) and keyed by the first 8 bytes of its
SHA-1. A line whose
key occurs in more than one document of the hashed inputs is removed from every document,
its first occurrence included; a line repeated inside one document is kept once (its first
occurrence), unless another document has it too. Lines with no content after normalisation
are removed. A document left with no line is dropped as `empty_after_dedup`.

Two passes. The hash pass (`collect`) turns each input file's documents into one sorted
uint64 array of the distinct keys per document plus the keys already repeated inside that
file; `merge` joins the files of each group into the sorted array of keys seen in two or
more documents. That array is the whole hash set: 8 bytes per key (CCNet's flat hash map
needed about 27 bytes per key). The filter pass (`process`) looks lines up with one
`searchsorted` per batch of documents.

Groups never span two snapshots (the metadata field `snapshot_field`): CCNet deduplicates
each shard against the 50 shards of its group within one snapshot, so a page recrawled
unchanged in the next snapshot keeps its lines there. Within a snapshot, `span_files` sets
how many input files a hash set spans (CCNet: 50 of 1600); 0 spans the whole snapshot. Files
are grouped in sorted order of their name, taken from the metadata field `file_field`.

With `one_copy_per_page`, RedPajama's step after CCNet rides the same two passes: of all
pages with the same raw text (before any line is removed), across snapshots, the one with
the smallest id is kept and the others are dropped as `duplicate_page`. The hash pass sees
every page, as CCNet's did, so a copy dropped still counts in its snapshot's line dedup; and
no pass over the corpus is added for it.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from pipeline.dedup.exact import Winners, keep_smallest, merge_first_ids, text_hash, write_first_ids
from pipeline.engine.document import Document
from pipeline.engine.stage import GlobalStage, Result
from pipeline.text.normalize import dedup_lines

KEY_BYTES = 8
ZERO_KEY = bytes(KEY_BYTES)  # stands in for lines without content; never looked at
EMPTY_REASON = "empty_after_dedup"
DUPLICATE_PAGE = "duplicate_page"


def line_keys(text: str, strict: bool = False) -> list[bytes]:
    """The 8-byte key of each line of `text` (aligned with `text.split("\\n")`); b"" for a line without content."""
    sha1 = hashlib.sha1
    return [sha1(line).digest()[:KEY_BYTES] if line else b"" for line in dedup_lines(text, strict)]


def _sorted_keys(buffer: bytearray) -> np.ndarray:
    keys = np.frombuffer(buffer, dtype="<u8")  # a view: sorted in place, no copy
    keys.sort()
    return keys


def _repeated_blocks(sorted_keys: np.ndarray, block: int = 1 << 16) -> list[np.ndarray]:
    """Keys occurring at least twice in a sorted array, each once, as sorted pieces (their
    concatenation is sorted). Compared block by block so that the comparison mask stays
    small, and returned in pieces so the caller can free the input before joining them."""
    pieces: list[np.ndarray] = []
    last = None
    for start in range(0, max(len(sorted_keys) - 1, 0), block):
        right = sorted_keys[start + 1 : start + 1 + block]
        left = sorted_keys[start : start + len(right)]
        twice = right[left == right]
        if len(twice) > 1:  # a key seen 3+ times appears more than once: keep one
            twice = twice[np.concatenate(([True], twice[1:] != twice[:-1]))]
        if len(twice) and last is not None and twice[0] == last:  # it spans two blocks
            twice = twice[1:]
        if len(twice):
            pieces.append(twice)
            last = twice[-1]
    return pieces


def _repeated(sorted_keys: np.ndarray) -> np.ndarray:
    """Keys occurring at least twice in a sorted array, each once."""
    pieces = _repeated_blocks(sorted_keys)
    return np.concatenate(pieces) if pieces else np.empty(0, dtype="<u8")


class LineDedup(GlobalStage):
    name = "line_dedup"

    def __init__(self, span_files: int = 0, file_field: str = "warc_file", snapshot_field: str = "snapshot",
                 strict: bool = False, one_copy_per_page: bool = False) -> None:
        if span_files < 0:
            raise ValueError("span_files must be 0 (the whole snapshot) or a positive number of files")
        self.span_files = span_files
        self.one_copy_per_page = one_copy_per_page
        self.strict = strict  # the stricter normal form (pipeline.text.normalize), not CCNet's
        self.file_field = file_field
        self.snapshot_field = snapshot_field

    def setup(self) -> None:
        self._group_of: dict[str, int] = {}
        self._artefact: Path | None = None
        self._loaded_group = -1
        self._duplicates = np.empty(0, dtype="<u8")
        self._pages = Winners()  # the id kept of each page text

    # --- hash pass ------------------------------------------------------------------------

    def collect(self, docs: Iterable[Document], partial: Path) -> None:
        per_file: dict[str, bytearray] = defaultdict(bytearray)
        snapshot_of: dict[str, str] = {}
        first_ids: dict[bytes, str] = {}
        for doc in docs:
            if self.one_copy_per_page:
                keep_smallest(first_ids, text_hash(doc.text), doc.id)
            distinct = set(line_keys(doc.text, self.strict))
            distinct.discard(b"")
            file_name = self._file_key(doc)
            per_file[file_name].extend(b"".join(distinct))
            snapshot_of[file_name] = str(doc.meta.get(self.snapshot_field) or "")
        partial.mkdir(parents=True)
        index = {}
        for number, (file_name, buffer) in enumerate(sorted(per_file.items())):
            keys = _sorted_keys(buffer)
            # Distinct keys of the file, and those already in two documents of it.
            np.save(partial / f"{number}-keys.npy", np.unique(keys))
            np.save(partial / f"{number}-repeated.npy", _repeated(keys))
            index[file_name] = [number, snapshot_of[file_name]]
        (partial / "index.json").write_text(json.dumps(index))
        if self.one_copy_per_page:
            write_first_ids(partial / "pages.arrow", first_ids)

    def merge(self, partials: list[Path], artefact: Path) -> None:
        # A file is normally read by one task; lists keep this right when it is not.
        files: dict[str, list[tuple[Path, int]]] = defaultdict(list)
        snapshots: dict[str, set[str]] = defaultdict(set)
        for partial in partials:
            for file_name, (number, snapshot) in json.loads((partial / "index.json").read_text()).items():
                files[file_name].append((partial, number))
                snapshots[snapshot].add(file_name)
        groups: list[list[str]] = []
        for snapshot in sorted(snapshots):
            names = sorted(snapshots[snapshot])
            span = self.span_files or len(names)
            groups += [names[i : i + span] for i in range(0, len(names), span)]
        for group_number, group in enumerate(groups):
            members = [member for name in group for member in files[name]]
            np.save(artefact / f"group-{group_number:05d}.npy", self._group_duplicates(members))
        if self.one_copy_per_page:
            merge_first_ids([partial / "pages.arrow" for partial in partials], artefact / "pages.npy")
        group_of = {name: g for g, group in enumerate(groups) for name in group}
        (artefact / "groups.json").write_text(json.dumps(group_of))

    @staticmethod
    def _group_duplicates(files: list[tuple[Path, int]]) -> np.ndarray:
        """Keys in two or more documents of the group: repeated across files or inside one."""
        paths = [partial / f"{number}-keys.npy" for partial, number in files]
        sizes = [np.load(p, mmap_mode="r").shape[0] for p in paths]
        # One allocation filled file by file and sorted in place: the peak stays near 8 bytes
        # per key plus one file's array, instead of twice the group as concatenate would need.
        joined = np.empty(sum(sizes), dtype="<u8")
        offset = 0
        for path, size in zip(paths, sizes):
            joined[offset : offset + size] = np.load(path, mmap_mode="r")
            offset += size
        joined.sort()
        pieces = _repeated_blocks(joined)
        del joined
        across = np.concatenate(pieces) if pieces else np.empty(0, dtype="<u8")
        del pieces
        inside = [a for a in (np.load(p / f"{n}-repeated.npy") for p, n in files) if len(a)]
        return np.unique(np.concatenate([across, *inside])) if inside else across

    def load(self, artefact: Path) -> None:
        self._artefact = artefact
        self._group_of = json.loads((artefact / "groups.json").read_text())
        self._loaded_group = -1
        if self.one_copy_per_page:
            self._pages = Winners(artefact / "pages.npy")

    def _file_key(self, doc: Document) -> str:
        # Two snapshots may hold files of the same name: the snapshot is part of the key.
        return f"{doc.meta.get(self.snapshot_field) or ''}/{doc.meta.get(self.file_field, '')}"

    def _group(self, doc: Document) -> int:
        return self._group_of.get(self._file_key(doc), 0)

    def _load_group(self, group: int) -> np.ndarray:
        # Documents arrive file by file, so holding one group's array at a time suffices.
        if group != self._loaded_group:
            assert self._artefact is not None, "load() must run before process()"
            self._duplicates = np.load(self._artefact / f"group-{group:05d}.npy")
            self._loaded_group = group
        return self._duplicates

    # --- filter pass ----------------------------------------------------------------------

    def process(self, doc: Document) -> Result:
        return self.process_batch([doc])[0]

    def process_batch(self, docs: list[Document]) -> list[Result]:
        if not self.one_copy_per_page:
            return self._remove_lines(docs)
        copies = [not self._pages.wins(text_hash(doc.text), doc.id) for doc in docs]
        deduplicated = iter(self._remove_lines([doc for doc, copy in zip(docs, copies) if not copy]))
        return [DUPLICATE_PAGE if copy else next(deduplicated) for copy in copies]

    def _remove_lines(self, docs: list[Document]) -> list[Result]:
        per_doc = [line_keys(doc.text, self.strict) for doc in docs]
        flags = self._flag_duplicates(docs, per_doc)
        results: list[Result] = []
        for doc, keys, duplicate in zip(docs, per_doc, flags):
            if not any(duplicate) and b"" not in keys and len(set(keys)) == len(keys):
                results.append(doc)  # nothing to remove: skip splitting and joining the text
                continue
            kept, seen = [], set()
            for line, key, is_duplicate in zip(doc.text.split("\n"), keys, duplicate):
                if not key or is_duplicate or key in seen:
                    continue
                seen.add(key)
                kept.append(line)
            if not kept:
                results.append(EMPTY_REASON)
                continue
            doc.text = "\n".join(kept)
            results.append(doc)
        return results

    def _flag_duplicates(self, docs: list[Document], per_doc: list[list[bytes]]) -> list[list[bool]]:
        """For each line of each document: is its key in the hash set of the document's group?
        One `searchsorted` per group present in the batch (a batch is almost always one file)."""
        flags: list[list[bool]] = [[] for _ in docs]
        by_group: dict[int, list[int]] = defaultdict(list)
        for i, doc in enumerate(docs):
            by_group[self._group(doc)].append(i)
        for group, members in by_group.items():
            duplicates = self._load_group(group)
            packed = np.frombuffer(b"".join(k or ZERO_KEY for i in members for k in per_doc[i]), dtype="<u8")
            if len(duplicates) and len(packed):
                where = np.searchsorted(duplicates, packed).clip(max=len(duplicates) - 1)
                found = (duplicates[where] == packed).tolist()
            else:
                found = [False] * len(packed)
            offset = 0
            for i in members:
                flags[i] = found[offset : offset + len(per_doc[i])]
                offset += len(per_doc[i])
        return flags
