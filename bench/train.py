"""Training-step throughput: herd's loop (`train.loop.train`: mixture data loading, schedule,
clipping, NaN check, metrics, progress) against two peers on the same shapes:

- a minimal reference step on our model (a fixed batch, forward, cross-entropy, backward,
  fused AdamW step; nothing else): what the loop's bookkeeping costs;
- Hugging Face transformers' LlamaForCausalLM of the same configuration (hidden size, layers,
  heads, SwiGLU width, vocabulary, RMSNorm eps, rope theta, untied output; SDPA attention)
  trained with the same AdamW (betas, eps, weight decay on matrices only, fused) and the same
  gradient clipping, on a fixed batch: what the model itself costs against the common peer.

    .venv/bin/python bench/train.py [--model tiny] [--vocab 32000 2242] [--steps 12] [--rounds 3]

Rounds alternate ours / reference / HF so load from other processes hits them alike
(bench/rounds.py); tok/s cells give min / median / max over the rounds (each round's median
step), ratios the median step time over all rounds, the first --warmup steps of each round left
out; the load average is printed with the table. On a
machine with CUDA it also measures the GPU configuration (default: the 1b preset at context
2048, bf16 autocast, torch.compile) and prints MFU against the device's dense bf16 peak.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the `train` command sets it

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rounds import alternate, spread, table  # noqa: E402
from pipeline.corpus.mixture import LLAMA1  # noqa: E402
from train.config import TrainConfig, resolve  # noqa: E402
from train.loop import build_optimizer, train  # noqa: E402
from train.metrics import peak_flops, read_metrics  # noqa: E402
from train.model import flops_per_token  # noqa: E402
from train.parallel import join, pick_device  # noqa: E402


def write_tokens(root: Path, vocab_size: int, tokens_per_source: int = 200_000) -> None:
    """Random token shards per llama1 source, in the tokenizer's format (tokens/s does not
    depend on what the ids are)."""
    import json

    rng = np.random.default_rng(0)
    dtype = "uint16" if vocab_size <= 65536 else "uint32"
    for name in LLAMA1.proportions:
        folder = root / name
        folder.mkdir(parents=True)
        ids = rng.integers(3, vocab_size, tokens_per_source).astype("<u2" if dtype == "uint16" else "<u4")
        ids.tofile(folder / "train-00000.bin")
        np.array([0, tokens_per_source], dtype="<i8").tofile(folder / "train-00000.idx")
        meta = {"source": name, "tokenizer": "bench", "tokenizer_sha256": "0" * 64, "vocab_size": vocab_size,
                "dtype": dtype, "bos_id": 1, "eos_id": 2,
                "splits": {"train": {"documents": 1, "tokens": tokens_per_source, "shards": [
                    {"bin": "train-00000.bin", "index": "train-00000.idx", "documents": 1,
                     "tokens": tokens_per_source}]}}}
        (folder / "meta.json").write_text(json.dumps(meta))


def ours(config: TrainConfig, warmup: int) -> list[float]:
    result = train(resolve(config))
    rows = read_metrics(result.run_dir / "metrics.jsonl")
    return [row["step_time_s"] for row in rows[warmup:]]


def step_times(loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], optimizer: torch.optim.Optimizer,
               cfg: TrainConfig, device: torch.device, vocab_size: int, warmup: int,
               clip: Callable[[], object] = lambda: None) -> list[float]:
    """Seconds of each of `cfg.steps` bare training steps on one fixed random batch (forward and loss
    under bf16 autocast on CUDA, backward, `clip`, optimizer step), the first `warmup` left out."""
    batch = torch.randint(0, vocab_size, (cfg.micro_batch, cfg.seq_len + 1), device=device)
    inputs, targets = batch[:, :-1], batch[:, 1:]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    times = []
    for _ in range(cfg.steps):
        start = time.perf_counter()
        with autocast:
            loss = loss_of(inputs, targets)
        loss.backward()
        clip()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times[warmup:]


def reference(config: TrainConfig, vocab_size: int, warmup: int) -> list[float]:
    resolved = resolve(config, vocab_size=vocab_size)
    cfg = resolved.train
    device = pick_device(cfg.device)
    model = join("fsdp", cfg.device).build_model(resolved.model, cfg.seed, compile=cfg.compile)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    return step_times(model, optimizer, cfg, device, vocab_size, warmup)  # model(inputs, targets): the loss


def hugging_face(config: TrainConfig, vocab_size: int, warmup: int) -> list[float]:
    from transformers import LlamaConfig, LlamaForCausalLM

    resolved = resolve(config, vocab_size=vocab_size)
    cfg, args = resolved.train, resolved.model
    device = pick_device(cfg.device)
    hf_config = LlamaConfig(hidden_size=args.dim, intermediate_size=args.ffn_hidden_dim,
                            num_hidden_layers=args.n_layers, num_attention_heads=args.n_heads,
                            num_key_value_heads=args.kv_heads, head_dim=args.head_dim, vocab_size=vocab_size,
                            max_position_embeddings=args.max_seq_len, rms_norm_eps=args.norm_eps,
                            rope_theta=args.rope_theta, tie_word_embeddings=False, attention_bias=False,
                            mlp_bias=False, use_cache=False, attn_implementation="sdpa")
    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(hf_config).to(device)
    if cfg.compile:
        model.compile()
    model.train()
    optimizer = build_optimizer(model, cfg, device)  # the same groups: no decay on norms and embeddings
    def loss_of(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = model(input_ids=inputs).logits
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())

    return step_times(loss_of, optimizer, cfg, device, vocab_size, warmup,
                      clip=lambda: torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))


def measure(base: TrainConfig, vocab_size: int, rounds: int, warmup: int, work: Path) -> dict[str, float]:
    data = work / f"tokens-{vocab_size}"
    if not data.exists():
        write_tokens(data, vocab_size)
    configs = iter(dataclasses.replace(base, data=str(data), run=str(work / f"run-{vocab_size}-{number}"))
                   for number in range(rounds))
    times = alternate({"ours": lambda: ours(next(configs), warmup),
                       "reference": lambda: reference(base, vocab_size, warmup),
                       "hf": lambda: hugging_face(base, vocab_size, warmup)}, rounds)
    resolved = resolve(base, vocab_size=vocab_size)
    tokens = resolved.train.batch_tokens
    device = pick_device(base.device)
    with torch.device("meta"):
        from train.model import Transformer

        params = Transformer(resolved.model).num_params()
    peak = peak_flops(device, base.peak_flops)
    per_token = flops_per_token(resolved.model, resolved.train.seq_len, params)
    # Per round: tokens/s of its median step; over all rounds: of the median step of them all.
    per_round = {name: [tokens / statistics.median(steps) for steps in rounds_of] for name, rounds_of in times.items()}
    ours_tps, reference_tps, hf_tps = (tokens / statistics.median([t for steps in times[name] for t in steps])
                                       for name in ("ours", "reference", "hf"))
    return {"params": params, "ours": ours_tps, "reference": reference_tps, "ratio": ours_tps / reference_tps,
            "hf": hf_tps, "hf_ratio": ours_tps / hf_tps, "rounds": per_round,
            "ours_mfu": per_token * ours_tps / peak if peak else None,
            "reference_mfu": per_token * reference_tps / peak if peak else None, "peak": peak}


def print_table(title: str, rows: list[tuple[str, dict[str, float]]], rounds: int) -> None:
    # MFU only where the device's peak is known (train/metrics.py): not on a CPU.
    with_mfu = all(r["ours_mfu"] is not None for _, r in rows)
    header = ["configuration", "params", "ours tok/s", "ref tok/s", "HF tok/s", "ours/ref", "ours/HF"]
    cells = []
    for name, r in rows:
        per_round = r["rounds"]
        cells.append([name, f"{r['params'] / 1e6:.1f}M", spread(per_round["ours"], ",.0f"),
                      spread(per_round["reference"], ",.0f"), spread(per_round["hf"], ",.0f"), f"{r['ratio']:.3f}",
                      f"{r['hf_ratio']:.3f}"] + ([f"{r['ours_mfu']:.1%}", f"{r['reference_mfu']:.1%}"] if with_mfu else []))
    table(title, header + (["MFU ours", "MFU ref"] if with_mfu else []), cells, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="CPU preset (default tiny)")
    parser.add_argument("--vocab", type=int, nargs="+", default=[32000, 2242],
                        help="vocabulary sizes to measure on CPU (default: LLaMA's 32000 and the sample's 2242)")
    parser.add_argument("--steps", type=int, default=12, help="steps per round (default 12)")
    parser.add_argument("--warmup", type=int, default=3, help="steps left out at the start of each round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--gpu-model", default="1b", help="GPU preset (default 1b)")
    parser.add_argument("--gpu-micro-batch", type=int, default=8)
    parser.add_argument("--gpu-steps", type=int, default=20)
    args = parser.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} (figures are rough on a shared machine)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = []
        for vocab in args.vocab:
            base = TrainConfig(model=args.model, steps=args.steps, device="cpu", progress=False, warmup_steps=1)
            resolved = resolve(base, vocab_size=vocab)
            name = (f"{args.model} cpu fp32 vocab {vocab} ctx {resolved.train.seq_len} x {resolved.train.micro_batch}")
            rows.append((name, measure(base, vocab, args.rounds, args.warmup, work)))
        print_table("CPU: our training step against a bare step on our model and HF LlamaForCausalLM's step "
                    "(tok/s of each round's median step; ratios of the median step over all rounds)", rows,
                    args.rounds)
        if torch.cuda.is_available():
            base = TrainConfig(model=args.gpu_model, steps=args.gpu_steps, device="cuda", progress=False,
                               compile=True, seq_len=2048, micro_batch=args.gpu_micro_batch,
                               batch_tokens=2048 * args.gpu_micro_batch, warmup_steps=1)
            result = measure(base, 32000, 1, max(args.warmup, 5), work)
            print_table(f"GPU: {torch.cuda.get_device_name()}, bf16 autocast, torch.compile, "
                        f"peak {result['peak'] / 1e12:.0f} TFLOP/s",
                        [(f"{args.gpu_model} ctx 2048 x {args.gpu_micro_batch}", result)], 1)
        else:
            print("\nGPU: no CUDA device here; the 1b / context 2048 / bf16 / compile row and its MFU: not measured")


if __name__ == "__main__":
    main()
