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
more documents, bucket by bucket on all the driver's cores (pipeline/dedup/line_groups.py).
That array is the whole hash set: 8 bytes per key (CCNet's flat hash map
needed about 27 bytes per key). The filter pass (`process`) looks lines up with one
`searchsorted` per batch of documents.

Groups never span two snapshots (the metadata field `snapshot_field`): CCNet deduplicates
each shard against the 50 shards of its group within one snapshot, so a page recrawled
unchanged in the next snapshot keeps its lines there. Within a snapshot, `span_files` sets
how many input files a hash set spans (CCNet: 50 of 1600); 0 spans the whole snapshot. Files
are grouped in sorted order of their name, taken from the metadata field `file_field`.

The keys are computed once. The hash pass's `annotate` keeps each page's line keys (and,
with `one_copy_per_page`, its text hash) in carried fields that travel through the pass's Arrow
parts (GlobalStage.carried_fields, never in a shard); the filter pass reads them instead of
normalising and hashing every line again, and computes them only for a page that lacks them
(parts written by an older herd, a direct call).

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
from dataclasses import dataclass
from itertools import compress, islice
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.common.sorted_arrays import distinct, load_mapped, repeated, union
from pipeline.dedup.exact import Winners, keep_smallest, merge_first_ids, text_hash, write_first_ids
from pipeline.dedup.line_groups import write_group_duplicates
from pipeline.engine.document import Document
from pipeline.engine.stage import GlobalStage, Result
from pipeline.engine.supervisor import usable_cores
from pipeline.text.normalize import dedup_lines

KEY_BYTES = 8
# Carried fields: a page's line keys (KEY_BYTES each) followed by one byte per line saying
# whether it has content, and its text hash (pipeline/dedup/exact.py text_hash).
CARRIED_KEYS = "_line_keys"
CARRIED_HASH = "_page_hash"
ZERO_KEY = bytes(KEY_BYTES)  # stands in for lines without content (BatchKeys.content says which)
EMPTY_REASON = "empty_after_dedup"
DUPLICATE_PAGE = "duplicate_page"
COLLECT_BATCH = 256  # documents whose lines the hash pass keys at once
# Page hashes a task of the hash pass holds before writing them (about 150 MB): a task's first ids
# are written in runs of this many, each sorted, and the merge folds them all.
FIRST_IDS_HELD = 1 << 20


