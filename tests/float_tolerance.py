"""How close two float32 results must be when two code paths compute them in different orders.

float32 sums taken in another order (another CPU's vector width, another thread count, a chunked
kernel, a fused loss) are not bit-equal: each addition rounds by up to float32's epsilon (2^-23)
of the running magnitude, so two correct results differ by a small multiple of epsilon times the
magnitude of the values summed, not of the element compared (an element near zero still carries
the rounding of the large terms that cancelled in it). A per-element relative tolerance therefore
holds only on the CPU it was tuned on. These checks scale with the largest magnitude of the
expected tensor and a stated count of rounding steps: a real error (a wrong gradient, a token that
leaks through the causal mask, a wrong weight) moves values by orders of magnitude more.
"""

from __future__ import annotations

import torch

EPS32 = torch.finfo(torch.float32).eps
DEFAULT_ROUNDINGS = 64  # measured gaps are 1-7 epsilons of the largest magnitude; 64 leaves room for any CPU


def float32_tolerance(expected: torch.Tensor, roundings: int = DEFAULT_ROUNDINGS) -> float:
    """`roundings` float32 epsilons of the largest magnitude in `expected`."""
    largest = expected.detach().abs().max().item() if expected.numel() else 0.0
    return roundings * EPS32 * max(largest, torch.finfo(torch.float32).tiny)


def assert_float32_close(actual: torch.Tensor, expected: torch.Tensor, *, roundings: int = DEFAULT_ROUNDINGS,
                         msg: str = "") -> None:
    """`actual` equals `expected` up to float32 rounding in another summation order."""
    assert actual.shape == expected.shape, f"{msg}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    gap = (actual.detach().double() - expected.detach().double()).abs().max().item() if actual.numel() else 0.0
    tolerance = float32_tolerance(expected, roundings)
    assert gap <= tolerance, (f"{msg}: largest difference {gap:.3g} > {tolerance:.3g} "
                              f"({roundings} float32 epsilons of the largest magnitude {tolerance / roundings / EPS32:.3g})")
