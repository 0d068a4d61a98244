"""Every config kind against its schema, through the real CLI: a `pipeline run --config` file (its
shape and each source's table), a mixture file, a `train --config` file (its top level and its
[model] table), training flags and `train plan`'s flags. A wrong type, a number that is not
finite, a wrong shape nested inside, an unknown key or a value past a bound is one line naming the
file (or flag), the key path and the problem, with exit 2; valid configs load as they always did."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.commands.run import build_source
from pipeline.corpus.mixture import load_mixture
from tests.hostile.helpers import one_error, run_script
from train.config import load_overrides

pytestmark = pytest.mark.slow  # each test runs the CLI in subprocesses

COMMONCRAWL_KEYS = ("classifier, dedup_across_snapshots, dedup_span_files, dedup_strict, keep_buckets, lang_threshold, "
                    "languages, lid_model, min_chars, models_dir, perplexity_cutoffs, perplexity_percentiles, "
                    "perplexity_unit, wiki_threshold")


@pytest.mark.parametrize("source, toml, message", [
    # The file's shape: a table per source.
    ("c4", "c4 = 5", "bad.toml: [c4] must be a table, got 5"),
    ("commoncrawl", 'commoncrawl = "en"', "bad.toml: [commoncrawl] must be a table, got 'en'"),
    # Wrong types: no coercion of "5", true or 1.5 to an int, nor of 1 to a bool.
    ("c4", '[c4]\nmin_sentences = "5"', "bad.toml [c4]: setting 'min_sentences' must be int, got '5'"),
    ("c4", "[c4]\nmin_sentences = true", "bad.toml [c4]: setting 'min_sentences' must be int, got True"),
    ("wikipedia", "[wikipedia]\ntask_bytes = 1e9",
     "bad.toml [wikipedia]: setting 'task_bytes' must be int, got 1000000000.0"),
    ("github", "[github]\nstrip_license_headers = 1",
     "bad.toml [github]: setting 'strip_license_headers' must be bool, got 1"),
    ("books", "[books]\nmin_chars = 1979-05-27",
     "bad.toml [books]: setting 'min_chars' must be int, got datetime.date(1979, 5, 27)"),
    # Not finite.
    ("commoncrawl", "[commoncrawl]\nlang_threshold = nan",
     "bad.toml [commoncrawl]: setting 'lang_threshold' must be finite, got nan"),
    ("github", "[github]\nmax_mean_line_length = inf",
     "bad.toml [github]: setting 'max_mean_line_length' must be finite, got inf"),
    ("commoncrawl", "[commoncrawl]\nperplexity_cutoffs = {en = [1.0, -inf]}",
     "bad.toml [commoncrawl]: setting 'perplexity_cutoffs.en[1]' must be finite, got -inf"),
    # Wrong shapes, nested.
    ("commoncrawl", "[commoncrawl]\nperplexity_cutoffs = 5",
     "bad.toml [commoncrawl]: setting 'perplexity_cutoffs' must be a table of lists of float, got 5"),
    ("commoncrawl", '[commoncrawl]\nperplexity_cutoffs = {en = "x"}',
     "bad.toml [commoncrawl]: setting 'perplexity_cutoffs.en' must be a list, got 'x'"),
    ("commoncrawl", '[commoncrawl]\nperplexity_cutoffs = {en = [1.0, "x"]}',
     "bad.toml [commoncrawl]: setting 'perplexity_cutoffs.en[1]' must be float, got 'x'"),
    ("commoncrawl", "[commoncrawl]\nperplexity_cutoffs = {en = [1.0]}",
     "bad.toml [commoncrawl]: setting 'perplexity_cutoffs.en' must have at least 2 item(s), got [1.0]"),
    ("commoncrawl", "[commoncrawl]\nperplexity_cutoffs = {en = [5.0, 1.0]}",
     "bad.toml [commoncrawl]: perplexity_cutoffs.en = [5.0, 1.0]: two increasing perplexities (head, middle)"),
    ("commoncrawl", '[commoncrawl]\nlanguages = ["en", 5]',
     "bad.toml [commoncrawl]: setting 'languages[1]' must be str, got 5"),
    ("commoncrawl", "[commoncrawl]\nlanguages = 5",
     "bad.toml [commoncrawl]: setting 'languages' must be a list of str, got 5"),
    ("commoncrawl", '[commoncrawl]\nkeep_buckets = ["top"]',
     "bad.toml [commoncrawl]: setting 'keep_buckets[0]' must be 'head', 'middle' or 'tail', got 'top'"),
    ("commoncrawl", '[commoncrawl]\nperplexity_unit = "page"',
     "bad.toml [commoncrawl]: setting 'perplexity_unit' must be 'line' or 'document', got 'page'"),
    # Bounds.
    ("commoncrawl", "[commoncrawl]\nwiki_threshold = 1.5",
     "bad.toml [commoncrawl]: setting 'wiki_threshold' must be at most 1.0, got 1.5"),
    ("stackexchange", "[stackexchange]\nlargest_sites = -1",
     "bad.toml [stackexchange]: setting 'largest_sites' must not be negative, got -1"),
    # Unknown keys.
    ("commoncrawl", "[commoncrawl]\nlang = 0.5",
     f"bad.toml [commoncrawl]: unknown setting 'lang' (known: {COMMONCRAWL_KEYS})"),
])
def test_a_run_config_that_does_not_fit_the_schema_is_one_line(tmp_path: Path, source: str, toml: str,
                                                               message: str) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "bad.toml").write_text(toml + "\n")
    done = run_script("pipeline", "run", source, "--input", "raw", "--corpus", "corpus", "--config", "bad.toml",
                      "--no-progress", cwd=tmp_path)
    assert one_error(done, "pipeline") == message
    assert not (tmp_path / "corpus").exists()


def test_valid_run_configs_load_as_before(tmp_path: Path) -> None:
    # An int where a float is expected is a float; a table naming no setting keeps the defaults.
    (tmp_path / "good.toml").write_text("[commoncrawl]\nlang_threshold = 1\nperplexity_cutoffs = {en = [10, 20]}\n"
                                        "perplexity_percentiles = [20, 70.5]\nperplexity_unit = \"document\"\n"
                                        "[github]\n")
    config = build_source("commoncrawl", str(tmp_path / "good.toml")).config
    assert config.lang_threshold == 1.0
    assert (config.perplexity_cutoffs, config.perplexity_percentiles) == ({"en": [10.0, 20.0]}, [20.0, 70.5])
    assert all(isinstance(x, float) for x in [config.lang_threshold, *config.perplexity_cutoffs["en"]])
    assert config.perplexity_unit == "document" and build_source("commoncrawl", None).config.perplexity_unit == "line"
    assert build_source("github", str(tmp_path / "good.toml")).config == build_source("github", None).config


@pytest.mark.parametrize("toml, message", [
    ("reference_epochs = 5\n[proportions]\nc4 = 1.0",
     "bad.toml: setting 'reference_epochs' must be a table of float, got 5"),
    ("name = 5\n[proportions]\nc4 = 1.0", "bad.toml: setting 'name' must be str, got 5"),
    ("proportions = [1.0]", "bad.toml: setting 'proportions' must be a table of float, got [1.0]"),
    ('[proportions]\nc4 = "1"', "bad.toml: setting 'proportions.c4' must be float, got '1'"),
    ("[proportions]\nc4 = {share = 1.0}", "bad.toml: setting 'proportions.c4' must be float, got {'share': 1.0}"),
    ("[proportions]\nc4 = nan", "bad.toml: setting 'proportions.c4' must be finite, got nan"),
    ("[proportions]\nc4 = -1.0", "bad.toml: setting 'proportions.c4' must not be negative, got -1.0"),
    ("reference_tokens = inf\n[proportions]\nc4 = 1.0", "bad.toml: setting 'reference_tokens' must be finite, got inf"),
    ("[proportions]\nc4 = 1.0\n[reference_epochs]\nc4 = [1.0]",
     "bad.toml: setting 'reference_epochs.c4' must be float, got [1.0]"),
    ("[proportions]", "bad.toml: setting 'proportions' must have at least 1 item(s), got {}"),
    ("name = \"x\"", "bad.toml: setting 'proportions' is missing"),
    ("[proportion]\nc4 = 1.0", "bad.toml: unknown setting 'proportion' (known: name, proportions, reference_epochs, "
                               "reference_tokens)"),
])
def test_a_mixture_that_does_not_fit_the_schema_is_one_line(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "bad.toml").write_text(toml + "\n")
    done = run_script("pipeline", "mix", "--mixture", "bad.toml", "--total-tokens", "1e9", cwd=tmp_path)
    assert one_error(done, "pipeline") == message


def test_valid_mixtures_load_as_before(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('name = "mine"\nreference_tokens = 1.4e12\n[proportions]\nc4 = 1\n'
                                        "[reference_epochs]\nc4 = 2\n")
    mixture = load_mixture(tmp_path / "mine.toml")
    assert (mixture.name, mixture.proportions, mixture.reference_epochs, mixture.reference_tokens) == (
        "mine", {"c4": 1.0}, {"c4": 2.0}, 1_400_000_000_000)
    assert isinstance(mixture.proportions["c4"], float) and isinstance(mixture.reference_tokens, int)


@pytest.mark.parametrize("toml, flags, message", [
    ('steps = "5"', [], "bad.toml: setting 'steps' must be int, got '5'"),
    ("lr = inf", [], "bad.toml: setting 'lr' must be finite, got inf"),
    ("min_lr_ratio = nan", [], "bad.toml: setting 'min_lr_ratio' must be finite, got nan"),
    ("checkpoint_every = [1]", [], "bad.toml: setting 'checkpoint_every' must be int, got [1]"),
    ("compile = \"yes\"", [], "bad.toml: setting 'compile' must be bool, got 'yes'"),
    ('strategy = "zero"', [], "bad.toml: setting 'strategy' must be 'fsdp' or 'ddp', got 'zero'"),
    ("seed = 4294967296", [], "bad.toml: setting 'seed' must be below 4294967296, got 4294967296"),
    ("stepz = 3", [], "bad.toml: unknown setting 'stepz' (known: activation_checkpointing, batch_tokens, beta1, beta2, "
                      "checkpoint_every, compile, data, device, eps, eval_every, eval_sequences, grad_clip, "
                      "keep_checkpoints, log_documents, log_every, lr, micro_batch, min_lr_ratio, mixture, model, model_overrides, "
                      "peak_flops, progress, run, seed, "
                      "seq_len, skip_missing_sources, steps, strategy, tp, warmup_steps, weight_decay)"),
    ("model = 5", [], "bad.toml: setting 'model' must be str or a table, got 5"),
    ("[model]\npreset = 5", [], "bad.toml [model]: setting 'preset' must be str, got 5"),
    ("[model]\ndim = 1.5", [], "bad.toml [model]: setting 'dim' must be int, got 1.5"),
    ('[model]\nn_kv_heads = "4"', [], "bad.toml [model]: setting 'n_kv_heads' must be int or None, got '4'"),
    ("[model]\nnorm_eps = 0.0", [], "bad.toml [model]: setting 'norm_eps' must be positive, got 0.0"),
    ("[model]\nrope_theta = nan", [], "bad.toml [model]: setting 'rope_theta' must be finite, got nan"),
    ("[model]\nheads = 4", [],
     "bad.toml [model]: unknown setting 'heads' (known: dim, ffn_dim_multiplier, max_seq_len, "
                               "multiple_of, n_heads, n_kv_heads, n_layers, norm_eps, rope_theta, vocab_size)"),
    # Flags: argparse gives them their type; the schema their bounds and finiteness.
    ("", ["--lr", "inf"], "command line: --lr must be finite, got inf"),
    ("", ["--tp", "0"], "command line: --tp must be at least 1, got 0"),
    ("", ["--micro-batch", "-2"], "command line: --micro-batch must not be negative, got -2"),
])
def test_a_train_config_that_does_not_fit_the_schema_is_one_line(tmp_path: Path, toml: str, flags: list[str],
                                                                 message: str) -> None:
    (tmp_path / "bad.toml").write_text(toml + "\n")
    done = run_script("train", "--config", "bad.toml", *flags, "--no-progress", cwd=tmp_path)
    assert one_error(done, "train") == message
    assert not (tmp_path / "runs").exists()


def test_valid_train_configs_load_as_before(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text("lr = 1\nbeta1 = 0\nwarmup_steps = -1\n[model]\npreset = \"debug\"\n"
                                        "n_kv_heads = 2\nrope_theta = 500000\n")
    config = load_overrides(str(tmp_path / "good.toml"), {"steps": 7, "seed": None})
    assert (config.lr, config.beta1, config.warmup_steps, config.model, config.steps, config.seed) == (
        1.0, 0.0, -1, "debug", 7, 0)
    assert config.model_overrides == {"n_kv_heads": 2, "rope_theta": 500000}
    assert isinstance(config.lr, float)


@pytest.mark.parametrize("flags, message", [
    (["--seq-len", "100000000000"], "--seq-len must be at most 1048576, got 100000000000"),
    (["--micro-batch", "1000000"], "--micro-batch must be at most 4096, got 1000000"),
    (["--vocab-size", "99999999999"], "--vocab-size must be at most 16777216, got 99999999999"),
    (["--world-size", "0"], "--world-size must be at least 1, got 0"),
    (["--tp", "0"], "--tp must be at least 1, got 0"),
    (["--seq-len", "-1"], "--seq-len must not be negative, got -1"),
    # 0 planned the preset's shape as if the flag were not there.
    *(([flag, "0"], f"command line: {flag} 0 asks for nothing: give a positive value, or leave the flag out for "
                    "the preset's") for flag in ("--seq-len", "--micro-batch", "--vocab-size")),
])
def test_train_plan_flags_past_their_bounds_are_one_line(tmp_path: Path, flags: list[str], message: str) -> None:
    args = {"--world-size": "1", **dict(zip(flags[::2], flags[1::2]))}
    done = run_script("train", "plan", "--model", "tiny", *(x for pair in args.items() for x in pair), cwd=tmp_path)
    assert one_error(done, "train") == message


def test_train_plan_flags_that_are_no_integer_are_argparse_errors(tmp_path: Path) -> None:
    done = run_script("train", "plan", "--model", "tiny", "--world-size", "1", "--seq-len", "1e11", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "train plan: error: argument --seq-len: invalid int value: '1e11'"
