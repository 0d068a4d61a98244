"""Training configuration: typed dataclasses, named presets, and a small override layer.

A run's config resolves in this order: the preset named by `model` (architecture plus the
optimisation defaults that go with it), then a TOML file (top-level keys override TrainConfig;
a `[model]` table may name the preset, `preset = "tiny"`, and overrides ModelArgs fields), then
command-line flags. The field types of TrainConfig and ModelArgs, with their bounds, are the
schema pydantic checks every value against (pipeline/common/config.py): a wrong type, a value
out of range, NaN or an unknown key is one line naming the file or flag.
The resolved config is written to `<run>/config.json`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, with_config

from pipeline.common.config import (
    MAX_VOCAB,
    STRICT,
    Above0,
    Amount,
    Count,
    Positive,
    Probability,
    Seed,
    flag_name,
    override,
    read_toml,
)
from pipeline.common.config import validate as validate_schema
from pipeline.common.errors import UserError
from pipeline.common.files import write_json_atomic
from train.model_args import CheckpointingMode, ModelArgs, checkpointing_mode


@dataclass(frozen=True)
class Preset:
    """An architecture and the optimisation settings it is trained with."""

    model: ModelArgs
    lr: float
    batch_tokens: int  # tokens per optimizer step, over all ranks and accumulation steps
    seq_len: int
    micro_batch: int  # sequences per forward/backward on one device
    warmup_steps: int
    steps: int  # a full run's length


# The paper's Table 2: 4M-token batches (2048 sequences of 2048), 2000 warmup steps; 1.0T tokens
# for 7b and 13b, 1.4T for 33b and 65b. Micro-batches suit one 80 GB GPU with activation
# checkpointing and FSDP; accumulation makes up the rest of the batch.
PAPER_BATCH_TOKENS = 2048 * 2048
PRESETS: dict[str, Preset] = {
    # For unit tests: a handful of milliseconds a step on one core.
    "debug": Preset(ModelArgs(dim=64, n_layers=2, n_heads=4, vocab_size=256, multiple_of=32, max_seq_len=64),
                    lr=3e-3, batch_tokens=4 * 32, seq_len=32, micro_batch=4, warmup_steps=10, steps=100),
    # For laptops and the sample corpus: 0.8M non-embedding parameters (plus 2 x vocab x 128 for
    # the embeddings and output; 9M with a 32k vocabulary). About a second a step on 2 cores.
    "tiny": Preset(ModelArgs(dim=128, n_layers=4, n_heads=4, multiple_of=64, max_seq_len=512),
                   lr=3e-3, batch_tokens=8 * 128, seq_len=128, micro_batch=8, warmup_steps=100, steps=1000),
    # A ~1B model (TinyLlama's shape without grouped-query attention) for GPU benchmarks.
    "1b": Preset(ModelArgs(dim=2048, n_layers=22, n_heads=16, multiple_of=256, max_seq_len=2048),
                 lr=4e-4, batch_tokens=1024 * 2048, seq_len=2048, micro_batch=8, warmup_steps=2000, steps=50_000),
    "7b": Preset(ModelArgs(dim=4096, n_layers=32, n_heads=32), lr=3.0e-4, batch_tokens=PAPER_BATCH_TOKENS,
                 seq_len=2048, micro_batch=4, warmup_steps=2000, steps=1_000_000_000_000 // PAPER_BATCH_TOKENS),
    "13b": Preset(ModelArgs(dim=5120, n_layers=40, n_heads=40), lr=3.0e-4, batch_tokens=PAPER_BATCH_TOKENS,
                  seq_len=2048, micro_batch=2, warmup_steps=2000, steps=1_000_000_000_000 // PAPER_BATCH_TOKENS),
    "33b": Preset(ModelArgs(dim=6656, n_layers=60, n_heads=52), lr=1.5e-4, batch_tokens=PAPER_BATCH_TOKENS,
                  seq_len=2048, micro_batch=1, warmup_steps=2000, steps=1_400_000_000_000 // PAPER_BATCH_TOKENS),
    "65b": Preset(ModelArgs(dim=8192, n_layers=80, n_heads=64), lr=1.5e-4, batch_tokens=PAPER_BATCH_TOKENS,
                  seq_len=2048, micro_batch=1, warmup_steps=2000, steps=1_400_000_000_000 // PAPER_BATCH_TOKENS),
}


# Bounds of a run's shapes (`train`, `train plan`, `train data`): within them every tensor's byte
# count (a micro-batch's seq x seq attention scores, its logits) fits in int64, as torch needs, and
# each is past any cluster or model there is (2^20 GPUs, a million-token context, 16M pieces:
# MAX_VOCAB, which the tokenizers are held to too). A value past one was a traceback from the
# allocator, or a step that never ends.
MAX_RANKS = 1 << 20
MAX_SEQ_LEN = 1 << 20
MAX_MICRO_BATCH = 1 << 12
# Micro-batches one optimizer step accumulates: the 7B preset on one rank takes 512. Past this, a step
# is days, and a SIGTERM (which stops after the step in progress, to save it) would wait for ever.
MAX_GRAD_ACCUM = 1 << 16
# Tokens a run draws (steps x batch): the sampler counts sequences in int64.
MAX_RUN_TOKENS = 1 << 62
# A name or a path: "" would be the current folder (`data = ""` read token shards from wherever train ran).
Named = Annotated[str, Field(min_length=1)]
SeqLen = Annotated[int, Field(ge=0, le=MAX_SEQ_LEN)]  # 0: the preset's
MicroBatch = Annotated[int, Field(ge=0, le=MAX_MICRO_BATCH)]  # 0: the preset's
Unit = Annotated[float, Field(ge=0, lt=1)]  # Adam's betas
Warmup = Annotated[int, Field(ge=-1)]  # -1: the preset's
# none, selective or full (train/apply.py); true and false, the setting's values before
# `selective`, still read as full and none.
Checkpointing = Annotated[CheckpointingMode, BeforeValidator(checkpointing_mode)]


# The field types are the schema of the TOML file's top level and of the flags (pipeline/common/config.py).
@with_config(STRICT)
@dataclass(frozen=True)
class TrainConfig:
    mixture: Named = "llama1"  # a mixture name or a TOML file (pipeline/corpus/mixture.py)
    model: Named = "tiny"  # preset name
    data: Named = "data/tokens"  # root holding one token-shard folder per source
    run: str = ""  # run folder; default runs/<mixture>-<model>
    steps: Count = 0  # optimizer steps; 0: the preset's
    # Optimisation; 0 means "the preset's value".
    lr: Amount = 0.0
    min_lr_ratio: Probability = 0.1  # cosine decays to this fraction of the peak
    # -1: the preset's, capped at a tenth of the run for short runs; a resumed run keeps the one it started with
    warmup_steps: Warmup = -1
    batch_tokens: Count = 0
    seq_len: SeqLen = 0
    micro_batch: MicroBatch = 0
    beta1: Unit = 0.9
    beta2: Unit = 0.95
    eps: Above0 = 1e-8
    weight_decay: Amount = 0.1
    grad_clip: Amount = 1.0
    seed: Seed = 0
    skip_missing_sources: bool = False  # drop mixture sources without token shards and renormalise
    # Checkpoints and logging.
    checkpoint_every: Count = 0  # 0: only at the end (and on interrupt)
    keep_checkpoints: Positive = 3
    log_every: Positive = 1
    log_documents: bool = False  # <run>/documents.jsonl: the documents of every sequence trained on
    progress: bool = True
    # Held-out loss during training (train/heldout.py): every N steps, K windows per source.
    eval_every: Count = 0  # 0: never
    eval_sequences: Positive = 8
    # Performance switches, applied from outside the model (train/apply.py, train/parallel.py).
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    strategy: Literal["fsdp", "ddp"] = "fsdp"  # data parallelism under torchrun: fsdp (FSDP2) or ddp
    tp: Positive = 1  # tensor-parallel degree: ranks that split each layer (divides the world size and the heads)
    compile: bool = False
    activation_checkpointing: Checkpointing = "none"
    peak_flops: Amount = 0.0  # per device, for MFU; 0: detect
    model_overrides: dict[str, Any] = field(default_factory=dict)  # ModelArgs fields changed from the preset


@dataclass(frozen=True)
class ResolvedConfig:
    """Everything a run needs, with presets and defaults filled in."""

    train: TrainConfig
    model: ModelArgs
    run_dir: Path
    grad_accum: int  # micro-batches per optimizer step on each rank
    tokenizer_sha256: str = ""  # of the tokenizer the token shards were made with; checked on resume and export
    # Per source, the documents and tokens of the train split the run draws from (meta.json): checked on
    # resume, since windows and epochs are drawn over these counts. Empty in runs made before it was kept.
    token_data: dict[str, dict[str, int]] = field(default_factory=dict)
    # Per source, its share of the mixture drawn from (the mixture file's, sources left out by
    # --skip-missing-sources gone): checked on resume, since the windows are drawn by these. A
    # mixture file edited between two runs keeps its name. Empty in runs made before it was kept.
    proportions: dict[str, float] = field(default_factory=dict)
    # The processes grad_accum was computed for. Not written to config.json: a run resumes on any number.
    world_size: int = 1
    # Whether train.warmup_steps is the preset's default for this run's length (neither the flag nor the
    # config file set it). That default changes with --steps, so a resumed run keeps the warmup it
    # started with instead (`with_started_warmup`). Not written to config.json: it says how this
    # command was asked, not what the run is.
    warmup_from_preset: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"train": dataclasses.asdict(self.train), "model": dataclasses.asdict(self.model),
                "run_dir": str(self.run_dir), "grad_accum": self.grad_accum,
                "tokenizer_sha256": self.tokenizer_sha256, "token_data": self.token_data,
                "proportions": self.proportions}

    def with_tokens(self, vocab_size: int, tokenizer_sha256: str,
                    token_data: dict[str, dict[str, int]] | None = None,
                    proportions: dict[str, float] | None = None) -> ResolvedConfig:
        """This config for the token shards a run trains on: their vocabulary sizes the model, and
        their tokenizer, counts and shares are recorded. Known only once the shards are opened, after
        `resolve`."""
        return dataclasses.replace(self, model=dataclasses.replace(self.model, vocab_size=vocab_size),
                                   tokenizer_sha256=tokenizer_sha256, token_data=dict(token_data or {}),
                                   proportions=dict(proportions or {}))


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UserError(f"unknown model preset '{name}' (known: {', '.join(PRESETS)})")
    return PRESETS[name]


def load_overrides(toml_path: str | None, cli_values: dict[str, Any]) -> TrainConfig:
    """TrainConfig from defaults, then the TOML file, then command-line values (None = not given)."""
    config = TrainConfig()
    if toml_path:
        values = read_toml(toml_path)
        # `model = "tiny"` names the preset; a `[model]` table may name it (`preset = "tiny"`)
        # and sets ModelArgs fields, checked against ModelArgs' schema.
        model_table = validate_schema(str | dict[str, Any], values.pop("model"), toml_path,
                                      name=lambda _: "setting 'model'") if "model" in values else None
        if isinstance(model_table, str):
            values["model"] = model_table
        elif model_table is not None:
            model_table = dict(model_table)
            if "preset" in model_table:
                values["model"] = validate_schema(str, model_table.pop("preset"), f"{toml_path} [model]",
                                                  name=lambda _: "setting 'preset'")
            override(ModelArgs(), model_table, f"{toml_path} [model]")
            values["model_overrides"] = model_table
        config = override(config, values, toml_path)
        refuse_preset_markers({key: getattr(config, key) for key in values}, FILE_MARKERS,
                              where=toml_path, name=lambda key: f"{key} =", leave_out="the setting")
    given = {k: v for k, v in cli_values.items() if v is not None}
    return override(config, given, "command line", name=flag_name)


DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


# Fields whose default stands for "the preset's value" (`resolve`). Given on the command line or in
# a config file, such a value would silently train the preset's run instead of the one asked for
# (`--steps 0`, `steps = 0`: 100 steps).
PRESET_MARKERS = {"steps": 0, "lr": 0.0, "warmup_steps": -1, "batch_tokens": 0, "seq_len": 0, "micro_batch": 0}
# In a config file, the zeros: `steps = 0` reads as a run of no steps. `warmup_steps = -1` asks for
# no run of -1 steps and stays the way a file says "the preset's warmup", as it always was.
FILE_MARKERS = {key: marker for key, marker in PRESET_MARKERS.items() if marker == 0}


def refuse_preset_markers(
    flags: dict[str, Any],
    markers: dict[str, Any] = PRESET_MARKERS,
    where: str = "command line",
    name: Callable[[str], str] = flag_name,
    leave_out: str = "the flag",
) -> None:
    """One UserError for a setting given the value that stands for "the preset's" (`markers`: each
    setting's such value; `train plan` has its own settings), naming `where` it was given (the
    command line, or a config file) and the setting as `name` spells it there."""
    for key, marker in markers.items():
        if flags.get(key) is not None and flags[key] == marker:
            raise UserError(f"{where}: {name(key)} {flags[key]} asks for nothing: give a "
                            f"{'positive' if marker == 0 else 'non-negative'} value, or leave {leave_out} out for "
                            "the preset's")


def validate(config: TrainConfig) -> None:
    """Types, ranges and names of every setting (a TrainConfig built in code too), so that a wrong
    one is one line here, not a traceback (or a silently odd run) later."""
    validate_schema(TrainConfig, config, "train config")
    if not DEVICE.fullmatch(config.device):  # a pattern error would show the regex: this names the choices
        raise UserError(f"train config: device = {config.device!r} is not one of auto, cpu, mps, cuda, cuda:N")


def env_world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) outside it."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def resolve(config: TrainConfig, vocab_size: int | None = None, world_size: int = 1) -> ResolvedConfig:
    """Fill preset defaults in and check the batch and mesh arithmetic for `world_size` processes;
    `vocab_size` replaces the preset's (the token data's own is set by `ResolvedConfig.with_tokens`)."""
    validate(config)
    p = preset(config.model)
    model_args = override(p.model, config.model_overrides, f"model '{config.model}'")
    steps = config.steps if config.steps > 0 else p.steps
    seq_len = config.seq_len if config.seq_len > 0 else p.seq_len
    micro_batch = config.micro_batch if config.micro_batch > 0 else p.micro_batch
    batch_tokens = config.batch_tokens if config.batch_tokens > 0 else max(p.batch_tokens, seq_len * micro_batch)
    if config.warmup_steps >= 0:
        warmup = config.warmup_steps
    else:  # the paper's 2000 steps would swallow a short run whole
        warmup = min(p.warmup_steps, max(1, steps // 10))
    if steps <= 0:
        raise UserError(f"--steps must be positive, got {steps}")
    if warmup > steps:
        raise UserError(f"warmup_steps ({warmup}) exceeds steps ({steps})")
    if config.tp > 1 and config.strategy != "fsdp":
        raise UserError(f"--tp {config.tp} composes with --strategy fsdp, not {config.strategy}")
    check_layout(model_args, world_size, config.tp, seq_len)
    data_ranks = world_size // config.tp  # a tensor-parallel group shares its micro-batches
    per_micro = seq_len * micro_batch * data_ranks
    if batch_tokens % per_micro:
        raise UserError(f"batch of {batch_tokens} tokens is not a multiple of context length x micro-batch"
                        f"{' x ranks' if data_ranks > 1 else ''} ({seq_len} x {micro_batch}"
                        f"{f' x {data_ranks}' if data_ranks > 1 else ''} = {per_micro})")
    if batch_tokens // per_micro > MAX_GRAD_ACCUM:
        raise UserError(f"a batch of {batch_tokens:,} tokens is {batch_tokens // per_micro:,} micro-batches of "
                        f"{per_micro:,} tokens a step, more than {MAX_GRAD_ACCUM:,}: a step would never end; give "
                        "fewer --batch-tokens or a larger --micro-batch")
    if steps * batch_tokens > MAX_RUN_TOKENS:
        raise UserError(f"{steps:,} steps of {batch_tokens:,} tokens are more than 2^62 tokens: give fewer --steps")
    if vocab_size is not None:
        model_args = dataclasses.replace(model_args, vocab_size=vocab_size)
    model_args = dataclasses.replace(model_args, max_seq_len=max(model_args.max_seq_len, seq_len))
    if model_args.dim % model_args.n_heads:
        raise UserError(f"model dim {model_args.dim} is not divisible by n_heads {model_args.n_heads}")
    run_dir = Path(config.run or f"runs/{Path(config.mixture).stem}-{config.model}")
    resolved_train = dataclasses.replace(
        config, steps=steps, lr=config.lr if config.lr > 0 else p.lr, warmup_steps=warmup,
        batch_tokens=batch_tokens, seq_len=seq_len, micro_batch=micro_batch, run=str(run_dir),
        # A TrainConfig built in code skips the schema's conversion: a bool becomes its mode here too.
        activation_checkpointing=checkpointing_mode(config.activation_checkpointing))
    return ResolvedConfig(train=resolved_train, model=model_args, run_dir=run_dir,
                          grad_accum=batch_tokens // per_micro, world_size=world_size,
                          warmup_from_preset=config.warmup_steps < 0)


# In a run folder made by `train import`: its model (no preset) as a [model] table, read by a resume.
IMPORTED_CONFIG = "train.toml"

# Settings a resumed run may change; anything else must match the checkpointed run.
RESUMABLE_CHANGES = {"steps", "checkpoint_every", "keep_checkpoints", "log_every", "log_documents", "progress",
                     "compile", "eval_every", "eval_sequences", "activation_checkpointing", "peak_flops", "data",
                     "device", "strategy", "tp",
                     "run"}  # run: a run folder moved or copied elsewhere resumes there


def check_layout(args: ModelArgs, world_size: int, tp: int, seq_len: int) -> None:
    """The device-mesh arithmetic (data x tensor parallel), checked before any process waits on another."""
    if tp < 1:
        raise UserError(f"--tp must be at least 1, got {tp}")
    if world_size % tp:
        raise UserError(f"world size {world_size} is not divisible by --tp {tp}")
    if args.n_heads % tp or args.kv_heads % tp:
        raise UserError(f"--tp {tp} does not divide the model's {args.n_heads} attention heads"
                        f"{f' ({args.kv_heads} key/value heads)' if args.kv_heads != args.n_heads else ''}")
    if tp > 1 and seq_len % tp:
        raise UserError(f"--tp {tp} does not divide the context length {seq_len} (sequence parallelism)")


def with_started_warmup(now: ResolvedConfig, started: dict[str, Any], where: Path) -> ResolvedConfig:
    """`now` with the warmup of the run it continues (`started`: that run's recorded config) when
    `now`'s is the preset's default for its length. The default shrinks and grows with --steps
    (a tenth of the run, at most the preset's), so `--resume --steps M` after a run of N steps
    would otherwise ask for another warmup than the one already trained; the run keeps its own,
    and the cosine stretches to the new total (train/schedule.py). A warmup given by flag or
    config file is kept as given, and `check_resume_compatible` refuses one that differs."""
    settings = started.get("train")
    warmup = settings.get("warmup_steps") if isinstance(settings, dict) else None
    if not now.warmup_from_preset or type(warmup) is not int or warmup == now.train.warmup_steps:
        return now
    if warmup > now.train.steps:  # as `resolve` refuses for a fresh run: the run would end inside its warmup
        raise UserError(f"{where}: the run was started with warmup_steps={warmup}, more than the "
                        f"{now.train.steps} steps asked for; give --steps {warmup} or more")
    return dataclasses.replace(now, train=dataclasses.replace(now.train, warmup_steps=warmup))


def check_resume_compatible(saved: dict[str, Any], now: ResolvedConfig, where: Path, model_only: bool = False) -> None:
    """A resumed run keeps its tokenizer, its model and (unless `model_only`: a weights-only checkpoint
    that no step was trained from) every setting outside RESUMABLE_CHANGES."""
    current = now.to_json()
    earlier = saved.get("tokenizer_sha256") or ""
    if earlier and now.tokenizer_sha256 and earlier != now.tokenizer_sha256:
        raise UserError(f"{where}: the run was trained on tokens of tokenizer sha256 {earlier[:12]}, but the token "
                        f"shards under {now.train.data} are of {now.tokenizer_sha256[:12]}: refusing to continue on "
                        "another tokenizer's ids")
    changed = token_data_changes(saved.get("token_data") or {}, now.token_data)
    if changed:
        raise UserError(f"{where}: the token shards under {now.train.data} changed since the run started "
                        f"({'; '.join(changed)}; re-encoded, or documents removed by `pipeline remove`): the windows "
                        "drawn so far were of the old shards; start a new run (--run NEW) to train on these")
    earlier_shares = saved.get("proportions") or {}
    if not model_only and earlier_shares and now.proportions and earlier_shares != now.proportions:
        shown = ", ".join(f"{name} {earlier_shares.get(name, 0):g} -> {now.proportions.get(name, 0):g}"
                          for name in sorted(set(earlier_shares) | set(now.proportions))
                          if earlier_shares.get(name) != now.proportions.get(name))
        raise UserError(f"{where}: the mixture {now.train.mixture!r} draws other shares than when the run started "
                        f"({shown}): the windows drawn so far followed the old ones; put the mixture back, or "
                        "start a new run (--run NEW) to train on this one")
    for key, value in saved["train"].items():
        if not model_only and key not in RESUMABLE_CHANGES and current["train"].get(key) != value:
            raise UserError(f"{where}: cannot resume with {key}={current['train'].get(key)!r}; "
                            f"the run was started with {value!r}")
    if saved["model"] != current["model"]:
        # An imported run's model is no preset: `train import` wrote it as a [model] table.
        hint = f"; the imported model is {now.run_dir / IMPORTED_CONFIG}'s (train import), used when --resume " \
            "is given without --model or --config" if model_only else ""
        raise UserError(f"{where}: cannot resume with a different model ({current['model']} vs {saved['model']})"
                        f"{hint}")


def token_data_changes(earlier: dict[str, dict[str, int]], now: dict[str, dict[str, int]]) -> list[str]:
    """What differs between two records of the token data, a few words per source (nothing when
    the earlier run kept no record)."""
    if not earlier:
        return []
    changes = []
    for name in sorted(set(earlier) | set(now)):
        was, is_now = earlier.get(name), now.get(name)
        if was is None or is_now is None:
            changes.append(f"{name} {'was not drawn from' if was is None else 'is no longer drawn from'}")
        elif was != is_now:
            changes.append(f"{name} had {was['documents']:,} documents and {was['tokens']:,} tokens, now "
                           f"{is_now['documents']:,} and {is_now['tokens']:,}")
    return changes


def write_config(resolved: ResolvedConfig, path: Path) -> None:
    write_json_atomic(path, resolved.to_json())
