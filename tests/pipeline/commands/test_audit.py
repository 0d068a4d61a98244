"""`pipeline audit`: residue counted per document, raw prose missing from the corpus, the exit
status past a threshold; hand-written corpora (written through the jsonl passthrough source)."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from pipeline.commands.audit import (
    Paper,
    _paper_residue,
    _paper_tex_files,
    arxiv_raw,
    books_raw,
    latex_prose,
    residue,
    run_audit,
    wikitext_prose,
)
from pipeline.commands.run import run_source
from sources.jsonl import Jsonl
from sources.samples.wikipedia import Page
from tests.conftest import script, subprocess_env
from tests.hostile.helpers import one_error, run_script
from tests.sources.wikipedia_dumps import raw_enwiki


def corpus(tmp_path: Path, docs: dict[str, str]) -> Path:
    """A finished corpus holding exactly these documents (id -> text); returns its folder."""
    raw = tmp_path / "corpus-raw"
    raw.mkdir()
    (raw / "docs.jsonl").write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in docs.items()))
    run_source(Jsonl(), str(raw), str(tmp_path / "corpus"), workers=1, show_progress=False)
    return tmp_path / "corpus" / "jsonl"


def audit_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([script("pipeline"), "audit", *args], check=False, capture_output=True, text=True,
                          env=subprocess_env(), timeout=120)


@pytest.mark.parametrize(
    "source, text, found",
    [
        ("wikipedia", "A <ref>x</ref> {| b |} ''c'' [[d]] {{e}} &nbsp; thumb|f __TOC__ (; g, )",
         {"<ref": 2, "{|": 1, "|}": 1, "''": 2, "[[": 1, "]]": 1, "{{": 1, "}}": 1, "&entity;": 1, "thumb|": 1,
          "__MAGIC__": 1, "(; debris": 1, ", ) debris": 1}),
        ("wikipedia", "Clean prose (with a note) and $\\frac{{a}}{b}$ kept as TeX.", {}),
        ("wikipedia", "<div>a</div>", {"html tag": 2}),
        # a line that is or opens with `code:Title` of a Wikipedia language; not mid-line, not
        # "en: English" (a space), not a code that is no Wikipedia's ("UA:", upper case)
        ("wikipedia", "fr:Paris\nText fr:Paris\nen: English\nUA:Культура\nbe-x-old:Парыж is\nzh-min-nan:Pa-lê",
         {"xx:Title": 3}),
        # indentation colons at a line's start, not after words or on a line of their own
        ("wikipedia", ": Soul and body\n:: we lay\nRefrain: soul\n:\nText :: more", {": indent": 2}),
        ("books", "Text\r\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\nEnd of the Project Gutenberg EBook",
         {"\\r": 1, "*** START/END": 1, "Project Gutenberg": 2}),
        ("books", "*END*THE SMALL PRINT! see www.gutenberg.org", {"small print": 2, "gutenberg.org": 1}),
        ("arxiv", "\\Hy@raisedlink x \\newcommand{\\a}{b} \\makeatletter", {"\\@ internal": 1, "definition left": 1,
                                                                           "\\makeatletter": 1}),
        ("arxiv", "e.g.\\@ a \\@ifnextchar", {"\\@ internal": 1}),
        # A closed listing is the paper's text: the LaTeX it shows is no residue.
        ("arxiv", "\\begin{verbatim}\\newcommand{\\a}{b}\\Hy@x\\end{verbatim} \\verb|\\def\\x| "
                  "\\begin{lstlisting}\\makeatletter\n\\end{lstlisting}", {}),
        ("arxiv", "\\NewDocumentCommand{\\a}{m}{b} \\DeclareDocumentCommand\\c{}{d}", {"definition left": 2}),
        # A cut made inside a listing leaves it opened and never closed, or closed and never opened;
        # a \verb not closed on its line is one too.
        ("arxiv", "\\section{A} \\begin{lstlisting}\nx = 1\n", {"verbatim unclosed": 1}),
        ("arxiv", "y\n\\end{verbatim}\n\\section{B} \\verb|a\nb|", {"verbatim unclosed": 2}),
        ("arxiv", "\\begin{Verbatim*}x\\end{Verbatim*} \\verb+y+ \\begin{minted}{c}\\end{lstlisting}",
         {"verbatim unclosed": 2}),
        ("books", "just a small printing error", {}),
    ],
)
def test_residue_patterns(source: str, text: str, found: dict[str, int]) -> None:
    assert dict(residue(source, text)) == found


def test_wikitext_prose_is_plain_lines_outside_templates_tables_refs_and_comments() -> None:
    wikitext = ("{{Infobox\n| a = b\n}}\n'''Bold''' lead is not plain.\nA plain sentence of the article.\n"
                "{{quote|\nA plain line inside a template.\n}}\n<ref>\nA plain line inside a ref.\n</ref>\n"
                "<!--\nA plain line inside a comment.\n-->\n* A list item is not plain.\n== Heading ==\n"
                "Second plain sentence here, ok.\nShort.\n{|\n| cell\nA plain line inside a table.\n|}")
    assert wikitext_prose(wikitext) == ["A plain sentence of the article.", "Second plain sentence here, ok."]


@pytest.mark.slow
def test_wikipedia_audit_counts_missing_prose_and_fails_past_the_threshold(tmp_path: Path) -> None:
    raw = raw_enwiki(tmp_path, [
        Page("A", "First plain paragraph of A.\n\nSecond plain paragraph of A.", 1),
        Page("B", "Only paragraph of page B here.", 2),
        Page("R", "#REDIRECT [[A]]", 3, redirect_to="A"),
    ])
    folder = corpus(tmp_path, {"enwiki/1": "First plain paragraph of A.", "enwiki/9": "Stray [[link]]."})
    audit = run_audit("wikipedia", folder, raw)
    assert (audit.documents, audit.with_residue, audit.raw_documents, audit.absent_documents) == (2, 1, 2, 1)
    assert (audit.paragraphs, audit.missing) == (2, 1)
    assert audit.missing_examples == [("enwiki/1", "Second plain paragraph of A.")]

    done = audit_cli("wikipedia", "--corpus", str(folder), "--raw", str(raw))
    assert done.returncode == 1
    assert "[[                   1            1  enwiki/9" in done.stdout
    assert "prose paragraphs of the rest: 2, missing 1 (50.00%)" in done.stdout
    assert "missing from enwiki/1: 'Second plain paragraph of A.'" in done.stdout
    assert done.stderr.strip() == ("audit failed: residue in 50.00% of documents (--max-residue 0.0); "
                                   "50.00% of prose paragraphs missing (--max-missing 0.0)")
    passed = audit_cli("wikipedia", "--corpus", str(folder), "--raw", str(raw), "--max-residue", "0.5",
                       "--max-missing", "0.5")
    assert passed.returncode == 0, passed.stderr


@pytest.mark.slow
def test_a_clean_corpus_passes_and_a_missing_one_is_one_error_line(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"gutenberg/a": "A clean book.\nSecond line."})
    done = audit_cli("books", "--corpus", str(folder))
    assert done.returncode == 0 and done.stdout.startswith("books: 1 documents, 0 with residue (0.00%)")
    missing = audit_cli("books", "--corpus", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no finished books corpus" in missing.stderr


def test_a_raw_input_that_is_no_file_nor_folder_is_one_line_and_never_opened(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"gutenberg/a": "A clean book.\nSecond line."})
    os.mkfifo(tmp_path / "fifo")  # no writer: a reader that opened it would wait for ever (a short timeout)
    for raw, line in [("fifo", "fifo: a FIFO, not a raw input file or folder"),
                      ("/dev/zero", "/dev/zero: a device, not a raw input file or folder")]:
        done = run_script("pipeline", "audit", "books", "--corpus", str(folder), "--raw", raw, cwd=tmp_path,
                          timeout=30)
        assert one_error(done, "pipeline") == line


def test_books_raw_prose_is_between_the_gutenberg_markers(tmp_path: Path) -> None:
    book = tmp_path / "gutenberg" / "b.txt"
    book.parent.mkdir()
    book.write_bytes(b"The Project Gutenberg EBook of B\r\n\r\n*** START OF THIS PROJECT GUTENBERG EBOOK B ***\r\n"
                     b"\r\nProduced by someone who typed it all in carefully.\r\n\r\n"
                     b"It was a dark and stormy night; the rain fell\r\n"
                     b"in torrents, except at occasional intervals.\r\n"
                     b"\r\n*** END OF THIS PROJECT GUTENBERG EBOOK B ***\r\nLicence text follows here at length.\r\n")
    paragraph = "It was a dark and stormy night; the rain fell in torrents, except at occasional intervals."
    assert list(books_raw(book)) == [("gutenberg/b", [paragraph])]


def test_arxiv_paper_defines_macros_in_its_tex_and_sty(tmp_path: Path) -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, text in {"main.tex": "\\documentclass{article}\\usepackage{mine}\\newcommand{\\idx}{q}\n"
                                       "\\begin{document}\n\\section{Intro}\n"
                                       "A plain line of the paper that is long enough.\n$\\gamma$\n"
                                       "\\end{document}\n",
                           "mine.sty": "\\DeclareRobustCommand{\\onedot}{.}\\def\\eg{e.g}"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    path = tmp_path / "2101.00001.tar.gz"
    path.write_bytes(gzip.compress(data.getvalue()))
    [(paper_id, paper)] = list(arxiv_raw(path))
    assert paper_id == "2101.00001" and paper.defined == {"idx", "onedot", "eg"}
    assert paper.prose == ["A plain line of the paper that is long enough."]
    # A document with residue of both kinds (generic and paper-defined) counts once.
    folder = corpus(tmp_path, {"2101.00001": "\\section{Intro}\nA plain line of the paper that is long enough.\n"
                                             "\\Hy@raisedlink $\\gamma\\idx$ and \\gammaq"})
    audit = run_audit("arxiv", folder, tmp_path)
    assert (audit.documents, audit.with_residue, audit.paragraphs, audit.missing) == (1, 1, 1, 0)
    assert dict(audit.occurrences) == {"\\@ internal": 1, "user macro left": 1, "control word made": 1}
    # \gamma\idx expanded without a separator makes \gammaq: in no file of the paper.
    made = _paper_residue("$\\gammaq + \\gamma q + \\onedot + \\operatorname{x}$", Paper([], {"onedot"},
                                                                                        {"gamma", "onedot"}))
    assert dict(made) == {"control word made": 1, "user macro left": 1}


def test_arxiv_paper_macros_of_every_form_outside_listings(tmp_path: Path) -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        text = ("\\documentclass{article}\\NewDocumentCommand{\\ours}{s}{Ours}\\DeclareMathOperator{\\tr}{tr}\n"
                "\\begin{verbatim}\n\\newcommand{\\shown}{x}\n\\bibliography{refs}\n\\end{verbatim}\n"
                "\\begin{document}\n\\section{Intro}\nA plain line of the paper that is long enough.\n"
                "A line that names \\verb|code| is not plain prose, however long it is.\n\\end{document}\n")
        info = tarfile.TarInfo("main.tex")
        info.size = len(text.encode())
        tar.addfile(info, io.BytesIO(text.encode()))
    path = tmp_path / "2101.00002.tar.gz"
    path.write_bytes(gzip.compress(data.getvalue()))
    [(_, paper)] = list(arxiv_raw(path))
    # \shown is only shown in a listing: TeX defines nothing there.
    assert paper.defined == {"ours", "tr"}
    assert paper.prose == ["A plain line of the paper that is long enough."]
    # A name in a listing of the corpus text is the paper's text; outside one it was not expanded.
    found = _paper_residue("\\ours{} and $\\tr A$ \\begin{verbatim}\\ours\\end{verbatim} \\verb|\\tr|", paper)
    assert dict(found) == {"user macro left": 2}


def test_latex_prose_starts_at_the_first_section_and_ends_at_the_bibliography() -> None:
    tex = ("\\begin{document}\nAn abstract line that the recipe cuts away anyway.\n\\section{A}\n"
           "Body line one that is a plain prose line of text.\nA line with $math$ in it is not plain text.\n"
           "\\begin{thebibliography}{9}\nA reference line that is plain but in the bibliography.\n")
    assert latex_prose(tex) == ["Body line one that is a plain prose line of text."]


def test_paper_files_are_the_largest_main_file_and_what_it_inputs() -> None:
    files = {"main.tex": "\\documentclass{article}\\begin{document}\\input{intro}\\cut{\\input{decoders.tex}}"
                         "% \\input{commented}\n" + "x" * 100 + "\\end{document}",
             "supp.tex": "\\documentclass{article}\\begin{document}Supplement\\end{document}",
             "sections/intro.tex": "Intro.", "decoders.tex": "Cut.", "commented.tex": "Off.", "unused.tex": "Old."}
    assert _paper_tex_files(files) == ["main.tex", "sections/intro.tex"]
