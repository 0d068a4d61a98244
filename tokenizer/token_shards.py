"""Token shards: the contract between `tokenizer encode` and the trainer.

`data/tokens/<source>/` holds, per split (`train`, `heldout`) and shard number NNNNN:

- `<split>-NNNNN.bin`: flat little-endian token ids, `uint16` when the vocabulary has at most
  65536 pieces, else `uint32`; every document stored as `[bos_id, ...ids..., eos_id]`.
- `<split>-NNNNN.idx`: little-endian int64, documents+1 entries: where each document starts
  (in tokens) in the matching .bin, and last the .bin's total number of tokens.
- `<split>-NNNNN.ids`: the corpus id of each document of the matching .bin, in order: an Arrow
  IPC file of one string column `id` (random access, memory-mapped). Provenance: `train data
  --trace` and `train --log-documents` name the documents a training window covers through it.
  Shards encoded before it existed have none; readers then report no documents.
- `meta.json`: source, tokenizer path and sha256, vocab_size, dtype, bos_id, eos_id, and per
  split its documents, tokens and shards. The spec's shard entry,
  `{"tokens": "train-00000.bin", "index": "train-00000.idx", "documents": n, "tokens": t}`,
  repeats the key "tokens" and JSON keeps the last, so we write what a parser reads from it
  (`"tokens": t`) and name the .bin under `"bin"`: `{"bin": ..., "index": ..., "documents": n,
  "tokens": t}`. Readers take the .bin name from "bin", else from the index name. A shard with
  document ids adds `"ids": "train-00000.ids", "ids_sha256": ...`; shards encoded since the
  sha256s were recorded add `"bin_sha256"` and `"index_sha256"` too. The writer seals the .bin and
  .idx (pipeline/common/files.py `seal`): a reader hashes one again only when it was written
  since (`open_shards`), so a shard overwritten in place is caught without hashing every shard
  of a run at every start.

Reading (what the trainer needs, nothing more):

    shards = TokenShards("data/tokens/c4", tokenizer="data/tokenizer/llama1.model")
    train = shards.split("train")
    train.documents, train.tokens     # counts from meta.json
    train.document(k)                 # the ids of document k, BOS and EOS included
    for shard in train.shards: shard.tokens, shard.offsets   # ids and int64 offsets, read by slices

The .bin and .idx are read by slices with `preadv` (pipeline/common/file_array.py `FileArray`),
not memory-mapped: a run over thousands of shards then holds no file descriptor and no mapping
per shard between reads (tested with 300 shards under a limit of 64 open files).

`read_meta` and `open_shards` are the one reader of this format: the trainer's data loader
(train/data.py), `train eval` and `pipeline mix` read token shards through them too.

Passing `tokenizer` (or `tokenizer_sha256`) refuses shards encoded with another tokenizer
(`check_tokenizer`); sources drawn together must share one (`check_same_tokenizer`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.common.errors import InputError, UserError
from pipeline.common.file_array import FileArray
from pipeline.common.files import file_sha256, plain_name, refuse_special_files, seal, sealed
from pipeline.engine import run_folder
from pipeline.engine.run_folder import WORK

META = "meta.json"
ENCODE_FIRST = "run `tokenizer encode` first"


def token_dtype(vocab_size: int) -> str:
    return "uint16" if vocab_size <= 65536 else "uint32"


def shard_names(split: str, number: int) -> tuple[str, str]:
    return f"{split}-{number:05d}.bin", f"{split}-{number:05d}.idx"


def ids_name(split: str, number: int) -> str:
    return f"{split}-{number:05d}.ids"


class TokenShardWriter:
    """Writes one `.bin`/`.idx` pair under temporary names; `close()` renames them.

    Documents are appended as id arrays that already hold BOS and EOS, with their corpus ids (the
    `.ids` sidecar). Nothing is left under a final name until the shard is complete; a shard with
    no documents writes no files.
    """

    def __init__(self, folder: Path, split: str, number: int, dtype: str) -> None:
        self.bin_name, self.idx_name = shard_names(split, number)
        self.folder = Path(folder)
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.ids_name = ids_name(split, number)
        self.offsets: list[int] = [0]
        self.document_ids: list[str] = []
        self._file = open(self.folder / f"{self.bin_name}.tmp", "wb")
        self._bin_sha256 = hashlib.sha256()  # of the bytes as they are written: no second read

    @property
    def documents(self) -> int:
        return len(self.offsets) - 1

    @property
    def tokens(self) -> int:
        return self.offsets[-1]

    def write(self, ids: np.ndarray, lengths: list[int] | np.ndarray, document_ids: list[str]) -> None:
        """Append several documents: `ids` concatenated, `lengths` tokens each, `document_ids` their
        corpus ids."""
        if len(document_ids) != len(lengths):
            raise ValueError(f"{len(document_ids)} document ids for {len(lengths)} documents")
        self.document_ids.extend(document_ids)
        data = np.ascontiguousarray(ids, dtype=self.dtype).tobytes()
        self._bin_sha256.update(data)
        self._file.write(data)
        ends = np.cumsum(lengths, dtype=np.int64) + self.offsets[-1]
        self.offsets.extend(ends.tolist())

    def close(self) -> dict | None:
        """Finish the pair; returns its meta.json entry, or None when it holds no documents."""
        self._file.close()
        tmp_bin = self.folder / f"{self.bin_name}.tmp"
        if not self.documents:
            tmp_bin.unlink()
            return None
        tmp_idx = self.folder / f"{self.idx_name}.tmp"
        # Not ndarray.tofile: a short write there raises an OSError without errno (disk full).
        index = np.asarray(self.offsets, dtype="<i8").tobytes()
        tmp_idx.write_bytes(index)
        tmp_ids = self.folder / f"{self.ids_name}.tmp"
        table = pa.table({"id": pa.array(self.document_ids, type=pa.string())})
        with pa.OSFile(str(tmp_ids), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        ids_sha256 = file_sha256(tmp_ids)
        bin_sha256, index_sha256 = self._bin_sha256.hexdigest(), hashlib.sha256(index).hexdigest()
        for tmp, sha256 in ((tmp_bin, bin_sha256), (tmp_idx, index_sha256)):
            seal(tmp, f"sha256:{sha256}")  # kept by the rename
        os.replace(tmp_bin, self.folder / self.bin_name)
        os.replace(tmp_idx, self.folder / self.idx_name)
        os.replace(tmp_ids, self.folder / self.ids_name)
        return {"bin": self.bin_name, "index": self.idx_name, "documents": self.documents, "tokens": self.tokens,
                "bin_sha256": bin_sha256, "index_sha256": index_sha256, "ids": self.ids_name, "ids_sha256": ids_sha256}

    def abort(self) -> None:
        try:
            self._file.close()  # fails again after a failed write (disk full); the file closes anyway
        finally:
            (self.folder / f"{self.bin_name}.tmp").unlink(missing_ok=True)
            (self.folder / f"{self.idx_name}.tmp").unlink(missing_ok=True)
            (self.folder / f"{self.ids_name}.tmp").unlink(missing_ok=True)


TOKEN_DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}


@dataclass(frozen=True)
class Shard:
    """One `.bin`/`.idx` pair: token ids and int64 document offsets, each read a slice at a time
    (pipeline/common/file_array.py): a run of the paper's corpus draws from some 18,000 shards,
    more than a process may hold open or mapped."""

    tokens: FileArray  # flat ids
    offsets: FileArray  # documents + 1 entries, the last one len(tokens)
    ids_path: Path | None = None  # the `.ids` sidecar, None for shards encoded before it existed
    ids_sha256: str = ""


def read_document_ids(shard: Shard, check_sha256: bool = True) -> pa.ChunkedArray | None:
    """The corpus ids of a shard's documents, in order; None when the shard has no `.ids` sidecar.
    Checked against meta.json's sha256 (unless `check_sha256` is False: checked already by this
    reader) and the index's document count (one InputError naming it). Memory-mapped, not
    copied: a trainer naming documents for a whole run touches every shard."""
    if shard.ids_path is None:
        return None
    if not shard.ids_path.is_file():
        raise InputError(str(shard.ids_path), "listed in meta.json but missing")
    if check_sha256 and shard.ids_sha256 and file_sha256(shard.ids_path) != shard.ids_sha256:
        raise InputError(str(shard.ids_path), "sha256 differs from meta.json's (damaged or from another encode)")
    try:  # the map stays open as long as the arrays that point into it
        ids = pa.ipc.open_file(pa.memory_map(str(shard.ids_path))).read_all().column("id")
    except (pa.ArrowInvalid, KeyError) as e:
        raise InputError(str(shard.ids_path), f"not an Arrow file of document ids ({e})") from None
    if len(ids) != len(shard.offsets) - 1:
        raise InputError(str(shard.ids_path), f"holds {len(ids)} ids for {len(shard.offsets) - 1} documents")
    return ids


def read_meta(folder: Path, source: str = "", hint: str = ENCODE_FIRST) -> dict[str, Any]:
    """A token-shard folder's meta.json; a missing folder, a missing file or bad JSON is one
    InputError naming it. Every reader of meta.json comes through here. `source` names the
    source in the line and `hint` says what to do instead (the trainer can skip a source)."""
    path = folder / META
    if not folder.is_dir():
        where = f"for source '{source}'" if source else "here"
        raise InputError(str(folder), f"no token shards {where} ({hint})")
    refuse_special_files(folder)  # a FIFO among the shards would block their reader for ever
    if not path.is_file():
        raise InputError(str(path), f"missing: not a token-shard folder ({hint})")
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(str(path), f"not valid JSON ({e})") from None


def is_encoded(folder: Path) -> bool:
    """Whether `tokenizer encode` finished this folder: it writes meta.json last."""
    return (folder / META).is_file()


def encode_unfinished(folder: Path) -> bool:
    """Whether a `tokenizer encode` started in this folder (its run folder's work files are there,
    pipeline/engine/run_folder.py) and has not written meta.json yet: killed, or still running."""
    return not is_encoded(folder) and (folder / WORK).is_dir()


def open_shards(folder: Path, meta: dict[str, Any], split: str) -> list[Shard]:
    """Every shard of `split`, each checked against its index and meta.json.

    Nothing is read but the index's last entry: a torn write (a .bin shorter than its index
    says, a size that is not whole ids) is caught here, before a training step reads past it.
    A .bin or .idx written since the encode sealed it, or small and holding no seal, is hashed,
    and refused when it is not what meta.json's sha256 says (`_check_as_encoded`).
    """
    meta_path = folder / META
    try:
        dtype = TOKEN_DTYPES[meta["dtype"]]
        entries = meta["splits"][split]["shards"]
    except (KeyError, TypeError) as e:
        raise InputError(str(meta_path), f"missing or wrong field {e} (see the token shard format)") from None
    shards = []
    for entry in entries:
        bin_path, idx_path = _shard_paths(folder, entry, meta_path)
        if not bin_path.is_file():
            raise InputError(str(bin_path), "listed in meta.json but missing")
        size = bin_path.stat().st_size
        if size % dtype.itemsize:
            raise InputError(str(bin_path), f"size {size} is not a multiple of {meta['dtype']}: truncated?")
        count = size // dtype.itemsize
        _check_as_encoded(bin_path, entry.get("bin_sha256"))
        offsets = _open_index(idx_path, count)
        _check_as_encoded(idx_path, entry.get("index_sha256"))
        documents = entry.get("documents")
        if isinstance(documents, int) and len(offsets) != documents + 1:
            raise InputError(str(idx_path), f"holds {len(offsets) - 1} documents but meta.json says {documents} "
                             "(truncated or from another run)")
        tokens = FileArray(bin_path, dtype, count)
        ids = entry.get("ids")
        shards.append(Shard(tokens, offsets, folder / ids if isinstance(ids, str) else None,
                            str(entry.get("ids_sha256", ""))))
    return shards


def _check_as_encoded(path: Path, sha256: object) -> None:
    """One InputError when `path` was written since `tokenizer encode` sealed it, or holds no seal
    and is small (`run_folder.CHEAP_TO_HASH`: a copy made without extended attributes, or a
    file system without them), and its sha256 is no longer meta.json's: a shard overwritten in
    place, or damaged in a copy, is refused before a step trains on it. A file as sealed is not
    read, however small (a run of many small shards starts at once, and every resume starts
    again), nor is a large one that holds no seal: its sizes are what is checked then, and
    `tokenizer verify` reads every byte."""
    if not isinstance(sha256, str) or not sha256:
        return
    state = sealed(path, f"sha256:{sha256}")
    if state is False or (state is None and path.stat().st_size <= run_folder.CHEAP_TO_HASH):
        if file_sha256(path) != sha256:
            raise InputError(str(path), "sha256 differs from meta.json's (damaged since `tokenizer encode` wrote "
                             "it, or from another encode)")


def _shard_paths(folder: Path, entry: dict[str, Any], meta_path: Path) -> tuple[Path, Path]:
    """The .bin and .idx of one meta.json shard entry.

    The spec's entry names the .bin under "tokens" and also gives the token count under "tokens";
    JSON keeps only the last of duplicate keys, so when "tokens" is a number the .bin's name is
    taken from a "bin" key or from the index's ("train-00000.idx" -> "train-00000.bin").
    """
    index = entry.get("index") if isinstance(entry, dict) else None
    if not isinstance(index, str):
        raise InputError(str(meta_path), f"shard entry without an 'index' file name: {entry}")
    name = entry.get("tokens")
    if not isinstance(name, str):
        name = entry.get("bin") or (index[:-len(".idx")] + ".bin" if index.endswith(".idx") else None)
    if not name:
        raise InputError(str(meta_path), f"shard entry without a .bin file name: {entry}")
    for listed in (name, index):  # never a read outside the folder ("/etc/passwd", "../../x")
        if not plain_name(listed):
            raise InputError(str(meta_path), f"shard file {listed!r} is not a file name in its folder")
    return folder / name, folder / index


def _open_index(idx_path: Path, tokens: int) -> FileArray:
    """The index; its last entry must be the .bin's token count (else a torn write)."""
    if not idx_path.is_file():
        raise InputError(str(idx_path), "listed in meta.json but missing")
    size = idx_path.stat().st_size
    if size < 8 or size % 8:
        raise InputError(str(idx_path), f"size {size} is not a whole int64 array: truncated?")
    offsets = FileArray(idx_path, np.dtype("<i8"), size // 8)
    if int(offsets[-1]) != tokens:
        raise InputError(str(idx_path), f"ends at token {int(offsets[-1])} but its .bin holds {tokens} tokens")
    return offsets


@dataclass
class TokenSplit:
    """One split of a source: its shards and their document offsets."""

    documents: int
    tokens: int
    shards: list[Shard]

    def __post_init__(self) -> None:
        self._first_doc = np.cumsum([0] + [len(shard.offsets) - 1 for shard in self.shards])

    def document(self, k: int) -> np.ndarray:
        """Ids of document k of the split (BOS and EOS included), counting across shards."""
        if not 0 <= k < self._first_doc[-1]:
            raise IndexError(f"document {k} out of range (0..{self._first_doc[-1] - 1})")
        number = int(np.searchsorted(self._first_doc, k, side="right")) - 1
        shard = self.shards[number]
        local = k - self._first_doc[number]
        return np.asarray(shard.tokens[shard.offsets[local]:shard.offsets[local + 1]])


class TokenShards:
    """A source's token shards, checked against meta.json and, if given, the tokenizer."""

    def __init__(self, folder: Path | str, tokenizer: Path | str | None = None,
                 tokenizer_sha256: str | None = None) -> None:
        self.folder = Path(folder)
        self.meta = read_meta(self.folder)
        if tokenizer is not None:
            tokenizer_sha256 = file_sha256(Path(tokenizer))
        if tokenizer_sha256 is not None:
            check_tokenizer(self.meta, tokenizer_sha256, str(tokenizer or tokenizer_sha256[:12]), self.folder)

    @property
    def dtype(self) -> str:
        return self.meta["dtype"]

    def split(self, name: str = "train") -> TokenSplit:
        entry = self.meta["splits"][name]
        return TokenSplit(entry["documents"], entry["tokens"], open_shards(self.folder, self.meta, name))


def check_tokenizer(meta: dict, sha256: str, tokenizer: str, folder: Path) -> None:
    """Refuse to mix token shards with a tokenizer other than the one that wrote them."""
    if meta.get("tokenizer_sha256") != sha256:
        raise UserError(
            f"{folder}: encoded with tokenizer sha256 {str(meta.get('tokenizer_sha256'))[:12]} "
            f"({meta.get('tokenizer')}), but {tokenizer} has sha256 {sha256[:12]}: refusing to mix them "
            "(re-encode with `tokenizer encode --restart`, or use the tokenizer that wrote them)"
        )


def check_same_tokenizer(metas: dict[Path, dict[str, Any]]) -> None:
    """Refuse to mix sources whose token shards (folder -> meta.json) come from different tokenizers.

    Token ids and counts of two tokenizers mean different things: vocab_size, dtype and
    tokenizer_sha256 must all agree with the first folder's, else one InputError names both.
    """
    if not metas:  # nothing encoded yet: nothing to mix
        return
    first, *others = metas
    for folder in others:
        for key in ("vocab_size", "dtype", "tokenizer_sha256"):
            found, expected = metas[folder].get(key), metas[first].get(key)
            if found != expected:
                raise InputError(str(folder / META),
                                 f"{key} {found!r} differs from {first.name}'s {expected!r}: sources must share "
                                 "one tokenizer, refusing to mix them (re-encode with `tokenizer encode --restart`)")
