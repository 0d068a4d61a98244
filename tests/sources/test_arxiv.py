"""ArXiv: exact macro expansion, structural cuts, and bad archives skipped with a reason."""

from __future__ import annotations

import gzip
import os
import tarfile
from pathlib import Path

import pytest

from pipeline.commands.run import run_source
from pipeline.common.errors import InputError
from pipeline.engine.shards import read_corpus
from pipeline.formats.arxiv import arxiv_id
from sources.arxiv import ArXiv, ArxivConfig
from sources.samples.arxiv import tar_gz, write

MAIN = r"""\documentclass{article}
\newcommand{\R}{\mathbb{R}}
\newcommand{\Real}{\mathrm{Re}}
\newcommand{\norm}[1]{\lVert #1 \rVert}
\newcommand{\pair}[2][x]{(#1,#2)}
\def\eps{\varepsilon}
\begin{document}
\begin{abstract}Removed abstract.\end{abstract}
Text before the first section. % removed
\section{Intro}
\input{sec/one}
$\R$, $\Real$, $\norm{v}$, $\pair{y}$, $\pair[z]{y}$, $\eps$; 5\% % comment
more.
\bibliographystyle{plain}
\bibliography{refs}
\appendix
\section{Proof}
Appendix text.
\end{document}
"""
ONE = "% a comment line\nInlined text.\n"
EXPECTED = r"""\section{Intro}
Inlined text.

$\mathbb{R}$, $\mathrm{Re}$, $\lVert v \rVert$, $(x,y)$, $(z,y)$, $\varepsilon$; 5\% more.

\appendix
\section{Proof}
Appendix text."""


def run(raw: Path, out: Path, **config) -> tuple[dict, list]:
    config.setdefault("min_chars", 1)
    report = run_source(ArXiv(ArxivConfig(**config)), str(raw), str(out), workers=1, show_progress=False)
    return report.stats, list(read_corpus(out / "arxiv"))


def paper(folder: Path, name: str, members: list) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(tar_gz(members))


def test_paper_is_cleaned_exactly(tmp_path: Path) -> None:
    paper(tmp_path / "raw", "2101.00001.tar.gz", [("main.tex", MAIN.encode()), ("sec/one.tex", ONE.encode()),
                                                  ("refs.bib", b"@article{x}")])
    stats, docs = run(tmp_path / "raw", tmp_path / "out")
    assert [(d.id, d.meta) for d in docs] == [
        ("2101.00001", {"arxiv_id": "2101.00001", "main_file": "main.tex"})]
    assert docs[0].text == EXPECTED
    assert stats["documents_kept"] == 1


def test_single_gzipped_tex_and_thebibliography(tmp_path: Path) -> None:
    text = MAIN.replace("\\input{sec/one}\n", "").replace(
        "\\bibliography{refs}", "\\begin{thebibliography}{1}\n\\bibitem{a} A.\n\\end{thebibliography}")
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "hep-th9901001.gz").write_bytes(gzip.compress(text.encode()))
    _, docs = run(raw, tmp_path / "out")
    assert docs[0].id == "hep-th/9901001"
    assert docs[0].text == EXPECTED.replace("Inlined text.\n\n", "")


def test_folder_of_tex_files(tmp_path: Path) -> None:
    folder = tmp_path / "raw" / "2101.00003"
    folder.mkdir(parents=True)
    (folder / "paper.tex").write_text(MAIN)
    (folder / "sec").mkdir()
    (folder / "sec" / "one.tex").write_text(ONE)
    _, docs = run(tmp_path / "raw", tmp_path / "out")
    assert [(d.id, d.text) for d in docs] == [("2101.00003/paper.tex", EXPECTED)]


def test_nothing_is_inlined_through_a_linked_folder(tmp_path: Path) -> None:
    # `sub` links to a folder outside the paper, `same` to one of the paper's own: both are links.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.tex").write_text("SECRET TEXT\n")
    folder = tmp_path / "raw" / "2101.00004"
    (folder / "parts").mkdir(parents=True)
    (folder / "parts" / "own.tex").write_text("Own part.\n")
    os.symlink(outside, folder / "sub", target_is_directory=True)
    os.symlink(folder / "parts", folder / "same", target_is_directory=True)
    (folder / "main.tex").write_text("\\documentclass{article}\n\\begin{document}\n\\section{Intro}\nText.\n"
                                     "\\input{sub/secret}\n\\input{same/own}\n\\input{parts/own}\n\\end{document}\n")
    _, docs = run(tmp_path / "raw", tmp_path / "out")
    # The two empty lines the links left are one blank line (runs of blank lines become one).
    assert [(d.id, d.text) for d in docs] == [("2101.00004/main.tex", "\\section{Intro}\nText.\n\nOwn part.")]


