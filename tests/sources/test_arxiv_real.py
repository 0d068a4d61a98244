"""ArXiv on real papers (../shared/realdata/arxiv, provenance in its PROVENANCE.md): every paper
kept, no macro the paper defines survives, expansion creates no control word, no LaTeX
internal leaks, the back matter after the bibliography is gone while appendices stay, and the
CVPR abbreviations (`\\eg` and its `\\onedot` look-ahead) print their final dot once.

The oracle reads the raw archives with plain regexes, independently of pipeline/text/latex.py and latex_macros.py."""

from __future__ import annotations

import gzip
import io
import re
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from pipeline.commands.run import run_source
from pipeline.engine.shards import read_corpus
from sources.arxiv import ArXiv

REAL = Path(__file__).resolve().parents[2] / "../shared/realdata/arxiv"

# Definitions of new names, in a .tex (any form) and in a loaded package (new names only:
# a package's \renewcommand and \providecommand patch LaTeX's own commands).
TEX_DEFINITION = re.compile(
    r"\\(?:newcommand|renewcommand|providecommand|DeclareRobustCommand|DeclareMathOperator|DeclarePairedDelimiterX?)"
    r"\*?\s*\{?\s*\\([A-Za-z]+)|\\(?:def|gdef|edef|xdef|let)\s*\\([A-Za-z]+)"
)
STY_DEFINITION = re.compile(
    r"\\(?:newcommand|DeclareRobustCommand|DeclareMathOperator|DeclarePairedDelimiterX?)\*?\s*\{?\s*\\([A-Za-z]+)"
    r"|\\def\s*\\([A-Za-z]+)"
)
USEPACKAGE = re.compile(r"\\(?:usepackage|RequirePackage)\s*(?:\[[^\]]*\])?\s*\{([^{}]*)\}")
# LaTeX's own commands that conference styles redefine (icml2020.sty: \def\section{...}).
LATEX_OWN = {"section", "subsection", "subsubsection", "paragraph", "subparagraph", "footnotesize", "small",
             "normalsize", "large", "Large", "LARGE", "huge", "Huge", "tiny", "scriptsize", "left", "right"}
# Control words the cleaning writes itself: \DeclareMathOperator as \operatorname,
# \DeclarePairedDelimiter sizes.
WRITTEN = {"\\operatorname", "\\left", "\\right", "\\middle"}


def raw_files(path: Path) -> dict[str, str]:
    data = gzip.decompress(path.read_bytes())
    if data[257:262] != b"ustar":
        return {"main.tex": data.decode("utf-8", "replace")}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read().decode("utf-8", "replace") for m in tar if m.isfile()}


def without_comments(text: str) -> str:
    return re.sub(r"(?<!\\)%[^\n]*", "", text)


def defined_names(files: dict[str, str]) -> set[str]:
    tex = [without_comments(t) for n, t in files.items() if n.endswith(".tex")]
    loaded = {name.strip() + ".sty" for t in tex for m in USEPACKAGE.finditer(t) for name in m.group(1).split(",")}
    names = {a or b for t in tex for a, b in TEX_DEFINITION.findall(t)}
    for name, text in files.items():
        if Path(name).name in loaded:
            names |= {a or b for a, b in STY_DEFINITION.findall(without_comments(text))}
    return names - LATEX_OWN


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    if not REAL.is_dir():
        pytest.skip(f"{REAL} not found: the real arXiv papers live outside the repository (../shared)")
    out = tmp_path_factory.mktemp("arxiv")
    report = run_source(ArXiv(), str(REAL), str(out), workers=1, show_progress=False)
    return report.stats, {d.id: d.text for d in read_corpus(out / "arxiv")}


def test_real_papers_are_all_kept(real_run: tuple[dict, dict]) -> None:
    stats, docs = real_run
    papers = sorted(re.sub(r"\.(tar\.gz|gz)$", "", p.name) for p in REAL.iterdir() if p.name.endswith(".gz"))
    assert sorted(docs) == papers and len(papers) == 8
    assert all(not st["dropped"] for st in stats["stages"])


