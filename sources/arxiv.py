"""ArXiv: LaTeX sources to cleaned LaTeX text, following Lewkowycz et al. (2022) as the paper does.

Inputs: `*.tar.gz` / `*.tgz` / `*.tar` (one paper each, as arXiv serves them), `*.gz` (arXiv's
gzipped single .tex, or a gzipped tar: sniffed), and folders holding `.tex` files (one paper a
folder). Archives are read in memory with path, link and size checks (`read_paper_archive` in
pipeline/formats/arxiv.py, over archives.py; `pipeline audit --raw` reads them the same way):
nothing is ever extracted to disk.

Reader: picks the main file (the one with \\documentclass and \\begin{document} outside verbatim;
the largest if several), strips comments from every file (never in verbatim; before inlining,
so a commented-out \\input is not inlined), inlines \\input/\\include/\\include*/\\import/
\\subimport outside verbatim (a paper that inlines more than 8x its files is skipped as
input_expansion_limit), and writes the notation macros of
the paper's own `.sty` files loaded with \\usepackage into its preamble. Stages, in order: macro
expansion (user macros with arguments; unbalanced braces, runaway recursion or output past 8x
the input plus 1 MB drop the paper with a reason), the cut of everything before the first
sectioning command (the verbatim environments the cut part defined go with the paper to the
next stage, which reads its listings with them), the removal of the bibliography, of the back
matter after it (appendices and numbered sections stay; see pipeline/text/latex.py) and of what
follows \\end{document}, a minimum length.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Callable, Iterator

import fsspec
import pyarrow as pa

from pipeline.common.config import Count, Megabytes
from pipeline.common.errors import InputError
from pipeline.engine.document import Document, Skipped
from pipeline.engine.source import Source, SourceConfig
from pipeline.engine.stage import Stage
from pipeline.filters.min_chars import MinChars
from pipeline.formats.archives import ArchiveError, Limits, MiB
from pipeline.formats.arxiv import arxiv_id, read_paper_archive
from pipeline.formats.files import decode_utf8_or_latin1
from pipeline.text.latex import LatexError, inline_inputs, strip_comments
from pipeline.text.latex_macros import MAX_EXPANSIONS
from pipeline.text.latex_packages import inline_packages
from pipeline.text.latex_verbatim import Environments, paper_environments, regions
from pipeline.transforms.clean_latex import CutBeforeFirstSection, ExpandMacros, RemoveBibliography

DOCUMENTCLASS = re.compile(r"\\documentclass\s*[\[{]|\\documentstyle\s*[\[{]")
BEGIN_DOCUMENT = re.compile(r"\\begin\s*\{document\}")


@dataclass
class ArxivConfig(SourceConfig):
    max_file_mb: Megabytes = 16  # a member larger than this is refused (member_too_large)
    max_paper_mb: Megabytes = 64  # kept files of one paper, in all
    max_decompressed_mb: Megabytes = 256  # decompressed bytes scanned per archive (decompression bombs)
    max_expansions: Count = MAX_EXPANSIONS  # macro uses expanded per paper
    min_chars: Count = 500  # cleaned papers shorter than this are dropped as "too_short"

    def limits(self) -> Limits:
        return Limits(self.max_file_mb * MiB, self.max_paper_mb * MiB, self.max_decompressed_mb * MiB)


def declares_class(text: str, environments: Environments = Environments()) -> tuple[bool, bool]:
    """Whether `text` (comment-free) has \\documentclass, and \\begin{document}, outside verbatim:
    a listing of another file's preamble (a class's documentation, a template) is not a main file."""
    spans = regions(text, environments)
    return spans.search(DOCUMENTCLASS, text) is not None, spans.search(BEGIN_DOCUMENT, text) is not None


def pick_main(texts: dict[str, str], environments: Environments = Environments()) -> str | None:
    """The main file: has \\documentclass (comment-free) and \\begin{document}; the largest wins."""
    found = {p: declares_class(t, environments) for p, t in texts.items()}
    mains = [p for p, (documentclass, document) in found.items() if documentclass and document]
    if not mains:
        mains = [p for p, (documentclass, _) in found.items() if documentclass]
    if not mains:
        return None
    return min(mains, key=lambda p: (-len(texts[p]), p))


def assemble(main_text: str, main: str, base: str, load: Callable[[str], str | None],
             environments: Environments = Environments()) -> str:
    """The main file with its inputs inlined and its local packages' macros defined."""
    # The main file is on the stack from the start: a part that inputs it back is not inlined.
    text = inline_inputs(main_text, base, load, stack=(main,), environments=environments)
    return inline_packages(text, base, load, environments)


