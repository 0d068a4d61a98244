"""`train`: train a LLaMA model on a mixture of token shards; plan, plot, export, generate, evaluate.

Training takes flags only (`train --mixture llama1 --model tiny --steps 200`); the other jobs
are subcommands named by the first argument (`train plot --run runs/NAME`). The first argument
decides which parser reads the rest, so both forms work and `train --help` lists both.

The same command trains in one process or in each of N under torchrun (train/parallel.py).
Every training flag's destination is a TrainConfig field of the same name: the flags are the
one list, and the config values are read from them by the dataclass's fields.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from pipeline.common.cli import Command, add_renamed, path_arg
from pipeline.common.cli import main as run_cli
from pipeline.common.errors import UserError, os_error_line
from pipeline.common.lock import folder_lock

DESCRIPTION = """\
Train a LLaMA-1 model (RMSNorm, SwiGLU, rotary embeddings; AdamW, warmup + cosine schedule)
on token shards drawn at a mixture's proportions:

  train --mixture llama1 --model tiny --steps 200          a short run on data/tokens
  train --mixture llama1 --model tiny --steps 400 --resume continue the last checkpoint of the run
  torchrun --nproc-per-node 8 --no-python train --model 7b --run-dir runs/7b      FSDP over 8 GPUs
  torchrun --nnodes 16 --nproc-per-node 8 ... train --model 65b --tp 8 ...         FSDP x tensor parallel

Runs land in runs/<mixture>-<model> unless --run says otherwise: config.json (the resolved
config), metrics.jsonl, checkpoints/step-NNNNNNNN/. Presets: debug, tiny, 1b, 7b, 13b, 33b, 65b.
SIGTERM (what Slurm, Kubernetes, `docker stop` and `timeout` send) saves a checkpoint after the
step in progress and exits 0, on every rank at the same step; --resume continues from it. Ctrl-C
(SIGINT) does the same and exits 130; a second Ctrl-C quits at once, without that checkpoint. SIGHUP
(the terminal gone: an ssh session dropped) does what SIGTERM does, its output to that terminal sent
to /dev/null. A SIGTERM to torchrun itself reaches every rank, but torchrun kills them after its
--shutdown-timeout (30 s by default): give it longer than a checkpoint takes to save.

Subcommands (the first argument), each with its own --help:

  train plan --model 7b --world-size 8   memory per rank: does it fit?
  train data --model 65b --available reference   tokens and exact epochs a run draws per source
  train plot --run runs/NAME       PNG of loss and learning rate
  train export --run runs/NAME     convert a checkpoint for Hugging Face transformers
  train import --hf DIR --run runs/NAME   a Hugging Face LLaMA folder as a run (generate, continue)
  train generate --run runs/NAME   sample text from a checkpoint
  train eval --run runs/NAME       loss and perplexity on held-out token shards, per source and
                                   for the mixture (no benchmarks)
