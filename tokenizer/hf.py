"""Our SentencePiece model as a Hugging Face tokenizer, in the folder `train export` writes.

transformers 5 converts a `tokenizer.model` into a `LlamaTokenizer` (backed by the `tokenizers`
library; it needs protobuf). That conversion gives SentencePiece's ids except for text that
starts with whitespace: its Metaspace pre-tokenizer does not add the dummy prefix "▁" when the
text already starts with one, where SentencePiece always does (" leading" and "   three" got
other ids than in training, and decoded one space short). The exact tokenizer swaps in the
normalizer of the original Llama conversion (prepend "▁", spaces to "▁") and no pre-tokenizer,
which matches SentencePiece on every input.

`write_hf_folder` writes that exact tokenizer as `tokenizer.json` with a config naming the generic
`PreTrainedTokenizerFast`, which loads `tokenizer.json` as it is (`LlamaTokenizer` would rebuild
its pre-tokenizer): `AutoTokenizer.from_pretrained` on an export then gives the ids the model was
trained on, and decodes them back. `split_special_tokens`: "<s>" written in a text is text, as
SentencePiece encodes it, not the BOS token.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
# What LlamaTokenizer converts our model with (tokenizer.model beside it).
CONVERSION_CONFIG = {"tokenizer_class": "LlamaTokenizer", **SPECIAL_TOKENS, "add_bos_token": True,
                     "add_eos_token": False, "legacy": False}
# What an export's tokenizer.json is loaded with: as written, BOS added by its post-processor.
EXPORT_CONFIG = {"tokenizer_class": "PreTrainedTokenizerFast", **SPECIAL_TOKENS, "add_bos_token": True,
                 "add_eos_token": False, "split_special_tokens": True}


def write_hf_folder(model: Path, folder: Path) -> Path:
    """A folder `AutoTokenizer.from_pretrained` loads as the exact tokenizer of `model`:
    tokenizer.json, tokenizer_config.json, and tokenizer.model (for SentencePiece users)."""
    folder.mkdir(parents=True, exist_ok=True)
    exact_tokenizer(model).backend_tokenizer.save(str(folder / "tokenizer.json"))
    shutil.copyfile(model, folder / "tokenizer.model")
    (folder / "tokenizer_config.json").write_text(json.dumps(EXPORT_CONFIG, indent=2) + "\n")
    return folder


def converted_tokenizer(model: Path) -> Any:
    """transformers' own conversion of `model` (LlamaTokenizer): off on leading whitespace."""
    from transformers import LlamaTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(model, Path(tmp) / "tokenizer.model")
        (Path(tmp) / "tokenizer_config.json").write_text(json.dumps(CONVERSION_CONFIG))
        return LlamaTokenizer.from_pretrained(tmp)


def exact_tokenizer(model: Path) -> Any:
    """The conversion with the original Llama normalizer and no pre-tokenizer: SentencePiece's ids."""
    from tokenizers import normalizers

    tokenizer = converted_tokenizer(model)
    backend = tokenizer.backend_tokenizer
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.pre_tokenizer = None
    return tokenizer


def load_hf_tokenizer(model: Path, exact: bool = True) -> Any:
    """A Hugging Face tokenizer of `model`: the exact one, or transformers' own conversion."""
    return exact_tokenizer(model) if exact else converted_tokenizer(model)
