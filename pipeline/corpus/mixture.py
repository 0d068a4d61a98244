"""Named mixtures: how much of each source a tokenizer sample or a training run draws.

`llama1` is the paper's Table 1: sampling proportions and the epochs each source sees over
1.4T tokens. Custom mixtures come from TOML files (see `load_mixture`):

    name = "mine"            # optional, default: the file's stem
    reference_tokens = 0     # optional: the total the reference epochs refer to
    [proportions]            # source -> share of sampled tokens, summing to 1
    c4 = 0.6
    wikipedia = 0.4
    [reference_epochs]       # optional: epochs reported elsewhere, shown beside ours
    c4 = 1.0

Its sources are validated against the registry of sources (pipeline/engine/registry.py); the
tokenizer's sample, the trainer and `pipeline mix` all read mixtures from here, and
`pipeline run all` and `pipeline sample` cover `LLAMA1`'s sources, in its order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Annotated

from pydantic import Field, with_config
from typing_extensions import Required, TypedDict  # pydantic needs this TypedDict below Python 3.12

from pipeline.common.config import STRICT, Amount, read_toml
from pipeline.common.config import validate as validate_schema
from pipeline.common.errors import UserError
from pipeline.engine.registry import source_names


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

SUM_TOLERANCE = 1e-6


@with_config(STRICT)
class MixtureFile(TypedDict, total=False):
    """The schema of a mixture TOML file (see the module docstring)."""

    name: str
    proportions: Required[Annotated[dict[str, Amount], Field(min_length=1)]]
    reference_epochs: dict[str, Amount]
    reference_tokens: Amount  # a float is allowed: 1.4e12 reads better than 1400000000000


def load_mixture(name_or_path: str | Path) -> Mixture:
    """A named mixture (`llama1`) or one read from a TOML file, validated.

    Raises UserError when the file is missing, does not fit MixtureFile, names a source that
    does not exist, or its proportions do not sum to 1.
    """
    key = str(name_or_path)
    if key in MIXTURES:
        return MIXTURES[key]
    path = Path(key)
    if not path.exists():
        if path.suffix != ".toml" and "/" not in key:
            raise UserError(f"unknown mixture '{key}' (named: {', '.join(MIXTURES)}; or give a .toml file)")
        raise UserError(f"{path}: mixture file does not exist")
    table = validate_schema(MixtureFile, read_toml(path, "mixture file"), str(path))
    mixture = Mixture(
        name=table.get("name", path.stem),
        proportions=table["proportions"],
        reference_epochs=table.get("reference_epochs", {}),
        reference_tokens=int(table.get("reference_tokens", 0)),
    )
    validate(mixture, str(path))
    return mixture


def validate(mixture: Mixture, where: str) -> None:
    """Every source exists in the registry and the proportions sum to 1."""
    known = source_names()
    unknown = [s for s in mixture.proportions if s not in known]
    if unknown:
        raise UserError(f"{where}: unknown source(s) {unknown} in mixture '{mixture.name}' "
                        f"(known: {', '.join(known)})")
    total = sum(mixture.proportions.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise UserError(f"{where}: proportions of mixture '{mixture.name}' sum to {total:.6g}, not 1")
    stray = set(mixture.reference_epochs) - set(mixture.proportions)
    if stray:
        raise UserError(f"{where}: reference_epochs names source(s) {sorted(stray)} not in the proportions")


def exact_fractions(proportions: list[float]) -> list[Fraction]:
    """Proportions as the decimals written (0.67 -> 67/100), normalised to sum to one."""
    if not proportions or any(p < 0 for p in proportions) or sum(proportions) <= 0:
        raise ValueError(f"proportions must be non-negative with a positive sum, got {proportions}")
    exact = [Fraction(repr(float(p))) for p in proportions]
    total = sum(exact)
    return [p / total for p in exact]


def largest_remainder(weights: list[Fraction], total: int) -> list[int]:
    """`total` shared in whole numbers as `weights` (summing to one) share it, adding up to `total`:
    each its share rounded down, then one more each for the largest remainders (the earlier on a
    tie). Rounding each share alone may miss the total (10 tokens at 45/45/10% gave 4 + 4 + 1)."""
    ideal = [w * total for w in weights]
    shares = [int(x) for x in ideal]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(ideal[i] - shares[i]), i))
    for i in by_remainder[:total - sum(shares)]:
        shares[i] += 1
    return shares