def passes_a_link(fs: fsspec.AbstractFileSystem, base: str, relative: str) -> bool:
    """True when the file `relative` (normalised, inside the paper folder `base`) or a folder on
    the way to it is a symbolic link: a link can point anywhere on the machine (`\\input{sub/x}`
    with `sub` linked to a folder outside the paper), so nothing is read through one."""
    parts = relative.split("/")
    return any(fs.info(f"{base.rstrip('/')}/{'/'.join(parts[:k])}").get("islink") for k in range(1, len(parts) + 1))


class ArXiv(Source):
    name = "arxiv"
    config_class = ArxivConfig
    patterns = ("**/*.tar.gz", "**/*.tgz", "**/*.tar", "**/*.gz", "**/*.tex")

    def fields(self) -> list[pa.Field]:
        return [pa.field("arxiv_id", pa.string()), pa.field("main_file", pa.string())]

    def stages(self) -> list[Stage]:
        return [
            ExpandMacros(self.config.max_expansions),
            CutBeforeFirstSection(),
            RemoveBibliography(),
            MinChars(self.config.min_chars),
        ]

    def read(self, path: str) -> Iterator[Document | Skipped]:
        if path.endswith(".tex"):
            yield from self._read_folder_file(path)
            return
        try:
            extracted = read_paper_archive(path, self.config.limits())
        except ArchiveError as e:
            raise InputError(path, e.problem) from None
        files, refused = extracted.files, extracted.refused
        for reason in refused:
            yield Skipped(reason)  # each refused member counted; the rest of the paper still goes on
        if not any(p.endswith(".tex") for p in files):
            # A submission without TeX (HTML pages, or figures alone): nothing to look for a main file in.
            yield Skipped("no_tex_files")
            return
        if list(files) == ["main.tex"] and files["main.tex"].startswith(b"%PDF-"):
            yield Skipped("pdf_only")  # arXiv serves a PDF-only submission's "source" as the gzipped PDF
            return
        # The paper's own packages (.sty) are read too: their notation macros are the paper's.
        decoded = {p: decode_utf8_or_latin1(d) for p, d in files.items() if p.endswith((".tex", ".sty"))}
        # A verbatim environment one file defines (a listing style in the preamble or a .sty) is
        # verbatim in every file: its `%` is text there too. A comment environment one defines
        # (\excludecomment{hide} in the preamble) hides its blocks in every file likewise.
        environments = paper_environments(decoded.values())
        texts = {p: strip_comments(t, environments) for p, t in decoded.items()}
        yield self._paper(arxiv_id(path), texts, environments)

    def _paper(self, paper_id: str, texts: dict[str, str], environments: Environments) -> Document | Skipped:
        main = pick_main({p: t for p, t in texts.items() if p.endswith(".tex")}, environments)
        if main is None:
            return Skipped("no_main_tex_file")
        try:
            text = assemble(texts[main], main, posixpath.dirname(main), texts.get, environments)
        except LatexError as e:
            return Skipped(e.reason)
        return Document(paper_id, text, self.name, {"arxiv_id": paper_id, "main_file": main})

    def _read_folder_file(self, path: str) -> Iterator[Document | Skipped]:
        """A `.tex` file in a folder of one paper: only a main file becomes a document; the
        others are read when it inlines them."""
        limits = self.config.limits()
        folder, name = path.rsplit("/", 1) if "/" in path else ("", path)
        fs, _, (base,) = fsspec.get_fs_token_paths(folder or ".")
        cache: dict[str, str | None] = {}

        def load(relative: str) -> str | None:
            if relative not in cache:
                full = f"{base.rstrip('/')}/{relative}"
                try:
                    info = fs.info(full)
                    too_large = info["size"] > limits.max_member_bytes
                    if info["type"] != "file" or too_large or passes_a_link(fs, base, relative):
                        cache[relative] = None
                    else:
                        with fs.open(full, "rb") as f:
                            cache[relative] = decode_utf8_or_latin1(f.read())
                except OSError:
                    cache[relative] = None
            return cache[relative]

        main_text = load(name)
        if main_text is None:
            raise InputError(path, f"unreadable or larger than {self.config.max_file_mb} MB")
        # The parts are read lazily: the verbatim and comment environments known are those the
        # main file defines.
        environments = paper_environments([main_text])
        main_text = strip_comments(main_text, environments)
        if not declares_class(main_text, environments)[0]:
            return  # a part of a paper, inlined by its main file
        paper_id = folder.rsplit("/", 1)[-1] or arxiv_id(name)
        try:
            text = assemble(main_text, name, "", load, environments)
        except LatexError as e:
            yield Skipped(e.reason)
            return
        yield Document(f"{paper_id}/{name}", text, self.name, {"arxiv_id": paper_id, "main_file": name})
