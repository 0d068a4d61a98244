"""Mixtures: the paper's Table 1, TOML mixtures and their validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.common.errors import UserError
from pipeline.corpus.mixture import LLAMA1, MIXTURES, load_mixture


def test_llama1_is_the_papers_table_1() -> None:
    assert load_mixture("llama1") is LLAMA1 is MIXTURES["llama1"]
    assert sum(LLAMA1.proportions.values()) == pytest.approx(1.0)
    assert LLAMA1.proportions["commoncrawl"] == 0.67 and LLAMA1.reference_epochs["wikipedia"] == 2.45


def test_toml_mixture_loads_and_validates(tmp_path: Path) -> None:
    good = tmp_path / "mine.toml"
    good.write_text('[proportions]\nc4 = 0.75\nwikipedia = 0.25\n[reference_epochs]\nc4 = 1.5\n')
    mixture = load_mixture(str(good))
    assert (mixture.name, mixture.proportions, mixture.reference_epochs) == (
        "mine", {"c4": 0.75, "wikipedia": 0.25}, {"c4": 1.5})
    bad_sum = tmp_path / "sum.toml"
    bad_sum.write_text("[proportions]\nc4 = 0.5\nwikipedia = 0.4\n")
    with pytest.raises(UserError, match="sum to 0.9, not 1"):
        load_mixture(bad_sum)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[proportions]\nc4 = 0.5\nmyspace = 0.5\n")
    with pytest.raises(UserError, match=r"unknown source\(s\) \['myspace'\]"):
        load_mixture(unknown)
    typo = tmp_path / "typo.toml"
    typo.write_text("[proportion]\nc4 = 1.0\n")
    with pytest.raises(UserError, match="unknown setting 'proportion'"):
        load_mixture(typo)
    with pytest.raises(UserError, match="unknown mixture 'llama2'"):
        load_mixture("llama2")
    with pytest.raises(UserError, match="does not exist"):
        load_mixture(tmp_path / "absent.toml")