"""

COMMANDS = [
    Command("plan", "train.plan", "memory per rank for a model and cluster"),
    Command("data", "train.data_plan", "what a run draws from each source: tokens, exact epochs, a trace"),
    Command("plot", "train.plot", "PNG of loss and learning rate"),
    # Imported only when used: export pulls in transformers, which takes seconds to load.
    Command("export", "train.export", "export a checkpoint"),
    Command("import", "train.hf_import", "a Hugging Face LLaMA folder as a run to continue"),
    Command("generate", "train.generate", "sample text from a checkpoint"),
    Command("eval", "train.evaluate", "held-out loss and perplexity of a checkpoint, per source and mixture"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The training flags: `train` with no command name (this module is the default command)."""
    parser.add_argument("--mixture", type=path_arg, help="mixture name or TOML file (default llama1)")
    parser.add_argument("--model", help="preset: debug, tiny, 1b, 7b, 13b, 33b, 65b (default tiny)")
    parser.add_argument("--steps", type=int, help="optimizer steps (default: the preset's)")
    # dest `data`: the TrainConfig field (and TOML key) that holds the token root.
    tokens = parser.add_argument("--tokens", type=path_arg, dest="data", metavar="DIR",
                                 help="token shard root, one folder per source (default data/tokens)")
    add_renamed(parser, tokens, "--data")
    parser.add_argument("--run", "--run-dir", type=path_arg, dest="run",
                        help="run folder (default runs/<mixture>-<model>); "
                        "under torchrun spell it --run-dir (torchrun's own parser takes --run)")
    parser.add_argument("--lr", type=float, help="peak learning rate (default: the preset's)")
    parser.add_argument("--warmup-steps", type=int, help="linear warmup steps (default: the preset's, at most "
                        "a tenth of the run; with --resume, the run's own)")
    parser.add_argument("--batch-tokens", type=int, help="tokens per optimizer step; a multiple of "
                        "seq-len x micro-batch, reached by gradient accumulation")
    parser.add_argument("--seq-len", type=int, help="context length")
    parser.add_argument("--micro-batch", type=int, help="sequences per forward/backward")
    parser.add_argument("--seed", type=int, help="seed of the initial weights and of the batches drawn")
    parser.add_argument("--checkpoint-every", type=int, help="save every N steps (default: only at the end)")
    parser.add_argument("--keep-checkpoints", type=int, help="keep the newest K checkpoints (default 3)")
    parser.add_argument("--log-every", type=int, metavar="N", help="a row of metrics.jsonl (loss, learning rate, "
                        "tokens/s, MFU) and a progress line every N steps, and at the last (default 1)")
    parser.add_argument("--eval-every", type=int, metavar="N", help="every N steps, the held-out loss (mean "
                        "cross-entropy, nats per token) of each source, on the first --eval-sequences windows of "
                        "context + 1 tokens of its held-out split (heldout-NNNNN.bin of `tokenizer encode`), and "
                        "of the mixture: the mean of the sources' losses weighted by the mixture's proportions. "
                        "Logged as eval/<source> and eval/mixture in metrics.jsonl, in the row of step N-1, 2N-1, ... "
                        "(steps count from 0: the model after N steps, which checkpoint step-N holds; `train eval "
                        "--checkpoint N --max-tokens K x context` gives the same numbers) (default 0: never)")
    parser.add_argument("--eval-sequences", type=int, metavar="K", help="held-out windows per source for "
                        "--eval-every, the same ones every time (default 8)")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N (default auto)")
    parser.add_argument("--strategy", choices=("fsdp", "ddp"), help="data parallelism under torchrun: fsdp "
                        "(FSDP2, fully_shard per block; default) or ddp (replicated weights)")
    parser.add_argument("--tp", type=int, help="tensor-parallel degree: ranks that split every layer "
                        "(divides the world size and the heads; default 1)")
    parser.add_argument("--compile", action="store_const", const=True, help="torch.compile each block")
    parser.add_argument("--activation-checkpointing", nargs="?", const="full", choices=("none", "selective", "full"),
                        help="recompute block activations in the backward pass: selective keeps the outputs of "
                        "the matrix products and attention (the LLaMA paper's choice) and recomputes the "
                        "element-wise rest; full keeps each block's input and recomputes the whole block; "
                        "none (default) keeps everything. The flag alone is full")
    parser.add_argument("--peak-flops", type=float, help="peak FLOP/s of one device for MFU (default: detect)")
    parser.add_argument("--skip-missing-sources", action="store_const", const=True,
                        help="leave out mixture sources without token shards and renormalise the rest")
    parser.add_argument("--no-progress", dest="progress", action="store_const", const=False, help="no progress bar")
    parser.add_argument("--log-documents", action="store_const", const=True,
                        help="write <run>/documents.jsonl: one line per sequence trained on, with the corpus ids of "
                        "the documents its tokens come from")
    # Not TrainConfig fields: how the run starts.
    parser.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint (without it, a run folder "
                        "holding checkpoints is refused, unless the run finished --steps with these very "
                        "settings: then there is nothing to do, and exit 0)")
    parser.add_argument("--config", type=path_arg,
                        help="TOML file: top-level TrainConfig keys, a [model] table of ModelArgs")


NOT_CONFIG = {"resume", "config"}


def main(argv: Sequence[str] | None = None) -> None:
    # torchrun's WORLD_SIZE read here, not through train.config's env_world: `train --help` stays light.
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        end_without_teardown(lambda: main_of_one_process(argv))
    main_of_one_process(argv)


def main_of_one_process(argv: Sequence[str] | None) -> None:
    run_cli("train", DESCRIPTION, COMMANDS, argv,
            "rerun the same command with --resume to continue from the last checkpoint", default="train.cli")


def end_without_teardown(command: Callable[[], None]) -> NoReturn:
    """Run `command` and end the process with its exit status, without the interpreter's teardown.

    For a rank of a torchrun job. destroy_process_group() unregisters the job's process groups,
    but torch's own caches (DTensor's sharding propagation, the device mesh's topology and
    redistribution plans) keep them, and so their gloo worker threads, for the life of the
    process. They are torn down with the interpreter, and there a rank now and then aborts
    ("terminate called without an active exception", SIGABRT; seen in this suite's CI), after a
    run that had finished and saved, and torchrun reports the job failed: a gloo thread that needs
    the GIL while the interpreter is being torn down is ended inside a C++ destructor. By the time
    `command` returns, everything the run writes is closed (checkpoints, metrics, the run folder's
    lock) and the group is left; only the standard streams remain to flush."""
    try:
        command()
        status = 0
    except SystemExit as end:
        if isinstance(end.code, str):  # sys.exit("message"): Python prints it and exits 1
            print(end.code, file=sys.stderr)
        status = end.code if isinstance(end.code, int) else int(end.code is not None)
    except BaseException:  # an error nothing turned into an exit status: reported as Python reports it
        traceback.print_exc()
        status = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream: nothing more to say
            stream.flush()
    os._exit(status)


def run(args: argparse.Namespace) -> None:
    try:
        run_training(args)
    except UserError:
        from train.config import env_world  # loaded by run_training already

        if env_world()[0] != 0:  # under torchrun every rank meets the same error: rank 0 says it
            sys.exit(2)
        raise


