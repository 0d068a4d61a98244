"""`pipeline models classifier --positives cited`: the paper's reference class, the web pages
Wikipedia cites, found among real WARC pages; and the warning when models trained on the
generated sample meet real pages."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pipeline.commands.models import train_classifier, train_classifier_on_cited
from pipeline.commands.run import run_source
from pipeline.common.errors import UserError
from pipeline.formats.warc import iter_warc_records
from sources.commoncrawl import CommonCrawl, CommonCrawlConfig
from pipeline.common.generated import is_generated
from sources.samples.commoncrawl import write
from sources.samples.wikipedia import Page, write_dump
from sources.wikipedia import Wikipedia
from tests.conftest import script, subprocess_env

REAL = Path(__file__).resolve().parents[3] / "../shared/realdata/commoncrawl"


def _html_urls(name: str) -> list[str]:
    """The target URIs of a real WARC's 200 text/html responses, read from the headers."""
    urls = []
    for record in iter_warc_records(str(REAL / name)):
        if getattr(record, "type", "") == "response":
            head = record.body.split(b"\r\n\r\n", 1)[0]
            if head.startswith(b"HTTP/1.1 200") and b"content-type: text/html" in head.lower():
                urls.append(record.headers["warc-target-uri"].strip("<>"))
    return urls


@pytest.mark.slow
def test_cited_pages_of_real_warcs_are_the_reference_class(tmp_path: Path) -> None:
    if not REAL.exists():
        pytest.skip(f"real data not present: {REAL} (only in the project's shared folder)")
    # A Wikipedia whose two articles cite the iana.org pages (as real articles do) and a URL
    # no input holds; the corpus records them in its cited_urls column.
    iana = sorted(set(_html_urls("pywb-iana.warc.gz")))
    refs = "".join(f"<ref>{{{{cite web |url={u} |title=IANA}}}}</ref>" for u in iana[:8])
    links = "\n".join(f"* [{u} IANA page]" for u in iana[8:])
    pages = [Page("Internet Assigned Numbers Authority", f"IANA runs the DNS root.{refs}\n== External links ==\n{links}", 1),
             Page("Missing", "A page.<ref>[https://nowhere.example.org/x Gone]</ref>", 2)]
    (tmp_path / "wiki").mkdir()
    write_dump(tmp_path / "wiki/enwiki-20220701-pages-articles.xml.bz2", "en", pages)
    run_source(Wikipedia(), str(tmp_path / "wiki"), str(tmp_path / "corpus"), show_progress=False)
    run = subprocess.run([script("pipeline"), "models", "classifier", "--positives", "cited",
                          "--cited-urls", str(tmp_path / "corpus/wikipedia"), "--negatives", str(REAL),
                          "--min-chars", "300", "--out", str(tmp_path / "models")],
                         cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    info = json.loads((tmp_path / "models/classifier.json").read_text())
    # Independently: the iana.org HTML pages of 300+ characters are the cited pages found.
    iana_pages = [d for d in CommonCrawl().read(str(REAL / "pywb-iana.warc.gz")) if hasattr(d, "text")]
    assert len(iana) == len(iana_pages) == 16
    assert info["positives"] == "cited" and info["cited_urls_known"] == 17 and info["cited_pages_found"] == 16
    assert info["documents_per_class"] == sum(len(d.text) >= 300 for d in iana_pages)
    assert info["generated_sample"] is False
    assert (tmp_path / "models/classifier.bin").stat().st_size > 0
    assert "16 cited pages found" in run.stdout


def test_no_cited_page_found_is_one_clear_error(tmp_path: Path) -> None:
    write(tmp_path / "raw", seed=0)
    (tmp_path / "cited.txt").write_text("https://nowhere.example.org/a\n")
    with pytest.raises(UserError, match=r"none of the 0 cited pages found has 1000 characters or more \(of 1 cited URLs\)"):
        train_classifier_on_cited([str(tmp_path / "cited.txt")], [str(tmp_path / "raw")], [str(tmp_path / "raw")],
                                  tmp_path / "models")


def test_toy_models_warn_once_on_real_input_and_not_on_the_sample(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "raw", seed=0)
    assert is_generated(tmp_path / "raw") and is_generated(tmp_path / "raw/reference/wikipedia.jsonl")
    info = train_classifier([str(tmp_path / "raw/reference")], [str(tmp_path / "raw")], tmp_path / "models")
    assert info["generated_sample"] is True
    capsys.readouterr()  # the sample's truncated file, read in training
    (tmp_path / "real").mkdir()
    (tmp_path / "real/a.warc.wet.gz").write_bytes((tmp_path / "raw/CC-MAIN-sample-00001.warc.wet.gz").read_bytes())
    config = CommonCrawlConfig(models_dir=str(tmp_path / "models"))
    CommonCrawl(config).list_inputs(str(tmp_path / "raw"))
    assert capsys.readouterr().err == ""
    CommonCrawl(config).list_inputs(str(tmp_path / "real"))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "classifier.json: trained on the generated sample" in err
