"""Token shards: the contract between `tokenizer encode` and the trainer.

`data/tokens/<source>/` holds, per split (`train`, `heldout`) and shard number NNNNN:

- `<split>-NNNNN.bin`: flat little-endian token ids, `uint16` when the vocabulary has at most
  65536 pieces, else `uint32`; every document stored as `[bos_id, ...ids..., eos_id]`.
- `<split>-NNNNN.idx`: little-endian int64, documents+1 entries: where each document starts
  (in tokens) in the matching .bin, and last the .bin's total number of tokens.
- `meta.json`: source, tokenizer path and sha256, vocab_size, dtype, bos_id, eos_id, and per
  split its documents, tokens and shards. The spec's shard entry,
  `{"tokens": "train-00000.bin", "index": "train-00000.idx", "documents": n, "tokens": t}`,
  repeats the key "tokens" and JSON keeps the last, so we write what a parser reads from it
  (`"tokens": t`) and name the .bin under `"bin"`: `{"bin": ..., "index": ..., "documents": n,
  "tokens": t}`. Readers take the .bin name from "bin", else from the index name.

Reading (what the trainer needs, nothing more):

    shards = TokenShards("data/tokens/c4", tokenizer="data/tokenizer/llama1.model")
    train = shards.split("train")
    train.documents, train.tokens     # counts from meta.json
    train.document(k)                 # the ids of document k, BOS and EOS included
    for tokens, offsets in train.shards: ...   # np.memmap of ids, int64 offsets

Passing `tokenizer` (or `tokenizer_sha256`) refuses shards encoded with another tokenizer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.common.errors import UserError
from pipeline.common.files import file_sha256

META = "meta.json"
SPLITS = ("train", "heldout")


def token_dtype(vocab_size: int) -> str:
    return "uint16" if vocab_size <= 65536 else "uint32"


def shard_names(split: str, number: int) -> tuple[str, str]:
    return f"{split}-{number:05d}.bin", f"{split}-{number:05d}.idx"


class TokenShardWriter:
    """Writes one `.bin`/`.idx` pair under temporary names; `close()` renames them.

    Documents are appended as id arrays that already hold BOS and EOS. Nothing is left under a
    final name until the pair is complete; a shard with no documents writes no files.
    """

    def __init__(self, folder: Path, split: str, number: int, dtype: str) -> None:
        self.bin_name, self.idx_name = shard_names(split, number)
        self.folder = Path(folder)
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.offsets: list[int] = [0]
        self._file = open(self.folder / f"{self.bin_name}.tmp", "wb")

    @property
    def documents(self) -> int:
        return len(self.offsets) - 1

    @property
    def tokens(self) -> int:
        return self.offsets[-1]

    def write(self, ids: np.ndarray, lengths: list[int] | np.ndarray) -> None:
        """Append several documents: `ids` concatenated, `lengths` tokens each."""
        self._file.write(np.ascontiguousarray(ids, dtype=self.dtype).tobytes())
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
        tmp_idx.write_bytes(np.asarray(self.offsets, dtype="<i8").tobytes())
        os.replace(tmp_bin, self.folder / self.bin_name)
        os.replace(tmp_idx, self.folder / self.idx_name)
        return {"bin": self.bin_name, "index": self.idx_name, "documents": self.documents, "tokens": self.tokens}

    def abort(self) -> None:
        try:
            self._file.close()  # fails again after a failed write (disk full); the file closes anyway
        finally:
            (self.folder / f"{self.bin_name}.tmp").unlink(missing_ok=True)
            (self.folder / f"{self.idx_name}.tmp").unlink(missing_ok=True)


@dataclass
class TokenSplit:
    """One split of a source: memory-mapped shards and their document offsets."""

    documents: int
    tokens: int
    shards: list[tuple[np.memmap, np.ndarray]]

    def __post_init__(self) -> None:
        self._first_doc = np.cumsum([0] + [len(offsets) - 1 for _, offsets in self.shards])

    def document(self, k: int) -> np.ndarray:
        """Ids of document k of the split (BOS and EOS included), counting across shards."""
        if not 0 <= k < self._first_doc[-1]:
            raise IndexError(f"document {k} out of range (0..{self._first_doc[-1] - 1})")
        shard = int(np.searchsorted(self._first_doc, k, side="right")) - 1
        tokens, offsets = self.shards[shard]
        local = k - self._first_doc[shard]
        return np.asarray(tokens[offsets[local]:offsets[local + 1]])


class TokenShards:
    """A source's token shards, checked against meta.json and, if given, the tokenizer."""

    def __init__(self, folder: Path | str, tokenizer: Path | str | None = None,
                 tokenizer_sha256: str | None = None) -> None:
        self.folder = Path(folder)
        path = self.folder / META
        if not path.exists():
            raise UserError(f"{path}: no token shards here (run `tokenizer encode`)")
        try:
            self.meta = json.loads(path.read_text())
        except ValueError as e:
            raise UserError(f"{path}: not valid JSON ({e})") from None
        if tokenizer is not None:
            tokenizer_sha256 = file_sha256(Path(tokenizer))
        if tokenizer_sha256 is not None:
            check_tokenizer(self.meta, tokenizer_sha256, str(tokenizer or tokenizer_sha256[:12]), self.folder)

    @property
    def dtype(self) -> str:
        return self.meta["dtype"]

    def split(self, name: str = "train") -> TokenSplit:
        entry = self.meta["splits"][name]
        shards = []
        for shard in entry["shards"]:
            offsets = np.fromfile(self.folder / shard["index"], dtype="<i8")
            bin_name = shard.get("bin") or shard["index"].removesuffix(".idx") + ".bin"
            tokens = np.memmap(self.folder / bin_name, dtype=np.dtype(self.dtype).newbyteorder("<"), mode="r")
            if len(offsets) != shard["documents"] + 1 or offsets[-1] != len(tokens):
                raise UserError(f"{self.folder / bin_name}: does not match its index {shard['index']} "
                                "(truncated or from another run)")
            shards.append((tokens, offsets))
        return TokenSplit(entry["documents"], entry["tokens"], shards)


def check_tokenizer(meta: dict, sha256: str, tokenizer: str, folder: Path) -> None:
    """Refuse to mix token shards with a tokenizer other than the one that wrote them."""
    if meta.get("tokenizer_sha256") != sha256:
        raise UserError(
            f"{folder}: encoded with tokenizer sha256 {str(meta.get('tokenizer_sha256'))[:12]} "
            f"({meta.get('tokenizer')}), but {tokenizer} has sha256 {sha256[:12]}: refusing to mix them "
            "(re-encode with `tokenizer encode --restart`, or use the tokenizer that wrote them)"
        )