def run_training(args: argparse.Namespace) -> None:
    # OpenMP threads that spin while waiting for each other collapse when the cores are shared
    # with other work (measured: 2 threads 15x slower than 1 on a loaded 2-core machine); passive
    # waiting costs next to nothing on an idle one. libgomp reads this once, when torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Imported here so `train --help` and the subcommands start without loading torch; the config
    # file and flags are checked before it loads too (a typo is one line at once, not in seconds).
    from train.config import IMPORTED_CONFIG, env_world, load_overrides, refuse_preset_markers, resolve
    from train.preemption import StopRequest

    # Installed for the rest of the process, never restored: a SIGTERM or SIGINT while starting up ends
    # the command at once (nothing is trained yet, and setup may be blocked where no step comes: a
    # rank waiting for its peers), one from the first step on stops the run after the step in
    # progress, saved; one after the last checkpoint (a second `docker stop`) cannot turn the clean
    # exit into a kill. A SIGHUP is counted from the start.
    stop = StopRequest()
    stop.install(starting=True)

    cli_values = {k: v for k, v in vars(args).items() if k not in NOT_CONFIG}
    refuse_preset_markers(cli_values)
    config_file = args.config
    imported = Path(args.run) / IMPORTED_CONFIG if args.run else None
    if config_file is None and args.resume and imported is not None and imported.is_file():
        # A run made by `train import` holds its model (no preset) in this file: resuming it needs
        # no --config.
        config_file = str(imported)
    config = load_overrides(config_file, cli_values)  # a flag that is no TrainConfig field fails here
    rank, world_size, _ = env_world()
    # Resolved once, here: the batch and mesh arithmetic are checked before any rank waits on
    # another, and the values of the flags (`--device gpu`) before torch loads.
    resolved = resolve(config, world_size=world_size)
    from train.loop import train
    from train.parallel import join, leave

    with contextlib.ExitStack() as held:
        # One run per run folder: a second would overwrite this one's checkpoints and metrics. Only
        # rank 0 takes the lock (it refuses every other process, this job's own ranks too), and
        # before joining the process group, so it is held before any rank writes. Every rank then
        # learns rank 0's outcome from the first collective after joining: a refused rank 0 ends
        # the whole job with its one line and every rank exits 2. (Ranks reading the lock file
        # themselves could not tell their own job's holder from another's, and a rank 0 ending
        # before joining would leave the others waiting for it.)
        refusal = lock_run_folder(held, resolved.run_dir) if rank == 0 else None
        par = join(config.strategy, config.device, config.tp)
        try:
            refusal = par.gather(refusal)[0]
            if refusal is not None:
                raise UserError(refusal)
            result = train(resolved, resume=args.resume, parallel=par, stop=stop)
            # Every rank ended normally: they wait for each other, so that none tears its gloo
            # connections down while another may still have an operation on them (and a rank's
            # process then ends without the interpreter's teardown: end_without_teardown). After
            # an error no rank waits: the others may never arrive.
            par.barrier()
        finally:
            leave()
    # Ctrl-C ends the command as an interrupted one (130, what shells and `set -e` scripts expect),
    # on every rank; the checkpoint is saved all the same.
    interrupted = result.stopped_by == "SIGINT"
    if rank != 0:
        if interrupted:
            sys.exit(130)
        return
    ranks = f"{world_size} processes ({config.strategy}{f', tp {config.tp}' if config.tp > 1 else ''}); " \
        if world_size > 1 else ""
    if result.stopped_by:
        print(f"train: {result.stopped_by} at step {result.completed}: saved {result.checkpoint}; resume with --resume")
        if interrupted:
            sys.stdout.flush()
            sys.exit(130)
    elif result.losses:
        print(f"train: {ranks}steps {result.start_step}-{result.steps} done; {loss_summary(result.losses)}; "
              f"checkpoint {result.checkpoint}; metrics {result.run_dir / 'metrics.jsonl'}")
    else:
        print(f"train: {result.run_dir} already finished {result.steps} steps; nothing to do")


def loss_summary(losses: list[float]) -> str:
    """How the loss moved over this run's steps, for the line that ends it.

    Single-step losses are noisy: compare the means of the first and last 10 steps, or of the
    first and last halves of a run under 20 steps, so the two windows never overlap."""
    if len(losses) == 1:
        return f"loss of the one step {losses[0]:.4f}"
    window = min(10, len(losses) // 2)
    first = sum(losses[:window]) / window
    last = sum(losses[-window:]) / window
    change = 100 * (first - last) / first
    steps = "step" if window == 1 else "steps"
    return (f"mean loss of the first {window} {steps} {first:.4f}, of the last {window} {last:.4f} "
            f"({abs(change):.1f}% {'lower' if change >= 0 else 'higher'})")


def lock_run_folder(held: contextlib.ExitStack, run_dir: Path) -> str | None:
    """Take `run_dir`'s lock into `held`; None when taken, else the line saying why not."""
    try:
        held.enter_context(folder_lock(run_dir, "train"))
    except UserError as e:
        return str(e)
    except OSError as e:  # an unwritable run folder: under torchrun the other ranks must end too
        return os_error_line(e)
    return None


if __name__ == "__main__":  # `python -m train.cli ...`, as the `train` command
    main()
