"""CommonCrawl end to end on the sample, and its read() on WET and WARC input: the columns, HTML
made text, a file cut short in a run. The reader's own tests: tests/pipeline/formats/test_warc.py."""

from __future__ import annotations

import gzip
import json
import random
import re
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.commands.models import train_classifier, train_lm
from pipeline.commands.run import run_source
from pipeline.common.errors import UserError
from pipeline.engine.document import Skipped
from pipeline.engine.shards import read_corpus, shard_paths
from sources.commoncrawl import CommonCrawl, CommonCrawlConfig
from sources.samples.commoncrawl import http_response, warc_record, write, write_members
from sources.samples.text import document
from tests.conftest import script, subprocess_env


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The `pipeline sample` input and models trained on its reference stand-in."""
    root = tmp_path_factory.mktemp("cc")
    write(root / "raw", seed=0)
    reference = [str(root / "raw" / "reference" / "wikipedia.jsonl")]
    train_lm(reference, root / "models")
    train_classifier(reference, [str(root / "raw")], root / "models")
    return root / "raw", root / "models"


@pytest.fixture(scope="module")
def sample_run(sample: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list, Path]:
    raw, models = sample
    out = tmp_path_factory.mktemp("corpus")
    report = run_source(CommonCrawl(CommonCrawlConfig(models_dir=str(models))), str(raw), str(out), workers=2,
                        show_progress=False)
    return report.stats, list(read_corpus(out / "commoncrawl")), out / "commoncrawl"


def _config(models: Path, **kw) -> CommonCrawlConfig:
    return CommonCrawlConfig(models_dir=str(models), **kw)


def test_run_on_the_sample_writes_the_filter_columns(sample_run: tuple[dict, list, Path]) -> None:
    _, docs, folder = sample_run
    schema = pa.ipc.open_stream(shard_paths(folder)[0].read_bytes()).schema
    for column in ("url", "warc_date", "lang", "lang_score", "perplexity", "bucket", "wiki_prob"):
        assert column in schema.names
    assert docs and all(d.meta["lang"] == "en" and d.meta["lang_score"] > 0.5 for d in docs)
    assert {d.meta["bucket"] for d in docs} == {"head", "middle"}
    assert all(d.meta["wiki_prob"] >= 0.25 and len(d.text) >= 300 for d in docs)
    assert all(d.meta["url"].startswith("https://") for d in docs)
    # Shared navigation and footer lines are gone from every kept page.
    assert not any("Copyright" in d.text or "Home | " in d.text for d in docs)


def test_stats_show_drops_per_stage_and_reason(sample_run: tuple[dict, list, Path]) -> None:
    stats, docs, _ = sample_run
    by_name = {s["name"]: s for s in stats["stages"]}
    # The length floor comes first: CCNet drops short pages before hashing any line.
    assert list(by_name) == ["read", "min_chars", "line_dedup", "langid", "perplexity", "perplexity_bucket",
                             "wiki_classifier"]
    for stage in stats["stages"]:
        assert stage["in"] == stage["out"] + sum(stage["dropped"].values()), stage
    # 240 WET pages + 1 with invalid UTF-8 + 1 broken record; 7 pages of the file cut in its 8th
    # member, and the cut counted; 40 WARC pages + a PNG and a 404.
    assert by_name["read"]["in"] == 292
    assert by_name["read"]["dropped"] == {"broken_warc_header": 1, "http_status_not_200": 1, "not_html": 1,
                                          "truncated_gzip": 1}
    assert set(by_name["line_dedup"]["dropped"]) <= {"empty_after_dedup", "duplicate_page"}
    assert set(by_name["min_chars"]["dropped"]) == {"too_short"}
    assert set(by_name["langid"]["dropped"]) == {"lang_de", "lang_fr"}
    assert by_name["perplexity"]["dropped"] == {}
    # Percentiles over the corpus: p60 leaves 40% (rounded) of the English pages in the tail.
    bucket = by_name["perplexity_bucket"]
    assert set(bucket["dropped"]) == {"bucket_tail"}
    assert abs(bucket["dropped"]["bucket_tail"] - 0.4 * bucket["in"]) <= 1
    assert set(by_name["wiki_classifier"]["dropped"]) == {"wiki_prob_below_0.25"}
    for name in ("min_chars", "langid", "perplexity_bucket", "wiki_classifier"):
        assert sum(by_name[name]["dropped"].values()) > 0, name
    assert stats["documents_kept"] == len(docs) == by_name["wiki_classifier"]["out"]
    (failed,) = stats["files"]["failed"]
    assert stats["files"]["total"] == 4 and failed["path"].endswith("CC-MAIN-sample-00002.warc.wet.gz")
    assert failed["problem"].startswith("truncated input: the gzip member at byte ")


def _wet(tmp_path: Path, texts: list[str], name: str = "a.warc.wet.gz") -> tuple[Path, list[bytes]]:
    rng = random.Random(name)  # record ids differ between files, as Common Crawl's do
    # A WET record's first line is the page title.
    records = [warc_record(rng, "conversion", f"https://site.example/{i}", f"Title {i}\n{t}".encode(), "text/plain",
                           date=f"2019-03-0{i + 1}T00:00:00Z") for i, t in enumerate(texts)]
    path = tmp_path / name
    write_members(path, records)
    return path, records


def test_reader_keeps_url_date_and_record_id_with_stable_ids(tmp_path: Path) -> None:
    path, _ = _wet(tmp_path, ["First page.", "Second page."])
    docs = list(CommonCrawl().read(str(path)))
    assert [d.text for d in docs] == ["First page.", "Second page."]
    assert [d.meta["title"] for d in docs] == ["Title 0", "Title 1"]
    assert docs[0].meta["url"] == "https://site.example/0" and docs[1].meta["warc_date"] == "2019-03-02T00:00:00Z"
    assert docs[0].id.startswith("urn:uuid:") and docs[0].meta["warc_record_id"] == docs[0].id
    assert [d.id for d in CommonCrawl().read(f"file://{path}")] == [d.id for d in docs]  # URLs read too


def test_the_samples_pages_are_not_pure_ascii_as_real_pages_are_not(sample: tuple[Path, Path]) -> None:
    # All but 9 of the 130 real CommonCrawl pages of ../shared/realdata hold a character past
    # ASCII; pure ASCII takes the normal forms' fastest path, so a pure-ASCII sample flatters
    # every measurement made on it. Read from the WET files themselves, with gzip and a regex.
    raw, _ = sample
    texts = []
    for path in sorted(raw.glob("CC-MAIN-sample-0000[01].warc.wet.gz")):
        data = gzip.decompress(path.read_bytes())
        texts += [m.group(1) for m in re.finditer(rb"Content-Length: \d+\r\n\r\n(.*?)\r\n\r\n(?=WARC/|$)", data, re.S)]
    # An article: its site's menu (after the title line), a headline, paragraphs and a footer.
    articles = [t for t in texts if (b"\nHome |" in t or b"\nFront page |" in t) and t.count(b"\n") >= 5]
    assert len(texts) > 200 and len(articles) > 60
    assert all(not t.isascii() for t in articles)  # a curly-quoted opening and a \u00a9 footer
    assert sum(not t.isascii() for t in texts) > len(texts) // 2


def test_truncated_file_is_reported_and_counted_and_the_run_goes_on(sample: tuple[Path, Path],
                                                                     tmp_path: Path) -> None:
    _, models = sample
    rng = random.Random(8)
    good, _ = _wet(tmp_path / "in", [document(rng, 2) for _ in range(3)], "good.warc.wet.gz")
    cut, records = _wet(tmp_path / "in", [document(rng, 2) for _ in range(3)], "cut.warc.wet.gz")
    offset = sum(len(gzip.compress(r, compresslevel=6, mtime=0)) for r in records[:2])
    cut.write_bytes(cut.read_bytes()[: offset + 30])
    config = _config(models, perplexity_cutoffs={"en": [1e9, 1e9]}, wiki_threshold=0.0)
    report = run_source(CommonCrawl(config), str(tmp_path / "in"), str(tmp_path / "out"), show_progress=False)
    stats = report.stats
    assert stats["files"]["failed"] == [{"path": str(cut), "problem":
                                         f"truncated input: the gzip member at byte {offset} ends early; "
                                         "the records before it are kept"}]
    read = stats["stages"][0]
    assert read["dropped"] == {"truncated_gzip": 1} and read["out"] == 5  # 2 from the cut file, 3 good
    assert report.documents_kept == 5


def test_an_empty_file_is_a_failed_input_and_the_run_goes_on(sample: tuple[Path, Path], tmp_path: Path) -> None:
    _, models = sample
    rng = random.Random(9)
    _wet(tmp_path / "in", [document(rng, 2) for _ in range(3)], "good.warc.wet.gz")
    empty = tmp_path / "in" / "empty.warc.wet.gz"
    empty.write_bytes(b"")
    config = _config(models, perplexity_cutoffs={"en": [1e9, 1e9]}, wiki_threshold=0.0)
    report = run_source(CommonCrawl(config), str(tmp_path / "in"), str(tmp_path / "out"), show_progress=False)
    assert report.stats["files"]["failed"] == [{"path": str(empty), "problem": "empty file"}]
    assert report.documents_kept == 3


def test_warc_html_is_extracted_and_other_responses_skipped(tmp_path: Path) -> None:
    rng = random.Random(3)
    html = ("<html><head><title>T</title><script>var secret = 1;</script></head><body>"
            "<nav><a href='/'>Home</a> <a href='/a'>About</a></nav><article><h1>Boats</h1>"
            "<p>The harbour built three wooden boats in the spring.</p>"
            "<p>They sailed along the coastal road for many years.</p></article></body></html>")
    response = "application/http; msgtype=response"
    records = [
        warc_record(rng, "warcinfo", None, b"isPartOf: test\r\n", "application/warc-fields"),
        warc_record(rng, "request", "https://a.example/", b"GET / HTTP/1.1\r\n\r\n", "application/http"),
        warc_record(rng, "response", "https://a.example/", http_response(html.encode(), "text/html"), response),
        warc_record(rng, "response", "https://a.example/x.png", http_response(b"\x89PNG", "image/png"), response),
        warc_record(rng, "response", "https://a.example/y", http_response(b"<p>no</p>", "text/html", "404 Nope"),
                    response),
    ]
    write_members(tmp_path / "a.warc.gz", records)
    items = list(CommonCrawl().read(str(tmp_path / "a.warc.gz")))
    assert items[1:] == [Skipped("not_html"), Skipped("http_status_not_200")]
    text = items[0].text
    assert "The harbour built three wooden boats in the spring." in text
    assert "They sailed along the coastal road" in text and "secret" not in text


@pytest.mark.slow
def test_missing_models_stop_the_run_with_the_command_to_run(tmp_path: Path) -> None:
    write(tmp_path / "raw", seed=1)
    with pytest.raises(UserError, match=r"en.sp.model: perplexity model missing; run `pipeline models lm"):
        run_source(CommonCrawl(_config(tmp_path / "none")), str(tmp_path / "raw"), str(tmp_path / "out"))
    run = subprocess.run([script("pipeline"), "run", "commoncrawl", "--input", str(tmp_path / "raw"),
                          "--corpus", str(tmp_path / "out")], cwd=tmp_path, env=subprocess_env(),
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "run `pipeline models lm --language en`" in run.stderr
    assert not (tmp_path / "out" / "commoncrawl").exists()


@pytest.mark.slow
def test_models_commands_train_from_the_sample_defaults(tmp_path: Path) -> None:
    write(tmp_path / "data" / "raw" / "commoncrawl", seed=2)
    for kind in ("lm", "classifier"):
        run = subprocess.run([script("pipeline"), "models", kind], cwd=tmp_path, env=subprocess_env(),
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
    models = tmp_path / "data" / "models"
    assert sorted(p.name for p in models.iterdir()) == [
        "classifier.bin", "classifier.json", "en.arpa.bin", "en.lm.json", "en.sp.model"]
    info = json.loads((models / "classifier.json").read_text())
    assert info["positives"] == ["data/raw/commoncrawl/reference"] and info["negatives"] == ["data/raw/commoncrawl"]
