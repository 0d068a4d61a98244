"""Book-level near-duplicate removal: MinHash LSH (datasketch) over word shingles.

The LLaMA paper removes books with more than 90% content overlap. What "overlap" means
matters, because the two ways books differ hit shingles very differently:
- an edition with scattered edits (5% of words changed) breaks every shingle that touches a
  changed word: with word 5-grams only 0.95^5 = 77% of shingles survive (Jaccard 0.63), so a
  plain Jaccard threshold either misses it or also removes texts sharing far less;
- a text sharing whole passages (half of the book) keeps all shingles inside them.

So the detector estimates the share of *words* two books have in common, whatever the kind of
difference. It keeps one MinHash signature per shingle size k = 3..8 words, each shingle
tagged with its occurrence number (the 2nd "of the old" differs from the 1st, so repeated
phrases count as often as they occur). The shared fraction of k-gram shingles,
f_k = 2J/(1+J) from the Jaccard estimate J, follows f_k = (1-b)(1-p)^k for a fraction b of
unshared passages and a per-word edit rate p; a least-squares line through log f_k against k
gives both, and the word overlap w = (1-b)(1-p). A pair is a near-duplicate when w > 0.9.
Candidates come from LSH on the 3-gram signature at a Jaccard threshold (0.4) low enough for
the hardest true case (every 10th word changed: J3 = 0.57); each candidate is then verified
with the estimate. bench/near_dedup.py measures precision and recall on generated pairs from
50% to 99% overlap.

Which copy survives is deterministic: books are visited longest first (most words, then
smallest id) and each is dropped if it is a near-duplicate of a book already kept. The length
is the cleaned text's, as this stage sees it after the source's boilerplate stripping: an
edition that still carried its licence would otherwise win over a clean one.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import xxhash
from datasketch import MinHashLSH
from datasketch.lean_minhash import LeanMinHash

from pipeline.common.errors import UserError
from pipeline.engine.document import Document
from pipeline.engine.stage import GlobalStage

WORD = re.compile(r"\w+")
SHINGLE_SIZES = (3, 4, 5, 6, 7, 8)  # in words; the first is the one LSH indexes
MIN_SHARED = 0.05
NUM_PERM = 512  # bins of the one-permutation MinHash (a power of two)
SEED = 1
CANDIDATE_JACCARD = 0.4
OVERLAP_THRESHOLD = 0.9
EMPTY = np.uint64((1 << 64) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)
_MULT = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class Signature:
    minhashes: np.ndarray  # uint32[len(SHINGLE_SIZES), NUM_PERM]: one MinHash per shingle size
    words: int


class Signer:
    """One-permutation MinHash (Li, Owen and Zhang 2012) with rotation densification.

    Each shingle is hashed once; the top bits pick one of NUM_PERM bins and the bin keeps
    the minimum of the low 32 bits. That is as accurate as NUM_PERM independent permutations
    for long documents (books have tens of thousands of shingles) at a fraction of the cost:
    O(shingles) instead of O(shingles x NUM_PERM). Empty bins (short texts) borrow the next
    filled bin's value, offset by the distance, so two texts still agree only by sharing.
    The signatures are plain integer arrays that datasketch's MinHashLSH indexes as usual.
    """

    def __init__(self, num_perm: int = NUM_PERM) -> None:
        if num_perm & (num_perm - 1):
            raise ValueError("num_perm must be a power of two")
        self.num_perm = num_perm
        self.bin_shift = np.uint64(64 - (num_perm.bit_length() - 1))

    def sign(self, text: str) -> Signature:
        words = WORD.findall(text.lower())
        rows = [self._minhash(shingles) for shingles in _shingles(_word_hashes(words))]
        return Signature(np.stack(rows), len(words))

    def _minhash(self, hashes: np.ndarray) -> np.ndarray:
        out = np.full(self.num_perm, EMPTY, dtype=np.uint64)
        if len(hashes):
            bins = (hashes >> self.bin_shift).astype(np.intp)
            np.minimum.at(out, bins, hashes & _MAX_HASH)
        return _densify(out).astype(np.uint32)


def _densify(sig: np.ndarray) -> np.ndarray:
    filled = np.flatnonzero(sig != EMPTY)
    if len(filled) == 0 or len(filled) == len(sig):
        return np.where(sig == EMPTY, _MAX_HASH, sig)
    n = len(sig)
    # For each bin, the next filled bin to its right (circularly) and the distance to it.
    positions = np.arange(n)
    next_index = np.searchsorted(filled, positions) % len(filled)
    source = filled[next_index]
    distance = (source - positions) % n
    values = sig[source] + distance.astype(np.uint64) * np.uint64(0x9E3779B1)
    return np.where(sig == EMPTY, values & _MAX_HASH, sig)


def _word_hashes(words: list[str]) -> np.ndarray:
    if not words:
        return np.zeros(0, dtype=np.uint64)
    index: dict[str, int] = {}
    positions = np.fromiter((index.setdefault(w, len(index)) for w in words), dtype=np.int64, count=len(words))
    table = np.fromiter((xxhash.xxh64_intdigest(w.encode()) for w in index), dtype=np.uint64, count=len(index))
    return table[positions]


def _shingles(word_hashes: np.ndarray) -> list[np.ndarray]:
    """For each size in SHINGLE_SIZES, 64-bit hashes of the word k-grams, each tagged with its
    occurrence number. The k-gram hashes are built incrementally from the (k-1)-gram ones."""
    out = []
    acc = word_hashes.copy()
    with np.errstate(over="ignore"):
        for k in range(2, SHINGLE_SIZES[-1] + 1):
            n = len(word_hashes) - k + 1
            if n <= 0:
                acc = np.zeros(0, dtype=np.uint64)
            else:  # polynomial hash of the k words, wrapping mod 2^64
                acc = acc[:n] * _MULT + word_hashes[k - 1 : k - 1 + n]
            if k in SHINGLE_SIZES:
                out.append(_tag_occurrences(acc))
    return out


def _tag_occurrences(hashes: np.ndarray) -> np.ndarray:
    n = len(hashes)
    if n == 0:
        return hashes
    with np.errstate(over="ignore"):
        order = np.argsort(hashes, kind="stable")
        ranked = hashes[order]
        run_start = np.r_[0, np.flatnonzero(ranked[1:] != ranked[:-1]) + 1]
        occurrence = np.arange(n) - np.repeat(run_start, np.diff(np.r_[run_start, n]))
        tagged = np.empty(n, dtype=np.uint64)
        tagged[order] = _mix(ranked + occurrence.astype(np.uint64) * _MULT)
    return tagged


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads the bits so the top 32 are well distributed."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def shared_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated share of shingles two books have in common, from their MinHash signatures."""
    jaccard = float(np.mean(a == b))
    return 2 * jaccard / (1 + jaccard)


