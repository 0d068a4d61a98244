"""Documents encoded in bounded pieces, so that one long document cannot exhaust a worker's memory.

SentencePiece's encoder holds state per character for the whole string it is given (the lattice
of candidate pieces, some 60 bytes a character): one 24 MB document without a space took 1.4 GB.
A document longer than MAX_PIECE_CHARS is therefore cut into pieces of at most that many
characters, each piece encoded alone, and the ids concatenated (BOS before, EOS after, as for any
document). Documents up to the bound are encoded whole, exactly as before.

Where a cut goes, and why it does not change the tokens:
- At a space that follows a character other than a space, searched backwards from the bound
  (over the window's last half). The piece after the cut begins with that space and is encoded
  without the dummy prefix (the "▁" SentencePiece puts before a text's start): the space is real
  text and becomes that "▁" itself. Models that split pieces at whitespace (split_by_whitespace;
  herd's and LLaMA's both do) begin a new word at such a space and never make a piece holding
  the character before it together with the space, so each side segments alone exactly as
  inside the whole. That also needs the model to keep whitespace as it is (remove_extra_whitespaces
  off, as herd's and LLaMA's): one that trims it would drop the leading space of a piece.
  tests/tokenizer/test_long_documents.py compares whole and cut encodings of long text.
- Where the window holds no such space (a run of more than half the bound without one, as in a
  hex dump or a base64 blob), at a character boundary. A piece that would have spanned that point
  is split in two there: at most one token differs per such cut, and only in documents with such
  a run. Accepted: the alternative is a worker killed for its memory, and the document dropped.
"""

from __future__ import annotations

import numpy as np

MAX_PIECE_CHARS = 1 << 20  # about 60 MB of encoder state

# SentencePiece processors loaded from a model without its dummy prefix, for pieces after a cut;
# keyed by the id of the processor they mirror, which is kept alive beside its copy.
_continuations: dict[int, tuple[object, object]] = {}


def encode_documents(processor, texts: list[str], bound: int = MAX_PIECE_CHARS) -> list[np.ndarray]:
    """Each text's ids with BOS and EOS, as `processor.encode` gives them; texts over `bound`
    characters in pieces (see the module's docstring)."""
    short = [t for t in texts if len(t) <= bound]
    if not short:
        return [encode_long(processor, t, bound) for t in texts]
    encoded = processor.encode(short, add_bos=True, add_eos=True, num_threads=1, return_type="numpy")
    if len(short) == len(texts):
        return encoded
    batch = iter(encoded)
    return [next(batch) if len(t) <= bound else encode_long(processor, t, bound) for t in texts]


def encode_long(processor, text: str, bound: int = MAX_PIECE_CHARS) -> np.ndarray:
    """`text`'s ids with BOS and EOS, encoded in pieces of at most `bound` characters."""
    starts = [0, *cut_points(text, bound), len(text)]
    ids = [np.array([processor.bos_id()], dtype=np.int32)]
    for k, (start, end) in enumerate(zip(starts, starts[1:])):
        encoder = processor if k == 0 else _continuation(processor)
        ids.append(np.asarray(encoder.encode(text[start:end], return_type="numpy"), dtype=np.int32))
    ids.append(np.array([processor.eos_id()], dtype=np.int32))
    return np.concatenate(ids)


def cut_points(text: str, bound: int) -> list[int]:
    """Where the pieces after the first begin: every piece holds at most `bound` characters."""
    cuts: list[int] = []
    start = 0
    while len(text) - start > bound:
        end = start + bound  # the next piece may begin at `end` at the latest
        cut = _space_before(text, start + max(1, bound // 2), end)
        start = cut if cut is not None else end
        cuts.append(start)
    return cuts


def _space_before(text: str, low: int, end: int) -> int | None:
    """The last position in [low, end] holding a space that follows a character other than a space."""
    at = text.rfind(" ", low, end + 1)
    while at >= low:
        if text[at - 1] != " ":
            return at
        at = text.rfind(" ", low, at)
    return None


def _continuation(processor):
    """`processor`'s model without the dummy prefix: a piece after a cut does not begin a text."""
    kept = _continuations.get(id(processor))
    if kept is None or kept[0] is not processor:
        import sentencepiece as spm
        from sentencepiece import sentencepiece_model_pb2

        model = sentencepiece_model_pb2.ModelProto.FromString(processor.serialized_model_proto())
        model.normalizer_spec.add_dummy_prefix = False
        kept = (processor, spm.SentencePieceProcessor(model_proto=model.SerializeToString()))
        _continuations.clear()  # one model per worker at a time
        _continuations[id(processor)] = kept
    return kept[1]
