"""Encode throughput: `tokenizer encode` with 1 and 2 workers against bare single-process
SentencePiece and Hugging Face's fast Llama tokenizer (transformers' LlamaTokenizer converted
from our model), all on the same text.

    .venv/bin/python bench/tokenizer.py [--mb 32] [--vocab-size 32000] [--repeats 3]
    .venv/bin/python bench/tokenizer.py --corpus data/corpus --model data/tokenizer/llama1.model

Without --corpus it writes generated multilingual documents (about 2 KB each) into corpus shards
in a temporary folder and trains a tokenizer on part of them. MB/s counts UTF-8 text bytes.
Ours is end to end (read Arrow shards, encode, write token shards and meta.json); the two
baselines only encode texts already in memory, in batches of 1024 documents. The Hugging Face
tokenizer runs batches on all cores (its default). Every encoder runs --repeats times, in turn;
cells give min / median / max, with the load average (bench/rounds.py). CPU seconds (user +
system, worker processes included) show the work done independent of other load.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.engine.resources import cpu_seconds_with_children  # noqa: E402
from bench.rounds import alternate, spread, table  # noqa: E402
from pipeline.engine.document import Document  # noqa: E402
from pipeline.engine.shards import ShardWriter, build_schema, read_corpus  # noqa: E402
from pipeline.corpus.mixture import Mixture  # noqa: E402
from sources.samples.text import paragraph  # noqa: E402
from tokenizer.encode import encode_corpus, find_sources  # noqa: E402
from tokenizer.hf import load_hf_tokenizer  # noqa: E402
from tokenizer.train import train_tokenizer  # noqa: E402

SYLLABLES = ["ka", "to", "ri", "men", "sa", "lo", "vi", "der", "un", "sch", "ber", "ta", "zi", "ko", "ne",
             "mar", "el", "sti", "po", "ga", "dre", "lin", "qu", "ost", "ha", "ju", "ny", "ра", "ко", "ми"]
SCRIPTS = ["東京は日本の首都です。", "我们明天去图书馆。", "Η πόλη είναι μικρή.", "Привет, как дела?", "Grüße aus Köln!"]


def generated_documents(count: int, seed: int = 0) -> list[str]:
    """English-like prose, a Zipfian vocabulary of made-up words, other scripts, numbers, code."""
    rng = random.Random(seed)
    lexicon = ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(60_000)]
    weights = [1 / (rank + 1) for rank in range(len(lexicon))]
    documents = []
    for _ in range(count):
        parts = [paragraph(rng, 4)]
        words = rng.choices(lexicon, weights, k=150)
        parts.append(" ".join(words).capitalize() + ".")
        parts.append(f"{rng.choice(SCRIPTS)} {rng.randint(0, 10**6)} {rng.random():.4f}")
        parts.append("def f(x):\n\treturn x  +  1\n")
        documents.append("\n".join(parts))
    return documents


def write_corpus(root: Path, documents: list[str], per_shard: int) -> None:
    folder = root / "bench"
    for number, start in enumerate(range(0, len(documents), per_shard)):
        writer = ShardWriter(folder, build_schema([]), prefix=f"tmp{number}")
        for i, text in enumerate(documents[start:start + per_shard], start):
            writer.write(Document(f"d{i}", text, "bench"))
        (path,) = writer.close()
        path.rename(folder / f"shard-{number:05d}.arrow")


def timed(run) -> tuple[float, float]:  # noqa: ANN001
    """Wall seconds and CPU seconds (this process, its threads and its finished children)."""
    cpu, started = cpu_seconds_with_children(), time.perf_counter()
    run()
    return time.perf_counter() - started, cpu_seconds_with_children() - cpu


_batches: list[list[str]] = []
_model = ""


def _encode_half(half: int) -> int:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=_model)
    return sum(len(ids) for b in _batches[half::2] for ids in sp.encode(b, num_threads=1, return_type="numpy"))


def _two_process_sentencepiece() -> None:
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(_encode_half, [0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=32, help="MB of generated text (default %(default)s)")
    parser.add_argument("--vocab-size", type=int, default=32000, help="vocabulary of the trained model (default %(default)s)")
    parser.add_argument("--corpus", help="an existing corpus root instead of generated text")
    parser.add_argument("--model", help="an existing SentencePiece model instead of training one")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds of every encoder (default %(default)s)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-tokenizer-"))
    try:
        if args.corpus:
            corpus = Path(args.corpus)
        else:
            corpus = tmp / "corpus"
            documents = generated_documents(int(args.mb * 1e6 / 2000))
            write_corpus(corpus, documents, per_shard=max(1, len(documents) // 16))
        if args.model:
            model = Path(args.model)
        else:
            train_sources = find_sources(corpus, None)
            mixture = Mixture("bench", {s: 1 / len(train_sources) for s in train_sources})
            started = time.perf_counter()
            model = train_tokenizer(mixture, corpus, tmp / "tokenizer", vocab_size=args.vocab_size,
                                    sample_bytes=8 << 20, threads=2, allow_smaller_vocab=True).model
            print(f"trained {model.name} in {time.perf_counter() - started:.1f} s")

        texts = [d.text for s in find_sources(corpus, None) for d in read_corpus(corpus / s)]
        megabytes = sum(len(t.encode()) for t in texts) / 1e6
        batches = [texts[i:i + 1024] for i in range(0, len(texts), 1024)]

        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(model))
        hf = load_hf_tokenizer(model)
        runs = {
            "sentencepiece, 1 process (lists)": lambda: [sp.encode(b, num_threads=1) for b in batches],
            "sentencepiece, 1 process (numpy)": lambda: [sp.encode(b, num_threads=1, return_type="numpy")
                                                         for b in batches],
            f"HF fast LlamaTokenizer ({os.cpu_count()} threads)": lambda: [hf(b, add_special_tokens=False)
                                                                          for b in batches],
        }
        # What the machine allows right now: bare SentencePiece on half the batches in each of two
        # forked processes. Far below 2x sentencepiece means other jobs hold the cores.
        global _batches, _model
        _batches, _model = batches, str(model)
        runs["sentencepiece, 2 processes (bare, reference)"] = _two_process_sentencepiece
        for workers in args.workers:
            def ours(workers: int = workers) -> None:
                out = tmp / f"tokens-{workers}"
                shutil.rmtree(out, ignore_errors=True)
                encode_corpus(corpus, model, out, workers=workers, show_progress=False)
            runs[f"tokenizer encode, {workers} worker(s)"] = ours
        # Rounds of every encoder in turn: load from other jobs hits them alike.
        measured = alternate({name: lambda run=run: timed(run) for name, run in runs.items()}, args.repeats)
        wall = {name: statistics.median(w for w, _ in m) for name, m in measured.items()}
        names = list(runs)
        base = min(wall[names[0]], wall[names[1]])  # the faster way to call SentencePiece (medians)
        hf_seconds = wall[names[2]]
        rows = [[name, spread([w for w, _ in m]), spread([megabytes / w for w, _ in m], ".1f"),
                 f"{base / wall[name]:.2f}", f"{hf_seconds / wall[name]:.2f}", spread([c for _, c in m]),
                 spread([megabytes / c for _, c in m], ".1f")] for name, m in measured.items()]
        table(f"Encoding {len(texts):,} documents, {megabytes:.1f} MB of text, vocabulary {sp.vocab_size():,}",
              ["encoder", "seconds", "MB/s", "x best sp (medians)", "x HF fast (medians)", "CPU s", "MB/CPU-s"],
              rows, args.repeats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
