"""One rank of the in-loop evaluation test (tests/train/test_evaluate.py), run under torchrun:

    python -m torch.distributed.run --nproc-per-node 2 tests/train/eval_worker.py TOKENS RUN OUT_DIR

Trains the debug preset with `eval_every=2` through the real loop and writes the held-out losses
this rank computed, by step, to `OUT_DIR/rank-R.json` (rank 0 also logs them to metrics.jsonl).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from train.cli import end_without_teardown
from train.config import TrainConfig, env_world, resolve
from train.loop import train
from train.parallel import join, leave

STEPS, EVAL_EVERY, EVAL_SEQUENCES = 4, 2, 2


def main(tokens: str, run: str, out: Path) -> None:
    _, world_size, _ = env_world()
    config = TrainConfig(model="debug", data=tokens, run=run, steps=STEPS, batch_tokens=4 * 32 * world_size,
                         device="cpu", progress=False, eval_every=EVAL_EVERY, eval_sequences=EVAL_SEQUENCES)
    par = join(config.strategy, config.device)
    result = train(resolve(config, world_size=world_size), parallel=par)
    (out / f"rank-{par.rank}.json").write_text(json.dumps({str(k): v for k, v in result.evals.items()}))
    par.barrier()  # as `train` does before leaving
    leave()


if __name__ == "__main__":
    # Ended as `train` ends a rank: without the interpreter's teardown, where one can abort.
    end_without_teardown(lambda: main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
