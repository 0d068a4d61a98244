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

import math
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.common.config import read_toml
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


def load_mixture(name_or_path: str | Path) -> Mixture:
    """A named mixture (`llama1`) or one read from a TOML file, validated.

    Raises UserError when the file is missing or malformed, names a source that does not
    exist, or its proportions do not sum to 1.
    """
    key = str(name_or_path)
    if key in MIXTURES:
        return MIXTURES[key]
    path = Path(key)
    if not path.exists():
        if path.suffix != ".toml" and "/" not in key:
            raise UserError(f"unknown mixture '{key}' (named: {', '.join(MIXTURES)}; or give a .toml file)")
        raise UserError(f"{path}: mixture file does not exist")
    table = read_toml(path)
    unknown = set(table) - {"name", "proportions", "reference_epochs", "reference_tokens"}
    if unknown:
        raise UserError(f"{path}: unknown key(s) {sorted(unknown)} (known: name, proportions, "
                        "reference_epochs, reference_tokens)")
    proportions = table.get("proportions")
    if not isinstance(proportions, dict) or not proportions:
        raise UserError(f"{path}: needs a [proportions] table of source = share")
    mixture = Mixture(
        name=str(table.get("name", path.stem)),
        proportions={str(k): _number(v, path, f"proportions.{k}") for k, v in proportions.items()},
        reference_epochs={str(k): _number(v, path, f"reference_epochs.{k}")
                          for k, v in dict(table.get("reference_epochs", {})).items()},
        reference_tokens=int(_number(table.get("reference_tokens", 0), path, "reference_tokens")),
    )
    validate(mixture, str(path))
    return mixture


def _number(value: object, path: Path, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
        raise UserError(f"{path}: {key} must be a number >= 0, got {value!r}")
    return float(value)


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
