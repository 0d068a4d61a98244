"""Must show 3: the training sample follows the mixture, is deterministic, and says what
happened when a source has too little text or none."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.common.errors import UserError
from pipeline.corpus.mixture import Mixture
from tests.tokenizer.conftest import MIXTURE, write_corpus
from tests.tokenizer.corpus import write_source
from tokenizer.sample import byte_targets, draw_sample


def test_byte_shares_follow_the_mixture_within_one_point(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus")  # 380 KB, 195 KB, 127 KB of text
    report = draw_sample(MIXTURE, corpus, tmp_path / "sample.txt", cap_bytes=300_000, seed=0)
    assert abs(report.bytes - 300_000) < 1_500
    for source, proportion in MIXTURE.proportions.items():
        entry = report.sources[source]
        assert not entry.short and not entry.missing
        assert entry.target_bytes == round(proportion * 300_000)
        assert abs(entry.share - proportion) < 0.01, (source, entry.share)
        assert 0 < entry.documents < entry.available_documents
    text = (tmp_path / "sample.txt").read_bytes()
    assert len(text) == report.bytes + report.documents  # one newline after each document


def test_sample_is_deterministic_and_depends_on_the_seed(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    draw_sample(MIXTURE, corpus, tmp_path / "a.txt", 200_000, seed=1)
    draw_sample(MIXTURE, corpus, tmp_path / "b.txt", 200_000, seed=1)
    draw_sample(MIXTURE, corpus, tmp_path / "c.txt", 200_000, seed=2)
    assert (tmp_path / "a.txt").read_bytes() == (tmp_path / "b.txt").read_bytes()
    assert (tmp_path / "a.txt").read_bytes() != (tmp_path / "c.txt").read_bytes()
    # The same documents whatever the shard layout: the choice depends on ids only.
    write_corpus(tmp_path / "resharded", shard_docs=37)
    draw_sample(MIXTURE, tmp_path / "resharded", tmp_path / "d.txt", 200_000, seed=1)
    assert sorted((tmp_path / "a.txt").read_text().split("\n")) == sorted((tmp_path / "d.txt").read_text().split("\n"))


def test_short_source_gives_all_it_has_and_the_json_says_so(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", {"c4": 600, "wikipedia": 300, "github": 20})
    report = draw_sample(MIXTURE, corpus, tmp_path / "sample.txt", cap_bytes=300_000, seed=0)
    github = report.sources["github"]
    assert github.short and github.bytes == github.available_bytes < 60_000
    assert github.documents == 20 and "less text than its share" in github.note
    assert github.target_bytes == github.available_bytes
    # The others make up the shortfall and keep their ratio, 50:30.
    c4, wikipedia = report.sources["c4"], report.sources["wikipedia"]
    assert abs(report.bytes - 300_000) < 1_500
    assert abs(c4.bytes / (c4.bytes + wikipedia.bytes) - 0.5 / 0.8) < 0.01
    assert report.to_json()["sources"]["github"]["short"] is True


def test_missing_source_is_recorded_and_its_share_redistributed(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", {"c4": 600, "wikipedia": 300})
    report = draw_sample(MIXTURE, corpus, tmp_path / "sample.txt", cap_bytes=160_000, seed=0)
    assert report.sources["github"].missing and report.sources["github"].bytes == 0
    assert "no corpus shards" in report.sources["github"].note
    assert abs(report.sources["c4"].share - 0.5 / 0.8) < 0.01


def test_byte_targets_water_fill() -> None:
    proportions = {"a": 0.5, "b": 0.3, "c": 0.2}
    assert byte_targets({"a": 10_000, "b": 10_000, "c": 10_000}, proportions, 1000) == {"a": 500, "b": 300, "c": 200}
    # c has 50 of its 200: the remaining 950 split 5:3 between a and b.
    assert byte_targets({"a": 10_000, "b": 10_000, "c": 50}, proportions, 1000) == {"c": 50, "a": 594, "b": 356}
    # Everything is short: everything is taken.
    assert byte_targets({"a": 10, "b": 20, "c": 30}, proportions, 1000) == {"a": 10, "b": 20, "c": 30}


def test_no_corpus_and_empty_source_are_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no corpus found"):
        draw_sample(MIXTURE, tmp_path / "nothing", tmp_path / "s.txt", 1000)
    write_source(tmp_path / "corpus", "c4", 0, texts=[])
    with pytest.raises(UserError, match="empty source"):
        draw_sample(Mixture("only_c4", {"c4": 1.0}), tmp_path / "corpus", tmp_path / "s.txt", 1000)