@dataclass
class BatchKeys:
    """The line keys of a batch of texts, as arrays over all their lines in order."""

    keys: np.ndarray  # uint64, one per line (0 where the line has no content)
    content: np.ndarray  # bool: the line has content
    doc: np.ndarray  # the index of the line's text in the batch
    counts: list[int]  # lines per text

    def first_in_doc(self) -> np.ndarray:
        """bool per line: a line with content whose key no earlier line of its text has."""
        order = np.lexsort((self.keys, self.doc))  # stable: by text, then key, then position
        keys, docs = self.keys[order], self.doc[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (keys[1:] != keys[:-1]) | (docs[1:] != docs[:-1])
        unsorted = np.empty_like(first)
        unsorted[order] = first
        return unsorted & self.content


def batch_line_keys(texts: list[str], strict: bool = False) -> BatchKeys:
    """The key of every line of a batch of texts (aligned with each `text.split("\\n")`): the first
    8 bytes of the SHA-1 of its normal form (`dedup_lines`), as CCNet keys lines. Computed over
    the texts joined by newlines: each line's normal form depends on that line alone
    (pipeline.text.normalize), so joining changes no key and spares the per-text calls. Texts of ASCII and the others are joined apart, so that one
    page with an accent does not send the whole batch down the slower exact path."""
    counts = [text.count("\n") + 1 for text in texts]
    ascii_texts = [text.isascii() for text in texts]
    lines: list[bytes] = []
    if all(ascii_texts) or not any(ascii_texts):
        lines = dedup_lines("\n".join(texts), strict)
    else:
        plain = iter(dedup_lines("\n".join(t for t, a in zip(texts, ascii_texts) if a), strict))
        other = iter(dedup_lines("\n".join(t for t, a in zip(texts, ascii_texts) if not a), strict))
        for count, is_ascii in zip(counts, ascii_texts):
            lines.extend(islice(plain if is_ascii else other, count))
    sha1 = hashlib.sha1
    packed = b"".join([sha1(line).digest()[:KEY_BYTES] if line else ZERO_KEY for line in lines])
    return BatchKeys(
        keys=np.frombuffer(packed, dtype="<u8"),
        content=np.fromiter(map(len, lines), dtype=np.int64, count=len(lines)) > 0,
        doc=np.repeat(np.arange(len(texts)), counts),
        counts=counts,
    )


def carried_line_keys(lines: BatchKeys) -> list[bytes]:
    """Each text's keys and content flags as one bytes value (CARRIED_KEYS), from a batch's keys."""
    keys, content = lines.keys.tobytes(), lines.content.tobytes()
    carried, start = [], 0
    for count in lines.counts:
        end = start + count
        carried.append(keys[start * KEY_BYTES : end * KEY_BYTES] + content[start:end])
        start = end
    return carried


def batch_keys_of(carried: list[bytes]) -> BatchKeys | None:
    """The BatchKeys of texts from their carried values (`carried_line_keys`); None when one is
    not such a value (its length is no whole number of lines)."""
    if any(len(value) % (KEY_BYTES + 1) for value in carried):
        return None
    counts = [len(value) // (KEY_BYTES + 1) for value in carried]
    keys = b"".join([value[: count * KEY_BYTES] for value, count in zip(carried, counts)])
    content = b"".join([value[count * KEY_BYTES :] for value, count in zip(carried, counts)])
    return BatchKeys(
        keys=np.frombuffer(keys, dtype="<u8"),
        content=np.frombuffer(content, dtype=np.bool_),
        doc=np.repeat(np.arange(len(carried)), counts),
        counts=counts,
    )


def _sorted_keys(buffer: bytearray) -> np.ndarray:
    keys = np.frombuffer(buffer, dtype="<u8")  # a view: sorted in place, no copy
    keys.sort()
    return keys


class _KeysByFile:
    """The hash pass's keys of one task, per input file: each file's written (its distinct keys,
    and those already in two of its documents) as soon as its documents have all come, so that
    a task holds one file's keys, not every file's (a task of 150 WET files held about 2 GB)."""

    def __init__(self, partial: Path) -> None:
        self.partial = partial
        self.snapshot_of: dict[str, str] = {}
        self._buffers: dict[str, bytearray] = {}  # the keys of each document of a file being read
        self._index: dict[str, list] = {}  # file -> [its number, its snapshot]: index.json

    def add(self, file_name: str, keys: np.ndarray) -> None:
        self._buffers.setdefault(file_name, bytearray()).extend(keys.tobytes())

    def write_all_but(self, current: str) -> None:
        for file_name in [name for name in self._buffers if name != current]:
            self._write(file_name)

    def close(self) -> None:
        for file_name in list(self._buffers):
            self._write(file_name)
        (self.partial / "index.json").write_text(json.dumps(self._index))

    def _write(self, file_name: str) -> None:
        keys = _sorted_keys(self._buffers.pop(file_name))
        if file_name in self._index:
            # The file's documents came in two runs (a task reads a file at once: not seen). Its
            # earlier distinct keys count once each beside the new documents' keys.
            number = self._index[file_name][0]
            earlier = np.load(self.partial / f"{number}-keys.npy")
            inside = np.load(self.partial / f"{number}-repeated.npy")
            keys = np.concatenate([earlier, keys])
            keys.sort()
            twice = union(inside, repeated(keys))
        else:
            number = len(self._index)
            twice = repeated(keys)
        np.save(self.partial / f"{number}-keys.npy", distinct(keys))
        np.save(self.partial / f"{number}-repeated.npy", twice)
        self._index[file_name] = [number, self.snapshot_of.get(file_name, "")]


class LineDedup(GlobalStage):
    name = "line_dedup"
    state_in_memory = False  # the hash pass writes each file's keys as it ends (`_KeysByFile`)

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

    def carried_fields(self) -> list[pa.Field]:
        fields = [pa.field(CARRIED_KEYS, pa.binary())]
        return fields + [pa.field(CARRIED_HASH, pa.binary(16))] if self.one_copy_per_page else fields

    def annotate(self, docs: list[Document]) -> None:
        lines = batch_line_keys([doc.text for doc in docs], self.strict)
        for doc, carried in zip(docs, carried_line_keys(lines)):
            doc.meta[CARRIED_KEYS] = carried
        if self.one_copy_per_page:
            for doc in docs:
                doc.meta[CARRIED_HASH] = text_hash(doc.text)

    def _keys(self, docs: list[Document], carried: list[bytes | None]) -> BatchKeys:
        """The batch's line keys: from what `annotate` carried, or computed when a page has none or
        its carried keys do not count its lines (the parts carry no checksum: damage there must
        not remove the wrong lines)."""
        texts = [doc.text for doc in docs]
        lines = None if None in carried else batch_keys_of(carried)  # type: ignore[arg-type]
        if lines is not None and lines.counts == [text.count("\n") + 1 for text in texts]:
            return lines
        return batch_line_keys(texts, self.strict)

    def _hashes(self, docs: list[Document], carried: list[bytes | None]) -> list[bytes]:
        """Each page's text hash: carried by `annotate`, or computed."""
        return [text_hash(doc.text) if value is None else value for doc, value in zip(docs, carried)]

    @staticmethod
    def _carried(docs: list[Document], field: str, pop: bool) -> list[bytes | None]:
        """Each page's carried `field`, None where it has none; removed from the pages when `pop`."""
        return [doc.meta.pop(field, None) if pop else doc.meta.get(field) for doc in docs]

    def collect(self, docs: Iterable[Document], partial: Path) -> None:
        partial.mkdir(parents=True)
        by_file = _KeysByFile(partial)
        first_ids: dict[bytes, str] = {}
        runs = 0  # files of first ids written
        docs = iter(docs)
        while batch := list(islice(docs, COLLECT_BATCH)):
            if self.one_copy_per_page:
                for doc, hash_ in zip(batch, self._hashes(batch, self._carried(batch, CARRIED_HASH, pop=False))):
                    keep_smallest(first_ids, hash_, doc.id)
                if len(first_ids) >= FIRST_IDS_HELD:
                    write_first_ids(partial / f"pages-{runs}.arrow", first_ids)
                    first_ids, runs = {}, runs + 1
            lines = self._keys(batch, self._carried(batch, CARRIED_KEYS, pop=False))
            first = lines.first_in_doc()  # each text's distinct keys, once
            file_of_doc = [self._file_key(doc) for doc in batch]
            files = dict.fromkeys(file_of_doc)  # a batch is almost always one file
            for file_name in files:
                if len(files) > 1:
                    in_file = np.array([name == file_name for name in file_of_doc])
                    mine = first & in_file[lines.doc]
                else:
                    mine = first
                by_file.add(file_name, lines.keys[mine])
            for doc, file_name in zip(batch, file_of_doc):
                by_file.snapshot_of[file_name] = str(doc.meta.get(self.snapshot_field) or "")
            by_file.write_all_but(file_of_doc[-1])  # a file's documents come one after another
        by_file.close()
        if self.one_copy_per_page:
            write_first_ids(partial / f"pages-{runs}.arrow", first_ids)

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
            write_group_duplicates(members, artefact / f"group-{group_number:05d}.npy", usable_cores())
        if self.one_copy_per_page:
            # pages.arrow: a task's one file of an older herd.
            pages = [path for partial in partials for path in sorted(partial.glob("pages*.arrow"))]
            merge_first_ids(pages, artefact / "pages.npy", usable_cores())
        group_of = {name: g for g, group in enumerate(groups) for name in group}
        (artefact / "groups.json").write_text(json.dumps(group_of))

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
            # Memory-mapped: every worker of a node shares one copy (a group of CCNet's size
            # holds a few GB of duplicate keys).
            self._duplicates = load_mapped(self._artefact / f"group-{group:05d}.npy")
            self._loaded_group = group
        return self._duplicates

    # --- filter pass ----------------------------------------------------------------------

    def process(self, doc: Document) -> Result:
        return self.process_batch([doc])[0]

    def process_batch(self, docs: list[Document]) -> list[Result]:
        # The carried fields leave every page here, the dropped too: no shard holds them.
        hashes = self._hashes(docs, self._carried(docs, CARRIED_HASH, pop=True)) if self.one_copy_per_page else []
        carried = self._carried(docs, CARRIED_KEYS, pop=True)
        if not self.one_copy_per_page:
            return self._remove_lines(docs, self._keys(docs, carried))
        won = self._pages.wins_many(hashes, [doc.id for doc in docs])
        kept = [(doc, value) for doc, value, first in zip(docs, carried, won) if first]
        kept_docs, kept_carried = [doc for doc, _ in kept], [value for _, value in kept]
        deduplicated = iter(self._remove_lines(kept_docs, self._keys(kept_docs, kept_carried)))
        return [next(deduplicated) if first else DUPLICATE_PAGE for first in won]

    def _remove_lines(self, docs: list[Document], lines: BatchKeys) -> list[Result]:
        if not docs:
            return []
        # A line stays when it has content, its key is in no other document of the group, and
        # no earlier line of its document has the key.
        keep = lines.first_in_doc() & ~self._duplicates_of(docs, lines)
        kept_per_doc = np.bincount(lines.doc, weights=keep, minlength=len(docs)).astype(np.int64).tolist()
        keep_list = keep.tolist()
        results: list[Result] = []
        offset = 0
        for doc, count, kept in zip(docs, lines.counts, kept_per_doc):
            start, offset = offset, offset + count
            if kept == count:
                results.append(doc)  # nothing to remove: skip splitting and joining the text
            elif kept == 0:
                results.append(EMPTY_REASON)
            else:
                doc.text = "\n".join(compress(doc.text.split("\n"), keep_list[start:offset]))
                results.append(doc)
        return results

    def _duplicates_of(self, docs: list[Document], lines: BatchKeys) -> np.ndarray:
        """bool per line: its key is in the hash set of its document's group. One `searchsorted`
        per group present in the batch (a batch is almost always one file)."""
        groups = [self._group(doc) for doc in docs]
        found = np.zeros(len(lines.keys), dtype=bool)
        for group in dict.fromkeys(groups):
            duplicates = self._load_group(group)
            if not len(duplicates):
                continue
            mine = np.array([g == group for g in groups])[lines.doc] if len(set(groups)) > 1 else slice(None)
            keys = lines.keys[mine]
            where = np.searchsorted(duplicates, keys).clip(max=len(duplicates) - 1)
            found[mine] = duplicates[where] == keys
        return found
