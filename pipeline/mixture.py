"""Named mixtures: how much of each source a tokenizer sample or a training run draws.

`llama1` is the paper's Table 1: sampling proportions and the epochs each source sees over
1.4T tokens. Custom mixtures come from TOML files (see `load_mixture`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mixture:
    name: str
    proportions: dict[str, float]  # source -> share of sampled tokens, summing to 1
    reference_epochs: dict[str, float] = field(default_factory=dict)  # what the paper reports, if known
    reference_tokens: int = 0  # the total the reference epochs refer to

    def sources(self) -> list[str]:
        return list(self.proportions)


LLAMA1 = Mixture(
    name="llama1",
    proportions={
        "commoncrawl": 0.670,
        "c4": 0.150,
        "github": 0.045,
        "wikipedia": 0.045,
        "books": 0.045,
        "arxiv": 0.025,
        "stackexchange": 0.020,
    },
    reference_epochs={
        "commoncrawl": 1.10,
        "c4": 1.06,
        "github": 0.64,
        "wikipedia": 2.45,
        "books": 2.23,
        "arxiv": 1.06,
        "stackexchange": 1.03,
    },
    reference_tokens=1_400_000_000_000,
)

MIXTURES: dict[str, Mixture] = {"llama1": LLAMA1}
