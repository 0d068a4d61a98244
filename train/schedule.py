"""The learning-rate schedule: linear warmup to the peak, then cosine decay to a floor.

For step s of a run of `total` steps (s = 0 .. total-1), warmup W, peak P, floor m = ratio * P:

    s <  W:  lr = P * (s + 1) / W                        (step W-1, the end of warmup, is at P)
    s >= W:  t  = (s - W) / max(1, total - 1 - W)        (0 at step W, 1 at the last step)
             lr = m + (P - m) * (1 + cos(pi * t)) / 2    (P at step W, m at the last step)

Warmup starts at P/W rather than 0 so no step is spent with a zero learning rate.

A run resumed with more steps (`train --resume --steps M` after N) keeps the warmup W it started
with, the default one included (train/config.py `with_started_warmup`), and from step N on
follows this schedule for total = M: the same peak and floor, the cosine stretched from step W to
step M-1. So the rate at step N is the longer schedule's, above the floor the first N steps
decayed to (it jumps up there), and it decays to the floor at step M-1. A run meant to be
extended anneals smoothly only if it is started with its final --steps.
"""

from __future__ import annotations

import math


def learning_rate(step: int, *, peak: float, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    floor = peak * min_ratio
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - 1 - warmup_steps))
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
