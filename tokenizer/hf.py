"""Our SentencePiece model as a Hugging Face tokenizer (transformers' LlamaTokenizer).

transformers 5 builds `LlamaTokenizer` (backed by the `tokenizers` library) from a folder
holding `tokenizer.model` and `tokenizer_config.json`, converting the SentencePiece model; it
needs protobuf. The converted tokenizer gives SentencePiece's ids except for text that starts
with whitespace: its Metaspace pre-tokenizer does not add the dummy prefix "▁" when the text
already starts with one, where SentencePiece always does. `load_hf_tokenizer(exact=True)`
swaps in the normalizer of the original Llama conversion (prepend "▁", spaces to "▁") and no
pre-tokenizer, which matches SentencePiece on every input.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

CONFIG = {
    "tokenizer_class": "LlamaTokenizer",
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "add_bos_token": True,
    "add_eos_token": False,
    "legacy": False,
}


def write_hf_folder(model: Path, folder: Path) -> Path:
    """A folder `LlamaTokenizer.from_pretrained` loads: tokenizer.model + tokenizer_config.json."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, folder / "tokenizer.model")
    (folder / "tokenizer_config.json").write_text(json.dumps(CONFIG, indent=2) + "\n")
    return folder


def load_hf_tokenizer(model: Path, exact: bool = True) -> Any:
    """transformers' LlamaTokenizer converted from our model (see the module's note on `exact`)."""
    from transformers import LlamaTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = LlamaTokenizer.from_pretrained(str(write_hf_folder(model, Path(tmp))))
    if exact:
        from tokenizers import normalizers

        backend = tokenizer.backend_tokenizer
        backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        backend.pre_tokenizer = None
    return tokenizer
