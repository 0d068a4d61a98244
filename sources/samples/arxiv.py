"""Sample arXiv input: one source tarball per paper (.tar.gz) as arXiv serves them, a gzipped
single .tex, a folder-form paper, and bad ones on purpose.

Good papers use \\input and \\include, user macros with and without arguments (an optional
argument with a default, a \\def, \\DeclareMathOperator, a name that prefixes another),
comments next to an escaped \\%, a bibliography and an appendix. Bad ones: a corrupt
tarball, a tarball with `../` and absolute member paths, a symlink and a device file, a
member too large to read, a gzip decompression bomb, unbalanced braces, recursive macros.
"""

from __future__ import annotations

import gzip
import io
import random
import tarfile
from pathlib import Path

from sources.samples.text import paragraph

PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage{amsmath,amssymb}
% Macros used throughout.
\newcommand{\R}{\mathbb{R}}
\newcommand{\Real}{\mathrm{Re}}
\newcommand{\norm}[1]{\lVert #1 \rVert}
\newcommand{\pair}[2][x]{(#1,#2)}
\def\eps{\varepsilon}
\DeclareMathOperator*{\argmin}{arg\,min}
\title{A Generated Paper}
\author{Sample Author}
\begin{document}
\maketitle
\begin{abstract}
This abstract comes before the first section and is removed.
\end{abstract}
"""


def tar_gz(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    """A gzipped tarball of (name, content) files and raw TarInfo entries (links, devices); the
    same bytes on every run (no timestamps)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)


def paper_main(rng: random.Random, body_input: str = r"\input{sections/intro}") -> str:
    return (
        PREAMBLE
        + r"\section{Introduction}" + "\n"
        + body_input + "\n"
        + r"We study $f \colon \R^n \to \R$ with $\Real(z) > 0$ and $\norm{x - y} \le \eps$. % a note" + "\n"
        + r"The minimiser $\argmin_x f(x)$ of $\pair{y}$ and $\pair[z]{y}$ improves accuracy by 5\%." + "\n\n"
        + paragraph(rng) + "\n\n"
        + r"\section{Results}" + "\n" + paragraph(rng) + "\n"
        + "%\\section{Commented out}\n"
        + r"\bibliographystyle{plain}" + "\n" + r"\bibliography{refs}" + "\n"
        + r"\appendix" + "\n" + r"\section{Proofs}" + "\n" + paragraph(rng) + "\n"
        + r"\end{document}" + "\n" + "Text after the end is ignored.\n"
    )


def write(folder: Path, seed: int) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    intro = ("% intro section\n" + paragraph(rng) + "\nSee \\cite{ref1}.\n").encode()
    for number in range(1, 4):
        files = [
            ("main.tex", paper_main(rng).encode()),
            ("sections/intro.tex", intro),
            ("refs.bib", b"@article{ref1, title={A}}\n"),
            ("figure.png", bytes(range(256))),
        ]
        (folder / f"2101.0000{number}.tar.gz").write_bytes(tar_gz(files))
    # arXiv also serves a single .tex as a gzipped file, and old-style ids.
    single = paper_main(rng, "").replace(r"\bibliography{refs}", "\\begin{thebibliography}{1}\n"
                                        "\\bibitem{a} A. Author. A title. 1999.\n\\end{thebibliography}")
    (folder / "hep-th9901001.gz").write_bytes(gzip.compress(single.encode(), mtime=0))
    # A folder holding one paper's .tex files.
    paper = folder / "folders" / "2101.00010"
    paper.mkdir(parents=True, exist_ok=True)
    (paper / "main.tex").write_text(paper_main(rng, r"\include{intro}"))
    (paper / "intro.tex").write_bytes(intro)

    # Bad inputs.
    (folder / "2101.00020.tar.gz").write_bytes(b"\x1f\x8b\x08\x00 this is not gzip data at all" * 4)
    unsafe: list[tarfile.TarInfo | tuple[str, bytes]] = [
        ("main.tex", paper_main(rng, "").encode()),
        ("../escape.tex", b"outside"),
        ("/tmp/absolute.tex", b"absolute"),
    ]
    link = tarfile.TarInfo("link.tex")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    device = tarfile.TarInfo("dev.tex")
    device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3
    (folder / "2101.00021.tar.gz").write_bytes(tar_gz(unsafe + [link, device]))
    # 20 MB of zeros: a member over the per-file limit (refused unread) and a gzip bomb.
    zeros = bytes(20 << 20)
    (folder / "2101.00022.tar.gz").write_bytes(tar_gz([("main.tex", paper_main(rng, "").encode()), ("big.tex", zeros)]))
    (folder / "2101.00023.gz").write_bytes(gzip.compress(zeros, compresslevel=9, mtime=0))
    unbalanced = paper_main(rng, r"\textbf{an unclosed group")
    recursive = paper_main(rng, r"\newcommand{\loop}{\loop\loop}\loop")
    (folder / "2101.00024.tar.gz").write_bytes(tar_gz([("main.tex", unbalanced.encode())]))
    (folder / "2101.00025.tar.gz").write_bytes(tar_gz([("main.tex", recursive.encode())]))