def test_real_papers_keep_no_macro_they_define(real_run: tuple[dict, dict]) -> None:
    _, docs = real_run
    surviving = {}
    for paper, text in docs.items():
        names = defined_names(raw_files(next(REAL.glob(paper + ".*"))))
        used = Counter(n for n in names for _ in re.finditer(r"\\" + n + r"(?![A-Za-z])", text))
        if used:
            surviving[paper] = dict(used)
    assert surviving == {}


def test_real_papers_get_no_new_control_word_and_no_internal(real_run: tuple[dict, dict]) -> None:
    _, docs = real_run
    for paper, text in docs.items():
        spelled = set(re.findall(r"\\[A-Za-z]+", "".join(raw_files(next(REAL.glob(paper + ".*"))).values())))
        created = Counter(w for w in re.findall(r"(?<!\\)(?:\\\\)*(\\[A-Za-z]+)", text) if w not in spelled | WRITTEN)
        assert created == Counter(), paper  # e.g. `\gamma\idx` read as `\gammaq`
        assert re.findall(r"\\[A-Za-z]+@[A-Za-z@]*", text) == [], paper  # \Hy@raisedlink and friends
        assert "{\\footnotesize}" not in text and "\\bibliography" not in text, paper


def test_real_back_matter_dropped_and_appendices_kept(real_run: tuple[dict, dict]) -> None:
    _, docs = real_run
    # NeurIPS checklist (srot) and the consortium list (scipy) follow the bibliography.
    assert "\\section*{Checklist}" not in docs["srot"] and "\\answerYes" not in docs["srot"]
    assert "\\section*{Consortium}" not in docs["scipy-1.0"] and "Competing Interests" not in docs["scipy-1.0"]
    # Each paper whose raw source has an \appendix keeps it, and the text under it.
    for paper in ["ethereum-yellowpaper", "astropy-v2.0", "hyperbolic-nf", "cnn-limits"]:
        assert docs[paper].count("\\appendix") == 1, paper
        assert len(docs[paper].split("\\appendix", 1)[1]) > 2000, paper
    assert "\\section{Supplement}" in docs["sympy"]  # a numbered section after the references


# hyperbolic-nf defines the CVPR abbreviations with the \onedot look-ahead (`\def\eg{\emph{e.g}\onedot}`).
ONEDOT_ABBREVIATIONS = {"eg": "e.g.", "ie": "i.e.", "etal": "et al."}
EMPHASIS = re.compile(r"\\emph\{([^{}]*)\}")


def test_real_onedot_abbreviations_print_their_dot_once(real_run: tuple[dict, dict]) -> None:
    """Each use of \\eg, \\ie, \\etal prints "e.g." (not "e.g", not "e.g.."), as LaTeX does; the
    abbreviations the authors typed out stay as they are (one "i.e," without its dot among them).
    Read with \\emph removed on both sides: the emphasis is how the letters print, not which."""
    _, docs = real_run
    files = raw_files(REAL / "hyperbolic-nf.tar.gz")
    tex = "".join(EMPHASIS.sub(r"\1", without_comments(t)) for name, t in files.items() if name.endswith(".tex"))
    printed = EMPHASIS.sub(r"\1", docs["hyperbolic-nf"])
    uses = {}
    for name, abbreviation in ONEDOT_ABBREVIATIONS.items():
        command = r"\\" + name + r"(?![A-Za-z@])"
        definitions = len(re.findall(r"\\def\s*" + command, tex))
        uses[name] = len(re.findall(command, tex)) - definitions
        word = r"(?<![A-Za-z])" + re.escape(abbreviation[:-1])  # "e.g" not inside a word
        typed = len(re.findall(word + r"\.", tex))
        typed_bare = len(re.findall(word + r"(?![.A-Za-z])", tex)) - definitions  # a definition's "e.g" has no dot
        assert len(re.findall(word + r"\.(?!\.)", printed)) == uses[name] + typed, name
        assert len(re.findall(word + r"(?![.A-Za-z])", printed)) == typed_bare, name
        assert re.findall(word + r"\.\.", printed) == [], name
    assert uses == {"eg": 2, "ie": 3, "etal": 0}
