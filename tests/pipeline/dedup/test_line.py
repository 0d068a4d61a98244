"""CCNet line dedup: what is removed, what is kept, and the size of the hash set."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.dedup import line
from pipeline.dedup.line import EMPTY_REASON, LineDedup, batch_line_keys
from pipeline.engine.document import Document
from pipeline.text.normalize import dedup_lines, normalize_for_dedup


def line_keys(text: str, strict: bool = False) -> list[bytes]:
    """CCNet's key of each line, read by hand: the first 8 bytes of the SHA-1 of the line's normal
    form (the readable `normalize_for_dedup`, one line at a time); b"" for a line without content."""
    keys = []
    for line in text.split("\n"):
        normal = normalize_for_dedup(line, strict)
        keys.append(hashlib.sha1(normal.encode("utf-8", "surrogatepass")).digest()[:8] if normal else b"")
    return keys


def _doc(doc_id: str, lines: list[str], file: str = "a.wet.gz", snapshot: str = "") -> Document:
    return Document(doc_id, "\n".join(lines), "test", {"warc_file": file, "snapshot": snapshot})


def _dedup(tmp_path: Path, tasks: list[list[Document]], span_files: int = 0,
           strict: bool = False, one_copy_per_page: bool = False, annotated: bool = False) -> list[Document | str]:
    """Both passes as the runner makes them: one collect per task, one merge, then process;
    `annotated`: each task's pages first keyed by `annotate`, as the runner does before the
    collecting pass writes its parts (the filter pass then reads the carried keys)."""
    stage = LineDedup(span_files, strict=strict, one_copy_per_page=one_copy_per_page)
    stage.setup()
    partials = []
    for number, docs in enumerate(tasks):
        partial = tmp_path / f"task{number}" / "partial"
        partial.parent.mkdir(parents=True)
        if annotated:
            stage.annotate(docs)
        stage.collect(iter(docs), partial)
        partials.append(partial)
    artefact = tmp_path / "artefact"
    artefact.mkdir(parents=True)
    stage.merge(partials, artefact)
    stage.load(artefact)
    return stage.process_batch([d for docs in tasks for d in docs])


def test_a_line_shared_by_three_pages_is_removed_from_all_three(tmp_path: Path) -> None:
    nav = "Home | News | Contact"
    docs = [_doc(f"d{i}", [nav, f"Story number {'abc'[i]} about the river.", f"Only in {'xyz'[i]}"]) for i in range(3)]
    out = _dedup(tmp_path, [docs[:2], docs[2:]])  # across tasks too
    assert [d.text for d in out] == [
        "Story number a about the river.\nOnly in x",
        "Story number b about the river.\nOnly in y",
        "Story number c about the river.\nOnly in z",
    ]


def test_lines_differing_in_digits_case_and_unicode_punctuation_are_the_same_line(tmp_path: Path) -> None:
    assert normalize_for_dedup("Copyright 2019 Example") == normalize_for_dedup("  copyright 2020 example  ")
    assert line_keys("Copyright 2019 Example’s") == line_keys("COPYRIGHT 2020 Examples")
    # ASCII punctuation counts, as in CCNet; the strict form ignores it.
    assert line_keys("Copyright 2019 Example") != line_keys("Copyright 2019, Example!")
    assert line_keys("Copyright 2019 Example", strict=True) == line_keys("Copyright 2019, Example!", strict=True)
    a = _doc("a", ["A page about boats.", "Copyright 2019 Example"])
    b = _doc("b", ["A page about trains.", "Copyright 2020 Example"])
    out = _dedup(tmp_path, [[a, b]])
    assert [d.text for d in out] == ["A page about boats.", "A page about trains."]


def test_a_line_repeated_inside_one_page_is_kept_once(tmp_path: Path) -> None:
    page = _doc("a", ["Buy now!", "First paragraph.", "Buy now!", "Second paragraph.", "buy NOW!"])
    out = _dedup(tmp_path, [[page, _doc("b", ["Unrelated text."])]])[0]
    assert out.text == "Buy now!\nFirst paragraph.\nSecond paragraph."


def test_a_page_emptied_by_dedup_is_dropped_with_its_reason(tmp_path: Path) -> None:
    nav_only = _doc("nav", ["Home | News", "", "Copyright 2020 Example", "---"])
    article = _doc("art", ["Home | News", "Real content here.", "Copyright 2018 Example", "---"])
    out = _dedup(tmp_path, [[nav_only, article]])
    assert out[0] == EMPTY_REASON == "empty_after_dedup"
    assert out[1].text == "Real content here."
    # A punctuation-only line is a line in CCNet's form; in the strict form it has no content.
    lone = _dedup(tmp_path / "strict", [[_doc("x", ["Text.", "---"]), _doc("y", ["Other."])]], strict=True)
    assert lone[0].text == "Text."


def test_a_line_shared_by_two_pages_of_one_group_is_removed_from_both(tmp_path: Path) -> None:
    a = _doc("a", ["Subscribe to our newsletter", "A story about the harbour."], file="f0.wet.gz")
    b = _doc("b", ["A story about the mountains.", "subscribe to our NEWSLETTER"], file="f1.wet.gz")
    out = _dedup(tmp_path, [[a], [b]])
    assert [d.text for d in out] == ["A story about the harbour.", "A story about the mountains."]


def test_groups_never_span_two_snapshots(tmp_path: Path) -> None:
    # The same page in two snapshots: each snapshot's copy keeps its lines (one copy of the
    # page is then chosen by the exact dedup across snapshots, a separate stage).
    page = ["Home | News", "The harbour opened in spring."]
    docs = [_doc("a", page, "x.wet.gz", "CC-MAIN-2019-09"), _doc("b", page, "x.wet.gz", "CC-MAIN-2019-13"),
            _doc("c", ["Home | News", "Other story."], "y.wet.gz", "CC-MAIN-2019-13")]
    out = _dedup(tmp_path, [docs])
    assert [d.text for d in out] == ["Home | News\nThe harbour opened in spring.",
                                     "The harbour opened in spring.", "Other story."]


def test_the_hash_set_spans_the_configured_number_of_files(tmp_path: Path) -> None:
    docs = [_doc(f"d{i}", ["Shared line.", f"Own line {'abcd'[i]}."], file=f"f{i}.wet.gz") for i in range(4)]
    # Span 2: files f0+f1 and f2+f3 are two groups; a line shared inside a group goes.
    out = _dedup(tmp_path / "span2", [docs[:1], docs[1:]], span_files=2)
    assert [d.text for d in out] == ["Own line a.", "Own line b.", "Own line c.", "Own line d."]
    # Span 1: each file is its own group, and a line in one document per file stays.
    lonely = [_doc(f"e{i}", ["Shared line.", "x"], file=f"f{i}.wet.gz") for i in range(3)]
    out = _dedup(tmp_path / "span1", [lonely], span_files=1)
    assert [d.text for d in out] == ["Shared line.\nx"] * 3


def test_groups_merged_in_many_buckets_on_forked_processes_remove_the_same_lines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two groups of pages from three files, merged one key per bucket on the driver's cores
    (pipeline/dedup/line_groups.py): the lines removed are those a one-bucket merge removes."""
    from pipeline.dedup import line_groups

    own = [f"Own line {chr(97 + i % 26)}{chr(97 + i // 26)}." for i in range(60)]  # digits all normalise to 0

    def tasks() -> list[list[Document]]:  # new pages for each run: the filter pass edits them
        docs = [_doc(f"d{i:03d}", ["Home | News", f"Story {'abcdefg'[i % 7]} of the week.", own[i], own[5]],
                     file=f"f{i % 3}.wet.gz") for i in range(60)]
        return [docs[:30], docs[30:]]

    one = _dedup(tmp_path / "one", tasks(), span_files=2)
    monkeypatch.setattr(line_groups, "BUCKET_KEYS", 1)
    many = _dedup(tmp_path / "many", tasks(), span_files=2)
    shown = lambda out: [d if isinstance(d, str) else d.text for d in out]  # noqa: E731
    assert shown(many) == shown(one)
    # Read by hand: the navigation, every story (each in several pages of both groups) and d005's
    # own line, which every page has, go; each page keeps its own line, but d005.
    assert shown(many) == [line if i != 5 else EMPTY_REASON for i, line in enumerate(own)]
    for group in sorted((tmp_path / "one" / "artefact").glob("group-*.npy")):
        assert group.read_bytes() == (tmp_path / "many" / "artefact" / group.name).read_bytes()