def word_overlap(x: Signature, y: Signature) -> float:
    """Estimated share of words in common: fits log f_k = log(1-b) + k log(1-p) over the
    shingle sizes (least squares averages out the MinHash noise of each size) and returns
    (1-b)(1-p). Sizes whose shared fraction is below MIN_SHARED carry no signal and are left out."""
    ks, logs = [], []
    for k, a, b in zip(SHINGLE_SIZES, x.minhashes, y.minhashes):
        f = shared_fraction(a, b)
        if f >= MIN_SHARED:
            ks.append(k)
            logs.append(np.log(f))
    if len(ks) < 2:
        return 0.0
    slope, intercept = np.polyfit(np.array(ks, dtype=float), np.array(logs), 1)
    slope = min(0.0, slope)  # sharing cannot grow with the shingle size
    if slope == 0.0:
        intercept = float(np.mean(logs))
    return float(min(1.0, np.exp(intercept + slope)))


@functools.cache
def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) that datasketch's MinHashLSH picks for `threshold`: it weighs false
    positives and negatives by numerical integration over every split of `num_perm`, 0.4 s of CPU
    for 512 bins, and always picks the same; so once per process, not once per index."""
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return lsh.b, lsh.r


def choose_survivors(ids: list[str], signatures: list[Signature],
                     threshold: float = OVERLAP_THRESHOLD) -> dict[str, str]:
    """Near-duplicates to drop, as {dropped id: the kept id it duplicates}."""
    lsh = MinHashLSH(threshold=CANDIDATE_JACCARD, num_perm=NUM_PERM, params=lsh_bands(CANDIDATE_JACCARD, NUM_PERM))
    lean = {}
    for doc_id, sig in zip(ids, signatures):
        if sig.words >= SHINGLE_SIZES[-1]:
            # "legacy" is datasketch's layout of 32-bit values held in uint64, which ours are;
            # the index only bands the values, so where they came from does not matter to it.
            lean[doc_id] = LeanMinHash(seed=SEED, hashvalues=sig.minhashes[0].astype(np.uint64), scheme="legacy")
            lsh.insert(doc_id, lean[doc_id])
    by_id = dict(zip(ids, signatures))
    order = sorted(lean, key=lambda i: (-by_id[i].words, i))
    kept: set[str] = set()
    dropped: dict[str, str] = {}
    for doc_id in order:
        candidates = sorted(c for c in lsh.query(lean[doc_id]) if c in kept)
        survivor = next((c for c in candidates if word_overlap(by_id[c], by_id[doc_id]) > threshold), None)
        if survivor is None:
            kept.add(doc_id)
        else:
            dropped[doc_id] = survivor
    return dropped


class NearDedup(GlobalStage):
    """Drops near-duplicate documents (books): "near_duplicate", keeping one copy per group."""

    name = "near_dedup"

    def __init__(self, threshold: float = OVERLAP_THRESHOLD) -> None:
        self.threshold = threshold

    def fields(self) -> list[pa.Field]:
        return []

    def setup(self) -> None:
        self.signer = Signer()
        self.dropped: dict[str, str] = {}

    def collect(self, docs: Iterable[Document], partial: Path) -> None:
        ids, minhashes, words = [], [], []
        for doc in docs:
            sig = self.signer.sign(doc.text)
            ids.append(doc.id)
            minhashes.append(sig.minhashes)
            words.append(sig.words)
        with open(partial, "wb") as f:
            np.savez(f, ids=np.array(ids, dtype=str), words=np.array(words, dtype=np.int64),
                     minhashes=np.array(minhashes, dtype=np.uint32).reshape(-1, len(SHINGLE_SIZES), NUM_PERM))

    def merge(self, partials: list[Path], artefact: Path) -> None:
        ids: list[str] = []
        signatures: list[Signature] = []
        for path in partials:
            with np.load(path) as data:
                # Each data[...] reads its array from the file anew: once per file, not per
                # book (per book, every signature kept a whole copy alive: memory grew as n^2).
                file_ids, file_words, file_minhashes = data["ids"], data["words"], data["minhashes"]
            for i, doc_id in enumerate(file_ids):
                ids.append(str(doc_id))
                signatures.append(Signature(file_minhashes[i], int(file_words[i])))
        if len(set(ids)) != len(ids):
            repeated = next(i for i, n in Counter(ids).items() if n > 1)
            raise UserError(
                f"near_dedup: document id '{repeated}' occurs in two inputs (same sub-corpus folder and "
                "file name in different places); rename one of them"
            )
        dropped = choose_survivors(ids, signatures, self.threshold) if ids else {}
        (artefact / "near_duplicates.json").write_text(json.dumps(dropped, indent=0, sort_keys=True))

    def load(self, artefact: Path) -> None:
        self.dropped = json.loads((artefact / "near_duplicates.json").read_text())

    def process(self, doc: Document) -> Document | str:
        return "near_duplicate" if doc.id in self.dropped else doc