def test_unsafe_members_are_refused_and_counted(tmp_path: Path) -> None:
    link = tarfile.TarInfo("sec/one.tex")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    hard = tarfile.TarInfo("hard.tex")
    hard.type, hard.linkname = tarfile.LNKTYPE, "main.tex"
    device = tarfile.TarInfo("dev.tex")
    device.type = tarfile.CHRTYPE
    fifo = tarfile.TarInfo("fifo.tex")
    fifo.type = tarfile.FIFOTYPE
    members = [("main.tex", MAIN.encode()), ("../../escape.tex", b"x"), ("/abs/olute.tex", b"y"), link, hard,
               device, fifo]
    paper(tmp_path / "raw", "2101.00004.tar.gz", members)
    stats, docs = run(tmp_path / "raw", tmp_path / "out")
    assert stats["stages"][0]["dropped"] == {"unsafe_member_path": 2, "link_member": 2, "special_member": 2}
    assert docs[0].text == EXPECTED.replace("Inlined text.\n", "")  # the link was never followed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "raw"]
    assert not list(tmp_path.rglob("escape.tex")) and not list(tmp_path.rglob("olute.tex"))


def test_bad_latex_is_dropped_with_a_reason(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    paper(raw, "2101.00005.tar.gz", [("main.tex", MAIN.replace("\\section{Intro}", "\\section{Intro").encode())])
    paper(raw, "2101.00006.tar.gz", [("main.tex", MAIN.replace("\\def\\eps{\\varepsilon}",
                                                               "\\def\\eps{\\eps\\eps}").encode())])
    paper(raw, "2101.00007.tar.gz", [("main.tex", MAIN.replace("\\def\\eps{\\varepsilon}",
                                                               "\\newcommand{\\a}{\\b}\\newcommand{\\b}{\\a}\\a").encode())])
    paper(raw, "2101.00008.tar.gz", [("notes.txt", b"no tex here"), ("index.html", b"<html>a paper</html>")])
    paper(raw, "2101.00009.tar.gz", [("main.tex", b"\\documentclass{article}\\begin{document}No sections.\\end{document}")])
    paper(raw, "2101.00010.tar.gz", [("part.tex", b"\\section{A part} of a paper whose main file is missing.")])
    (raw / "2101.00011.gz").write_bytes(gzip.compress(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"))
    stats, docs = run(raw, tmp_path / "out")
    assert docs == []
    read, expand, cut = stats["stages"][:3]
    assert read["dropped"] == {"no_tex_files": 1, "no_main_tex_file": 1, "pdf_only": 1}
    assert expand["dropped"] == {"unbalanced_braces": 1, "macro_expansion_limit": 2}
    assert cut["dropped"] == {"no_section": 1}


def test_a_command_saved_with_let_and_wrapped_is_kept(tmp_path: Path) -> None:
    # `\let\oldemph\emph` saved LaTeX's \emph: the wrapper prints it once, no loop drops the paper.
    sentences = [f"Sentence {i} has \\emph{{emphasis}} and enough words to pass." for i in range(20)]
    folder = tmp_path / "raw" / "p1"
    folder.mkdir(parents=True)
    (folder / "main.tex").write_text(
        "\\documentclass{article}\n\\let\\oldemph\\emph\n\\renewcommand{\\emph}[1]{\\textbf{\\oldemph{#1}}}\n"
        "\\begin{document}\n\\section{Intro}\n" + "\n".join(sentences) + "\n\\end{document}\n")
    _, docs = run(tmp_path / "raw", tmp_path / "out", min_chars=500)
    assert [d.id for d in docs] == ["p1/main.tex"]
    assert docs[0].text == "\\section{Intro}\n" + "\n".join(
        f"Sentence {i} has \\textbf{{\\emph{{emphasis}}}} and enough words to pass." for i in range(20))


def test_percent_in_a_url_is_part_of_the_url(tmp_path: Path) -> None:
    # A `%` read as a comment cut the rest of the line, braces and all: the paper was dropped
    # as unbalanced_braces. URLs stay in the text as written; \href's URL expands the paper's macros.
    main = ("\\documentclass{article}\n\\newcommand{\\repo}{https://example.org/code}\n\\begin{document}\n"
            "\\section{Intro}\nData at \\url{https://example.org/a%20b}. % a comment\n"
            "Code at \\href{\\repo/%7Euser}{our repository}, and \\url{\\repo}.\n\\end{document}\n")
    paper(tmp_path / "raw", "2101.00012.tar.gz", [("main.tex", main.encode())])
    _, docs = run(tmp_path / "raw", tmp_path / "out")
    assert [(d.id, d.text) for d in docs] == [("2101.00012", (
        "\\section{Intro}\nData at \\url{https://example.org/a%20b}. "
        "Code at \\href{https://example.org/code/%7Euser}{our repository}, and \\url{\\repo}."))]


def test_a_url_broken_over_lines_keeps_its_percent_and_its_end(tmp_path: Path) -> None:
    # The `%20` of a URL whose brace closes on the next line was read as a comment: the line's
    # rest and the break went, leaving \url{https://example.org/a/c} (and \href's URL the same).
    main = ("\\documentclass{article}\n\\begin{document}\n\\section{Intro}\n"
            "Data at \\url{https://example.org/a%20b\n/c}. % a comment\n"
            "Code at \\href{https://example.org/%7Euser/\n  repo}{our repository}.\n\\end{document}\n")
    paper(tmp_path / "raw", "2101.00013.tar.gz", [("main.tex", main.encode())])
    _, docs = run(tmp_path / "raw", tmp_path / "out")
    assert [(d.id, d.text) for d in docs] == [("2101.00013", (
        "\\section{Intro}\nData at \\url{https://example.org/a%20b\n/c}. "
        "Code at \\href{https://example.org/%7Euser/\n  repo}{our repository}."))]


def test_url_sty_path_keeps_its_percent_and_tikz_path_is_tex(tmp_path: Path) -> None:
    # url.sty's \path{...} read as TeX: its `%` cut the line, brace and all, and the paper was
    # dropped as unbalanced_braces. TikZ's \path in the picture stays TeX: its macro expands and
    # its comment goes.
    main = ("\\documentclass{article}\n\\usepackage{url,tikz}\n\\newcommand{\\origin}{(0,0)}\n"
            "\\begin{document}\n\\section{Intro}\nResults are in \\path{out/run%1.csv}. % a comment\n"
            "\\begin{tikzpicture}\n\\path[draw] \\origin{} -- (1,1); % a line\n\\end{tikzpicture}\n"
            "\\end{document}\n")
    paper(tmp_path / "raw", "2101.00014.tar.gz", [("main.tex", main.encode())])
    _, docs = run(tmp_path / "raw", tmp_path / "out")
    assert [(d.id, d.text) for d in docs] == [("2101.00014", (
        "\\section{Intro}\nResults are in \\path{out/run%1.csv}. \\begin{tikzpicture}\n"
        "\\path[draw] (0,0) -- (1,1); \\end{tikzpicture}"))]


def test_decompression_bombs_and_corrupt_archives_fail_with_a_reason(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    zeros = bytes(3 << 20)
    (raw / "2101.00010.gz").write_bytes(gzip.compress(zeros))
    paper(raw, "2101.00011.tar.gz", [("main.tex", MAIN.encode()), ("a.tex", zeros)])
    paper(raw, "2101.00012.tar.gz", [("main.tex", MAIN.encode())] + [(f"p{i}.tex", zeros[: 1 << 20]) for i in range(4)])
    (raw / "2101.00013.tar.gz").write_bytes(b"\x1f\x8b\x08\x00garbage" * 10)
    (raw / "2101.00014.tar.gz").write_bytes(tar_gz([("main.tex", MAIN.encode())])[:60])
    paper(raw, "2101.00015.tar.gz", [("main.tex", MAIN.encode()), ("sec/one.tex", ONE.encode())])
    (raw / "2101.00016.tar").write_bytes(b"")  # a download that never started
    (raw / "2101.00017.gz").write_bytes(gzip.compress(b""))  # a gzipped file of nothing
    source = ArXiv(ArxivConfig(max_file_mb=2, max_paper_mb=3, max_decompressed_mb=4, min_chars=1))
    problems = {}
    for path in sorted(raw.iterdir()):
        try:
            items = list(source.read(str(path)))
            problems[path.name] = sorted(getattr(i, "reason", "document") for i in items)
        except InputError as e:
            problems[path.name] = e.problem.split(" ")[0]
    assert problems == {
        "2101.00010.gz": "decompression_limit",
        "2101.00011.tar.gz": ["document", "member_too_large"],
        "2101.00012.tar.gz": "archive_too_large",
        "2101.00013.tar.gz": "corrupt_archive",
        "2101.00014.tar.gz": "truncated_archive",
        "2101.00015.tar.gz": ["document"],
        "2101.00016.tar": "empty_file",
        "2101.00017.gz": "empty_file",
    }


# A class's documentation: its template, shown in verbatim, is a whole paper of its own, larger
# than the real main file; TeX never reads it as one.
CLASS_DOC = r"""\documentclass{book}
\NewDocumentCommand{\ours}{s}{\IfBooleanTF{#1}{\textsc{Herd}}{Herd}}
\begin{document}
\chapter{Using the class}
\ours* ships a template:
\input{template}
\section{After}
Text after, by \ours.
\end{document}
"""
TEMPLATE = "\\begin{verbatim}\n\\documentclass{article}\n% a comment shown in the template\n\\begin{document}\n" \
           "\\section{Example}\n\\bibliography{refs}\n" + "A line of the template.\n" * 40 + \
           "\\end{document}\n\\end{verbatim}\n"


def test_main_file_is_not_a_template_shown_in_verbatim(tmp_path: Path) -> None:
    paper(tmp_path / "raw", "2101.00031.tar.gz",
          [("template.tex", TEMPLATE.encode()), ("main.tex", CLASS_DOC.encode())])
    _, docs = run(tmp_path / "raw", tmp_path / "out")
    assert [d.meta["main_file"] for d in docs] == ["main.tex"]
    # The template stays whole, its `%` line and \bibliography included; the paper's macro expands.
    assert docs[0].text == ("\\chapter{Using the class}\n\\textsc{Herd} ships a template:\n" + TEMPLATE +
                            "\n\\section{After}\nText after, by Herd.")


def test_folder_template_in_verbatim_is_not_a_paper(tmp_path: Path) -> None:
    folder = tmp_path / "raw" / "2101.00033"
    folder.mkdir(parents=True)
    (folder / "template.tex").write_text(TEMPLATE)
    (folder / "main.tex").write_text(CLASS_DOC)
    _, docs = run(tmp_path / "raw", tmp_path / "out")
    assert [d.id for d in docs] == ["2101.00033/main.tex"]
    assert docs[0].text.endswith("\\end{document}\n\\end{verbatim}\n\n\\section{After}\nText after, by Herd.")


def test_end_document_in_a_listing_keeps_the_inputs_after_it(tmp_path: Path) -> None:
    main = ("\\documentclass{article}\n\\lstnewenvironment{code}{}{}\n\\begin{document}\n\\section{Intro}\n"
            "A listing:\n\\begin{lstlisting}\n\\end{document}\n\\end{lstlisting}\n\\input{sec2}\n\\end{document}\n")
    # `code` is defined verbatim in the main file: its `%` in another file is text, not a comment.
    sec2 = "\\section{Two}\nCode: % a comment\n\\begin{code}\nx = 1 % modulo\n\\end{code}\n"
    paper(tmp_path / "raw", "2101.00032.tar.gz", [("main.tex", main.encode()), ("sec2.tex", sec2.encode())])
    _, docs = run(tmp_path / "raw", tmp_path / "out")
    assert docs[0].text == ("\\section{Intro}\nA listing:\n\\begin{lstlisting}\n\\end{document}\n\\end{lstlisting}\n"
                            "\\section{Two}\nCode: \\begin{code}\nx = 1 % modulo\n\\end{code}")


def test_a_comment_environment_the_main_file_defines_hides_its_blocks_in_an_input_file(tmp_path: Path) -> None:
    # comment.sty's \excludecomment{hide} in the preamble makes `hide` a comment in every file
    # TeX reads after it: the block in sec.tex went into the text, markup and all.
    main = ("\\documentclass{article}\n\\usepackage{comment}\n\\excludecomment{hide}\n\\begin{document}\n"
            "\\section{Intro}\nIntro text.\n\\input{sec}\n\\end{document}\n")
    sec = "Text of sec.\n\\begin{hide}\nHidden in sec.\n\\end{hide}\nMore text of sec.\n"
    expected = "\\section{Intro}\nIntro text.\nText of sec.\n\nMore text of sec."
    paper(tmp_path / "raw", "2101.00035.tar.gz", [("main.tex", main.encode()), ("sec.tex", sec.encode())])
    folder = tmp_path / "raw" / "2101.00036"  # a folder's parts are read lazily, through the main file
    folder.mkdir()
    (folder / "main.tex").write_text(main)
    (folder / "sec.tex").write_text(sec)
    _, docs = run(tmp_path / "raw", tmp_path / "out")
    assert sorted((d.id, d.text) for d in docs) == [("2101.00035", expected), ("2101.00036/main.tex", expected)]


def test_a_listing_of_a_verbatim_environment_the_preamble_defines_survives_the_cut(tmp_path: Path) -> None:
    # `code` is verbatim by the preamble's \lstnewenvironment, which the cut before the first
    # section removes: the bibliography's removal still reads the listing's \end{document} and
    # \bibliography{x} as text, not as the paper's end (which dropped the listing and "More text.").
    main = ("\\documentclass{article}\n\\usepackage{listings}\n\\lstnewenvironment{code}{}{}\n\\begin{document}\n"
            "\\section{Intro}\nA listing:\n\\begin{code}\n\\end{document}\n\\bibliography{x}\n\\end{code}\n"
            "More text.\n\\bibliographystyle{plain}\n\\bibliography{refs}\n\\end{document}\n")
    paper(tmp_path / "raw", "2101.00034.tar.gz", [("main.tex", main.encode())])
    _, docs = run(tmp_path / "raw", tmp_path / "out")
    assert [(d.id, d.text) for d in docs] == [("2101.00034", (
        "\\section{Intro}\nA listing:\n\\begin{code}\n\\end{document}\n\\bibliography{x}\n\\end{code}\n"
        "More text."))]


def test_a_usepackage_shown_in_a_listing_of_a_package_environment_loads_nothing(tmp_path: Path) -> None:
    # `code` is verbatim by mypkg.sty: the \usepackage{other} it shows is text, and other.sty's
    # macros are not written into the listing.
    main = ("\\documentclass{article}\n\\usepackage{mypkg}\n\\begin{document}\n\\section{Intro}\nShow:\n"
            "\\begin{code}\n\\usepackage{other}\n\\end{code}\nMore text.\n\\end{document}\n")
    paper(tmp_path / "raw", "2101.00035.tar.gz", [
        ("main.tex", main.encode()), ("mypkg.sty", b"\\RequirePackage{listings}\n\\lstnewenvironment{code}{}{}\n"),
        ("other.sty", b"\\newcommand{\\foo}{X}\n")])
    _, docs = run(tmp_path / "raw", tmp_path / "out")
    assert [(d.id, d.text) for d in docs] == [
        ("2101.00035", "\\section{Intro}\nShow:\n\\begin{code}\n\\usepackage{other}\n\\end{code}\nMore text.")]


def test_arxiv_ids() -> None:
    assert arxiv_id("/x/2101.00001v2.tar.gz") == "2101.00001v2"
    assert arxiv_id("/x/math.AG0601001.gz") == "math.AG/0601001"


@pytest.mark.slow
def test_sample_runs_with_every_bad_case_counted(tmp_path: Path) -> None:
    write(tmp_path / "raw", seed=0)
    stats, docs = run(tmp_path / "raw", tmp_path / "out", min_chars=500)
    failed = {Path(f["path"]).name: f["problem"].split(" ")[0] for f in stats["files"]["failed"]}
    assert failed == {"2101.00020.tar.gz": "corrupt_archive", "2101.00023.gz": "decompression_limit"}
    assert stats["stages"][0]["dropped"] == {"unsafe_member_path": 2, "link_member": 1, "special_member": 1,
                                             "member_too_large": 1}
    assert stats["stages"][1]["dropped"] == {"unbalanced_braces": 1, "macro_expansion_limit": 1}
    assert sorted(d.id for d in docs) == ["2101.00001", "2101.00002", "2101.00003", "2101.00010/main.tex",
                                          "2101.00021", "2101.00022", "hep-th/9901001"]
    for doc in docs:
        assert doc.text.startswith("\\section{Introduction}")
        assert "\\appendix" in doc.text and "\\bibliography" not in doc.text and "%" not in doc.text.replace("\\%", "")
        assert "\\pair" not in doc.text and "(z,y)" in doc.text