def test_the_hash_pass_writes_each_files_keys_as_soon_as_its_pages_have_come(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task holds one file's keys at a time, not every file's: when the first page of the third
    file arrives, the first file's keys are on disk already."""
    stage = LineDedup()
    stage.setup()
    pages = [_doc(f"{file}{i}", ["Shared line.", f"Own line {file}{'abc'[i]}."], file=f"{file}.wet.gz")
             for file in "xyz" for i in range(3)]
    written_when_z_began = []

    def stream():  # the pages as the runner hands them over, a batch at a time
        for page in pages:
            if page.id == "z0":
                written_when_z_began.extend(sorted(p.name for p in (tmp_path / "partial").glob("*-keys.npy")))
            yield page

    monkeypatch.setattr(line, "COLLECT_BATCH", 2)
    stage.collect(stream(), tmp_path / "partial")
    assert written_when_z_began == ["0-keys.npy"]  # x's; y's pages were still coming
    index = json.loads((tmp_path / "partial" / "index.json").read_text())
    assert sorted(index) == ["/x.wet.gz", "/y.wet.gz", "/z.wet.gz"]


def test_a_files_pages_that_come_in_two_runs_count_as_one_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # x's pages, then y's, then x's again: "Twice in x." is in two of x's pages (one per run), so a
    # line of two documents; "Once in x." is in one page of each run of x but y has it too.
    x1 = _doc("x1", ["Twice in x.", "Own line xa."], file="x.wet.gz")
    y1 = _doc("y1", ["Once in x.", "Own line ya."], file="y.wet.gz")
    x2 = _doc("x2", ["Twice in x.", "Own line xb."], file="x.wet.gz")
    x3 = _doc("x3", ["Own line xc.", "Once in x."], file="x.wet.gz")
    monkeypatch.setattr(line, "COLLECT_BATCH", 1)  # x's keys are written when y's page comes
    out = _dedup(tmp_path, [[x1, y1, x2, x3]], span_files=1)  # each file its own group
    assert [d.text for d in out] == ["Own line xa.", "Once in x.\nOwn line ya.", "Own line xb.",
                                     "Own line xc.\nOnce in x."]


def test_hash_set_holds_eight_bytes_per_duplicate_key(tmp_path: Path) -> None:
    docs = [_doc(f"d{i}", [f"line {chr(97 + i % 26)}{chr(97 + i // 26)}", "common"]) for i in range(200)]
    _dedup(tmp_path, [docs])
    (group,) = sorted((tmp_path / "artefact").glob("group-*.npy"))
    keys = np.load(group)
    assert keys.dtype == np.dtype("<u8") and len(keys) == 1  # only "common" is a duplicate
    assert keys.nbytes / len(keys) == 8


def test_the_filter_pass_maps_the_group_file_instead_of_reading_a_copy(tmp_path: Path) -> None:
    """Every worker of a node looks lines up in the same group: mapped, they share one copy
    through the page cache (a group of CCNet's size holds a few GB of duplicate keys)."""
    stage = LineDedup()
    stage.setup()
    docs = [_doc("a", ["Shared line.", "Own line a."]), _doc("b", ["Shared line.", "Own line b."])]
    stage.collect(iter(docs), tmp_path / "partial")
    (tmp_path / "artefact").mkdir()
    stage.merge([tmp_path / "partial"], tmp_path / "artefact")
    stage.load(tmp_path / "artefact")
    assert [d.text for d in stage.process_batch(docs)] == ["Own line a.", "Own line b."]
    group = (tmp_path / "artefact" / "group-00000.npy").resolve()
    assert str(group) in Path("/proc/self/maps").read_text()


# --- CCNet's normaliser (text_normalizer.normalize_for_dedup), case by case -----------------
# Our own cases, written from its documented behaviour: strip, lower-case, every decimal digit
# to 0, remove its list of non-ASCII punctuation and the C0/C1 control characters; ASCII
# punctuation stays.

CCNET_CASES = [
    ("０２３´∶：\x10 | ;012 hèllo", "000 | ;000 hèllo"),  # the case of CCNet's own test
    ("  Hello World  ", "hello world"),
    ("Price: $1,299.99!", "price: $0,000.00!"),
    ("Home | News | Contact", "home | news | contact"),
    ("---", "---"),
    ("Copyright © 2019", "copyright © 0000"),  # © is a symbol, not in the list: it stays
    ("“Quoted” text", "quoted text"),
    ("It’s fine…", "its fine"),
    ("Wait — really?", "wait  really?"),  # the dash goes, both spaces stay
    ("a–b", "ab"),
    ("【注意】", "注意"),
    ("１００％", "000"),  # fullwidth 1 is in the punctuation list, but digits turn to 0 first
    ("٣ apples", "0 apples"),  # Arabic-Indic digit
    ("tab\there", "tabhere"),
    ("bell\x07", "bell"),
    ("\x10 edge", " edge"),  # stripped first, so the space inside the control stays
    ("trail …", "trail "),
    ("ÉCOLE", "école"),  # accents stay
    ("\x85next", "next"),  # C1 control U+0085 (NEL) is white space: stripped
    ("\x9fafter", "after"),
    ("", ""),
    ("   ", ""),
]


# A long line of plain ASCII: beside it, a line's few characters past ASCII take the path of real
# pages (character by character) instead of the code-point table.
PLAIN = "plain words of a page about the river " * 8


@pytest.mark.parametrize(("line", "expected"), CCNET_CASES)
def test_ccnet_normalize_for_dedup_cases(line: str, expected: str) -> None:
    assert normalize_for_dedup(line) == expected
    # The fast path over a whole text gives the same form, line by line.
    assert dedup_lines(line + "\nx") == [expected.encode(), b"x"]
    # Beside a long plain line, as on a real page: a few characters past ASCII one by one.
    assert dedup_lines(f"{line}\n{PLAIN}") == [expected.encode(), PLAIN.strip().encode()]


def test_a_capital_sigma_is_lower_cased_by_what_follows_it_on_a_mostly_ascii_page() -> None:
    assert dedup_lines(PLAIN + "ΟΔΟΣ and ΣΟΦΙΑ") == [(PLAIN + "οδος and σοφια").encode()]
    assert "\u03c2" in "οδος" and "\u03c3" in "σοφια"  # final ς, then σ inside a word


def test_strict_form_removes_all_punctuation_and_strips_after() -> None:
    assert normalize_for_dedup("“Home” | News — 2019 ►", strict=True) == "home | news  0000"  # | is a symbol (Sm)
    assert normalize_for_dedup("---", strict=True) == ""


def test_ccnet_two_pass_dedup_case(tmp_path: Path) -> None:
    # CCNet's two-pass dedup (the paper's, `deduplicate_two_pass`): a line found in two
    # documents goes from both, its first occurrence too; case does not matter.
    a = _doc("a", ["_Hello", "_World", "I'm so original"])
    b = _doc("b", ["_world", "I'm originaler", "_Hello"])
    assert [d.text for d in _dedup(tmp_path, [[a, b]])] == ["I'm so original", "I'm originaler"]


def test_one_copy_of_a_page_across_snapshots_rides_the_same_passes(tmp_path: Path) -> None:
    page = ["Home | News", "The harbour opened in spring."]
    docs = [_doc("b", page, "x.wet.gz", "CC-MAIN-2019-13"), _doc("a", page, "x.wet.gz", "CC-MAIN-2019-09"),
            _doc("c", ["Home | News", "Other story."], "y.wet.gz", "CC-MAIN-2019-13")]
    out = _dedup(tmp_path, [docs[:1], docs[1:]], one_copy_per_page=True)
    # The smallest id wins; the copy dropped was hashed in its snapshot, so "c" loses the nav line.
    assert out == ["duplicate_page", docs[1], docs[2]]
    assert [d.text for d in out[1:]] == ["Home | News\nThe harbour opened in spring.", "Other story."]


def test_a_tasks_first_ids_written_in_runs_keep_the_smallest_id_of_each_page(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task holds at most FIRST_IDS_HELD page hashes: its first ids go out in sorted runs, and
    the merge folds them all (a copy's smallest id may be in an earlier run than a larger one)."""
    monkeypatch.setattr(line, "FIRST_IDS_HELD", 2)
    monkeypatch.setattr(line, "COLLECT_BATCH", 1)
    texts = [f"Page {'abcde'[i % 5]} of the crawl." for i in range(15)]
    ids = [f"id-{(7 * i) % 15:02d}" for i in range(15)]  # each text's copies in no order of id
    docs = [_doc(doc_id, [text], "x.wet.gz", f"CC-MAIN-2019-{13 + i % 3}") for i, (doc_id, text) in
            enumerate(zip(ids, texts))]
    out = _dedup(tmp_path, [docs[:8], docs[8:]], one_copy_per_page=True)
    smallest = {text: min(i for i, t in zip(ids, texts) if t == text) for text in texts}
    assert [isinstance(r, Document) for r in out] == [doc_id == smallest[text] for doc_id, text in zip(ids, texts)]
    assert len(list((tmp_path / "task0" / "partial").glob("pages-*.arrow"))) >= 3


BATCH_TEXTS = [
    "Plain ASCII line\nSecond line 42\n\n  padded  ",
    "Caf\u00e9 \u201cquoted\u201d\nΣΑΣ ΑΣ\n",  # non-ASCII: the exact path; final sigma at a line's end
    " \x01 control at an edge\n\tTabbed\r",  # an ASCII control that is no white space, at an edge
    "",
    "\n\n",
    "Plain ASCII line\nPlain ASCII line",
]


@pytest.mark.parametrize("strict", [False, True])
def test_keys_of_a_batch_are_the_keys_of_each_text(strict: bool) -> None:
    # The batch joins its texts (ASCII and the others apart) and keys them in one pass: every
    # key, its text and its line must be those of keying each text alone.
    batch = batch_line_keys(BATCH_TEXTS, strict)
    alone = [line_keys(text, strict) for text in BATCH_TEXTS]
    assert batch.counts == [len(keys) for keys in alone]
    assert batch.doc.tolist() == [i for i, keys in enumerate(alone) for _ in keys]
    assert batch.content.tolist() == [bool(k) for keys in alone for k in keys]
    assert batch.keys.tobytes() == b"".join(k or bytes(8) for keys in alone for k in keys)
    # A line's first occurrence in its text (with content) is marked; its repeat is not.
    first = batch.first_in_doc().tolist()
    expected = []
    for keys in alone:
        seen: set[bytes] = set()
        for key in keys:
            expected.append(bool(key) and key not in seen)
            seen.add(key)
    assert first == expected


@pytest.mark.parametrize("strict", [False, True])
def test_keys_carried_from_the_hash_pass_give_what_keys_computed_again_give(tmp_path: Path, strict: bool) -> None:
    """The filter pass reads the keys and page hashes `annotate` carried through the parts: the
    same lines go, the same pages are dropped, and no page keeps a carried field (no shard may
    hold one), dropped or kept."""
    def tasks() -> list[list[Document]]:
        texts = [*BATCH_TEXTS, "Shared nav | Home\nStory one.", "Shared nav | Home\nStory two.\nStory two.",
                 "Caf\u00e9 \u201cquoted\u201d\nOwn line \u2014 \u0661\u0662", "Shared nav | Home\nStory one."]
        docs = [_doc(f"d{n:02d}", text.split("\n"), f"f{n % 3}.wet.gz", f"CC-MAIN-2019-{9 + n % 2:02d}")
                for n, text in enumerate(texts)]
        # Alone in its snapshot: its blank line goes for having no content, not as a shared key.
        alone = _doc("e", ["One page", "", "alone in its snapshot"], "g.wet.gz", "CC-MAIN-2020-05")
        return [docs[:4], docs[4:] + [alone]]

    for one_copy in (False, True):
        computed = _dedup(tmp_path / f"computed-{one_copy}", tasks(), strict=strict, one_copy_per_page=one_copy)
        docs = tasks()
        carried = _dedup(tmp_path / f"carried-{one_copy}", docs, strict=strict, one_copy_per_page=one_copy,
                         annotated=True)
        as_text = [r if isinstance(r, str) else (r.id, r.text) for r in computed]
        assert [r if isinstance(r, str) else (r.id, r.text) for r in carried] == as_text
        # The nav line shared in snapshot 2019-10 goes; with one copy per page, d09 is d06's copy.
        assert as_text[7] == ("d07", "Story two.") and as_text[3:5] == [EMPTY_REASON, EMPTY_REASON]
        assert as_text[9] == ("duplicate_page" if one_copy else ("d09", "Story one."))
        assert as_text[10] == ("e", "One page\nalone in its snapshot")
        assert all(set(doc.meta) == {"warc_file", "snapshot"} for task in docs for doc in task)


def test_carried_keys_that_do_not_count_a_pages_lines_are_computed_again(tmp_path: Path) -> None:
    """The parts carry no checksum: keys of another text, or a cut value, must not remove the
    wrong lines; the filter pass keys such a batch again."""
    expected = [d if isinstance(d, str) else d.text for d in _dedup(tmp_path / "computed", [[
        _doc("a", ["Shared line", "Own a"]), _doc("b", ["Shared line", "Own b", "More b"])]])]
    stage = LineDedup()
    stage.setup()
    a, b = _doc("a", ["Shared line", "Own a"]), _doc("b", ["Shared line", "Own b", "More b"])
    stage.annotate([a, b])
    partial = tmp_path / "carried" / "partial"
    partial.parent.mkdir(parents=True)
    stage.collect(iter([a, b]), partial)
    (tmp_path / "artefact").mkdir()
    stage.merge([partial], tmp_path / "artefact")
    stage.load(tmp_path / "artefact")
    for damage in (lambda v: v[:-1], lambda v: v[: 2 * 9]):  # a cut value; the keys of a 2-line text
        a2, b2 = _doc("a", ["Shared line", "Own a"]), _doc("b", ["Shared line", "Own b", "More b"])
        a2.meta["_line_keys"], b2.meta["_line_keys"] = a.meta["_line_keys"], damage(b.meta["_line_keys"])
        assert [d if isinstance(d, str) else d.text for d in stage.process_batch([a2, b2])] == expected
    assert expected == ["Own a", "Own b\nMore b"]
