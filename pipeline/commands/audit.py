"""`pipeline audit wikipedia|arxiv|books`: markup left in a finished corpus, and prose of the
raw input missing from it.

    pipeline audit wikipedia --corpus data/corpus [--raw data/raw/wikipedia] [--max-residue 0.0]

Residue: patterns a clean document never holds, counted per document: wiki markup (`<ref`,
`{|`, `''`, `[[`, `{{`, `&nbsp;`, `thumb|`, orphaned "(;" and ", )", a line that opens with the
`fr:Paris` of an interlanguage link), LaTeX internals and
definitions for arXiv, and verbatim left unclosed (or an \\end left unopened: a cut made inside
a listing), all read outside the closed listings, which are the paper's text (and, with --raw,
every control word the paper itself defines in any form, \\newcommand to \\NewDocumentCommand,
plus control words that appear in no file of the paper: made by expansion), Gutenberg header and
licence markers and carriage returns for books. Inline TeX that the Wikipedia cleaner keeps on
purpose (`$...$`) is not counted as wiki markup.

Missing prose (with --raw): the raw input is read on its own terms, without the pipeline's
code (lxml over the XML dumps, plain line rules over wikitext, LaTeX and Gutenberg text), and
every plain prose paragraph of a document that is in the corpus must appear in it, whitespace
aside. A raw document absent from the corpus is counted on its own line (dropped on purpose:
a duplicate book, a language not selected, a redirect), not as missing prose.

Only the interpretation is the audit's own: the bytes come through the readers' bounded layer
with the source's default limits (pipeline/formats: archives.py's decompression, member and
size limits, mediawiki.py's DTD guard, files.py's size cap), so a decompression bomb, a hostile
archive or an entity bomb is refused or skipped with the very reason `pipeline run` records,
in bounded memory. Refused files are printed as `unreadable input: PATH: PROBLEM`, as a run
prints them, and counted in the raw line with the skipped archive members.

The corpus is read through `read_corpus`: every shard is checked against manifest.json (size,
sha256) before its documents are counted, and a damaged one is one line naming it, exit 2.

Prints a table; exits 1 when the share of documents with residue passes --max-residue or the
share of prose paragraphs missing passes --max-missing.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from pipeline.common.cli import READ_ONLY_HINT, path_arg
from pipeline.common.errors import InputError, UserError
from pipeline.common.files import check_regular_file
from pipeline.corpus.folder import corpus_folder
from pipeline.engine.document import Skipped
from pipeline.engine.registry import source_class
from pipeline.engine.shards import read_corpus
from pipeline.formats.archives import ArchiveError, PrefixedReader, read_zip
from pipeline.formats.arxiv import arxiv_id, read_paper_archive
from pipeline.formats.files import decode_utf8_or_latin1, read_capped
from pipeline.formats.mediawiki import DumpError, read_prolog
from pipeline.formats.multistream import open_dump
from pipeline.formats.xml import SAFE_PARSER_OPTIONS
from pipeline.text.wikipedia_languages import WIKIPEDIA_LANGUAGE_CODES

SOURCES = ("wikipedia", "arxiv", "books")
EXAMPLES = 3
MIN_PARAGRAPH_CHARS = 20


# --- residue patterns ------------------------------------------------------------------------

WIKI_RESIDUE = {
    "<ref": re.compile(r"<ref\b|</ref\s*>", re.IGNORECASE),
    "html tag": re.compile(r"</?(?:div|span|table|tr|td|th|small|big|center|br|sup|sub|poem|blockquote|font|"
                           r"gallery|references|nowiki|includeonly|noinclude|u|s|code|tt)\b[^<>]*>", re.IGNORECASE),
    "{|": re.compile(r"\{\|"),
    "|}": re.compile(r"\|\}"),
    "''": re.compile(r"''"),
    "[[": re.compile(r"\[\["),
    "]]": re.compile(r"\]\]"),
    "{{": re.compile(r"\{\{"),
    "}}": re.compile(r"\}\}"),
    "&entity;": re.compile(r"&(?:nbsp|ndash|mdash|amp|quot|lt|gt|thinsp|shy|#\d{2,6}|#x[0-9a-fA-F]{2,5});"),
    "thumb|": re.compile(r"(?:\b(?:thumb|thumbnail|frameless|upright|мініатюра|міні|nhỏ)|\d+px)\s*\|", re.IGNORECASE),
    "__MAGIC__": re.compile(r"__[A-ZА-Я]{3,}__"),
    "(; debris": re.compile(r"\(\s*[;,]"),
    ", ) debris": re.compile(r"[;,]\s*\)"),
    # Indentation markup left as text: a line opening with colons and then words (`: Soul and
    # body...`): MediaWiki shows none of them. Colons after a line's first word are prose.
    ": indent": re.compile(r"^:+[ \t]*+\S", re.MULTILINE),
    # What an interlanguage link left as text looks like: a line that is or starts with
    # `code:Title` ("fr:Paris"). Lower-case as editors write them; "SQL:2003" or "UA:Культура"
    # hold no Wikipedia's code, and "en: English" (a space after the colon) is prose. A line
    # opening with an inline `[[:fr:Paris]]` link is counted too: rare, and worth a look.
    "xx:Title": re.compile(rf"^(?:{'|'.join(map(re.escape, sorted(WIKIPEDIA_LANGUAGE_CODES)))}):[^\s:]",
                           re.MULTILINE),
}
WIKI_TEX = re.compile(r"\$[^$\n]+\$")  # formulas the cleaner keeps as `$TeX$`
# Verbatim as the audit reads it (not the pipeline's scanner): a listing environment closed by
# its own \end, or a \verb closed on its line. What a listing shows is the paper's text, never
# residue; what is left of one once the closed ones are set aside was opened and never closed,
# or closed and never opened: the trace of a cut made inside it.
VERBATIM_NAMES = r"(?:verbatim|Verbatim|BVerbatim|LVerbatim)\*?|lstlisting|minted|tcblisting"
LISTING_BEGIN = re.compile(r"\\begin\{(" + VERBATIM_NAMES + r")\}")
VERB = re.compile(r"\\(?:verb|Verb)\*?([!-)+-?\[\]^_`{-~])[^\n]*?\1")  # closed on its line
ARXIV_RESIDUE = {
    # `\Hy@raisedlink`, `\@ifnextchar`; not `\@` alone (LaTeX's end-of-sentence spacing, "e.g.\@ ").
    "\\@ internal": re.compile(r"\\(?:[A-Za-z]+@[A-Za-z@]*|@[A-Za-z][A-Za-z@]*)"),
    "definition left": re.compile(r"\\(?:(?:re)?newcommand|providecommand|DeclareMathOperator|"
                                  r"DeclarePairedDelimiter|DeclareRobustCommand|newenvironment|"
                                  r"(?:New|Renew|Provide|Declare)(?:Expandable)?DocumentCommand)\b|\\def\\"),
    "\\makeatletter": re.compile(r"\\makeat(?:letter|other)\b"),
    "verbatim unclosed": re.compile(r"\\(?:begin|end)\{(?:" + VERBATIM_NAMES + r")\}"
                                    r"|\\(?:verb|Verb)\*?[!-)+-?\[\]^_`{-~]"),
}
BOOKS_RESIDUE = {
    "\\r": re.compile(r"\r"),
    "*** START/END": re.compile(r"\*{3}[ \t]*(?:START|END) OF\b"),
    "Project Gutenberg": re.compile(r"project gutenberg", re.IGNORECASE),
    "small print": re.compile(r"\bsmall print\b|\*END\*", re.IGNORECASE),
    "gutenberg.org": re.compile(r"gutenberg\.(?:org|net)", re.IGNORECASE),
}
RESIDUE = {"wikipedia": WIKI_RESIDUE, "arxiv": ARXIV_RESIDUE, "books": BOOKS_RESIDUE}


def without_listings(text: str, mark: str = " ") -> str:
    """`text` with each closed listing (environment, then \\verb) replaced by `mark`. Linear: an
    environment found unclosed is not looked for again, and a \\verb is closed on its line."""
    pieces, pos, unclosed = [], 0, set()
    for begin in LISTING_BEGIN.finditer(text):
        name = begin.group(1)
        if begin.start() < pos or name in unclosed:
            continue
        end = text.find(f"\\end{{{name}}}", begin.end())
        if end < 0:
            unclosed.add(name)
            continue
        pieces += [text[pos : begin.start()], mark]
        pos = end + len(name) + len("\\end{}")
    pieces.append(text[pos:])
    return VERB.sub(lambda _: mark, "".join(pieces))  # the mark as it is, not a replacement template


def residue(source: str, text: str) -> Counter[str]:
    """Occurrences of each residue pattern of `source` in one document."""
    if source == "wikipedia":
        text = WIKI_TEX.sub(" ", text)
    elif source == "arxiv":
        text = without_listings(text)
    found: Counter[str] = Counter()
    for name, pattern in RESIDUE[source].items():
        count = len(pattern.findall(text))
        if count:
            found[name] = count
    return found


# --- raw prose, read without the pipeline ----------------------------------------------------

WIKI_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
WIKI_NONPROSE = re.compile(
    r"<(ref|math|gallery|timeline|imagemap|score|syntaxhighlight|source|chem|ce|graph|mapframe|templatestyles|"
    r"nowiki|pre|poem|references)\b[^>]*?(?:/>|>.*?(?:</\1\s*>|$))", re.DOTALL | re.IGNORECASE)
WIKI_BLOCK = re.compile(r"\{\{|\}\}|^\{\||^\|\}", re.MULTILINE)
WIKI_MARKUP = re.compile(r"[\[\]{}<>|&]|''|__|://|~~~")
WIKI_LINE_START = re.compile(r"^[ \t*#:;=!-]")
WIKI_DUMP = re.compile(r"^([a-z][a-z0-9_]*?)wiki-.*pages-articles.*\.xml(?:-p\d+p\d+)?(?:\.bz2)?$")


def wikitext_prose(wikitext: str) -> list[str]:
    """Lines of an article's wikitext that hold no markup at all, outside templates, tables,
    comments and refs: text the reader sees exactly as written."""
    text = WIKI_NONPROSE.sub("<>", WIKI_COMMENT.sub("", wikitext))
    kept, depth, start = [], 0, 0
    for match in WIKI_BLOCK.finditer(text):
        if depth == 0:
            kept.append(text[start:match.start()] + "{}")  # the line holding a block is not plain
        depth = depth + 1 if match.group() in ("{{", "{|") else max(depth - 1, 0)
        start = match.end()
    if depth == 0:
        kept.append(text[start:])
    lines = (line.strip() for line in "".join(kept).split("\n"))
    return [line for line in lines if len(line) >= MIN_PARAGRAPH_CHARS and not WIKI_LINE_START.match(line)
            and not WIKI_MARKUP.search(line) and not line.lower().startswith("#redirect")]


def wikipedia_raw(path: Path) -> Iterator[tuple[str, list[str]] | Skipped]:
    """(document id, prose paragraphs) of every main-namespace page of a dump; a dump cut short
    gives the pages before the cut. Opened as the source opens it and refused, as it is, when its
    prolog declares a DTD (InputError: dtd_not_allowed)."""
    match = WIKI_DUMP.match(path.name)
    if match is None:
        return
    lang = match.group(1).replace("_", "-")
    with open_dump(str(path)) as stream:
        try:
            head = read_prolog(stream)
        except DumpError as e:
            raise InputError(str(path), e.problem) from None
        checked = io.BufferedReader(PrefixedReader(head, stream))
        pages = etree.iterparse(checked, events=("end",), tag="{*}page", **SAFE_PARSER_OPTIONS)
        try:
            for _, page in pages:
                if page.findtext("{*}ns") == "0" and page.find("{*}redirect") is None:
                    text = page.findtext("{*}revision/{*}text") or ""
                    yield f"{lang}wiki/{(page.findtext('{*}id') or '').strip()}", wikitext_prose(text)
                page.clear()
        except (etree.XMLSyntaxError, EOFError, OSError):
            return


TEX_MARKUP = re.compile(r"[\\$%{}&~^_#\x00-\x08]")
# What expanding the paper's own definitions rightly writes: \DeclareMathOperator gives
# \operatorname, \DeclarePairedDelimiter gives \left ... \right.
EXPANSION_WORDS = {"operatorname", "left", "right", "middle", "mathopen", "mathclose", "relax", "ensuremath"}
TEX_SECTION = re.compile(r"\\(?:section|chapter)\*?\s*[\[{]")
TEX_BIBLIOGRAPHY = re.compile(r"\\begin\{thebibliography\}|\\bibliography\{|\\printbibliography")
# Every form of definition a paper writes: LaTeX's, TeX's (\def and its kin), amsmath's and
# mathtools', and xparse's document commands. Not \let: packages use it to patch LaTeX itself
# (`\let\uppercase` in a shipped .sty), and a patched LaTeX command in the text is no residue.
TEX_DEFINITION = re.compile(
    r"\\(?:(?:re)?newcommand|providecommand|DeclareRobustCommand|DeclareMathOperator|DeclarePairedDelimiter"
    r"(?:X|XPP)?|(?:New|Renew|Provide|Declare)(?:Expandable)?DocumentCommand)\*?\s*\{?\s*\\([A-Za-z]+)"
    r"|\\(?:g|e|x)?def\s*\\([A-Za-z]+)")
TEX_REFERENCE = re.compile(r"(?<!\{)\\(?:input|include\*?|(?:sub)?import\*?\s*\{[^}]*\})\s*\{([^}]+)\}")
TEX_REDEFINITION = re.compile(r"\\renewcommand\*?\s*\{?\s*\\([A-Za-z]+)")
LATEX_NAMES = {
    "part", "chapter", "section", "subsection", "subsubsection", "paragraph", "subparagraph", "appendix",
    "cite", "citep", "citet", "citealt", "citealp", "ref", "eqref", "label", "caption", "footnote", "url", "href",
    "left", "right", "tiny", "scriptsize", "footnotesize", "small", "normalsize", "large", "Large", "LARGE",
    "huge", "Huge", "emph", "textbf", "textit", "item", "maketitle", "title", "author", "thanks", "and", "date",
    "v", "ss", "vspace", "hspace", "newline", "linebreak", "par", "relax", "includegraphics", "bibliography",
}
TEX_CONTROL_WORD = re.compile(r"\\([A-Za-z]+)(?![A-Za-z@])")  # `\Hy@x` is an internal, counted apart


@dataclass
class Paper:
    prose: list[str]
    defined: set[str]  # control words the paper (its .tex and .sty files) defines
    control_words: set[str]  # every control word written anywhere in the paper


def latex_prose(tex: str) -> list[str]:
    """Plain lines of one .tex file between its first section and its bibliography."""
    tex = re.sub(r"(?<!\\)%.*", "", tex)
    section = TEX_SECTION.search(tex)
    if section is None and "\\begin{document}" in tex:
        return []  # a main file without sections: the recipe starts at the first section
    bibliography = TEX_BIBLIOGRAPHY.search(tex)
    body = tex[section.start() if section else 0: bibliography.start() if bibliography else len(tex)]
    lines = (line.strip() for line in body.split("\n"))
    return [line for line in lines if len(line) >= 2 * MIN_PARAGRAPH_CHARS and not TEX_MARKUP.search(line)]


def _paper_tex_files(files: dict[str, str]) -> list[str]:
    """The .tex files that make up the paper: the main file and those input. A file left in the
    archive unused, or input only as a macro's argument (`\\cut{\\input{x}}`), is not."""
    sources = {name: re.sub(r"(?<!\\)%.*", "", without_listings(tex, " \\relax "))
               for name, tex in files.items() if name.endswith(".tex")}
    referenced = {ref.strip().rsplit("/", 1)[-1].removesuffix(".tex")
                  for tex in sources.values() for ref in TEX_REFERENCE.findall(tex)}
    # Several documents in one archive (a paper and its supplement): the recipe takes the largest.
    mains = [name for name, tex in sources.items() if "\\begin{document}" in tex]
    main = max(mains, key=lambda name: len(sources[name]), default=None)
    return [name for name in sources
            if name == main or (name not in mains and name.rsplit("/", 1)[-1].removesuffix(".tex") in referenced)]


def arxiv_raw(path: Path) -> Iterator[tuple[str, Paper] | Skipped]:
    """The paper of one archive, its files read as the source reads them (`read_paper_archive`,
    the arxiv source's limits): a refused member is a Skipped with its reason, an archive refused
    whole (a decompression bomb, too many members) an InputError with the run's reason."""
    try:
        extracted = read_paper_archive(str(path), source_class("arxiv")().config.limits())
    except ArchiveError as e:
        raise InputError(str(path), e.problem) from None
    yield from (Skipped(reason) for reason in extracted.refused)
    files = {name: decode_utf8_or_latin1(data) for name, data in extracted.files.items()
             if name.endswith((".tex", ".sty"))}
    # A listing shows LaTeX that TeX does not act on: its \documentclass, \input, \bibliography and
    # \newcommand neither make a main file, nor input, nor end the prose, nor define.
    # A listing is set aside as a control word: a line holding one is not plain prose.
    read = {name: without_listings(text, " \\relax ") for name, text in files.items()}
    prose = [line for name in _paper_tex_files(files) for line in latex_prose(read[name])]
    everything = "\n".join(files.values())
    definitions = "\n".join(read.values())
    # A paper (or the conference .sty it ships) redefining \section or \cite is restyling
    # LaTeX, not a macro of its own: those stay in the text on purpose.
    redefined = set(TEX_REDEFINITION.findall(definitions)) | LATEX_NAMES
    defined = {a or b for a, b in TEX_DEFINITION.findall(definitions)} - redefined
    yield arxiv_id(str(path)), Paper(prose, defined, set(TEX_CONTROL_WORD.findall(everything)))


GUTENBERG_START = re.compile(r"^\*{3}\s*START OF.*$|\*END\*?\s*THE SMALL PRINT.*$", re.MULTILINE | re.IGNORECASE)
GUTENBERG_END = re.compile(r"^\*{3}\s*END OF.*$|^End of (?:the )?Project Gutenberg", re.MULTILINE | re.IGNORECASE)
BOILERPLATE = re.compile(r"gutenberg|small print|produced by|transcribed from|e-?text|etext", re.IGNORECASE)


def books_raw(path: Path) -> Iterator[tuple[str, list[str]] | Skipped]:
    """The prose of a Gutenberg .txt, or of each .txt in a zip of them, read within the books
    source's limits (a book past max_book_mb, a zip bomb: refused with the run's reason). Ids as
    the source makes them: `SUBCORPUS/NAME`, `SUBCORPUS/FILE.zip:MEMBER`."""
    config = source_class("books")().config
    if path.suffix != ".zip":
        data = read_capped(str(path), config.max_book_mb << 20)
        yield f"{path.parent.name}/{path.name.removesuffix('.txt')}", book_prose(decode_utf8_or_latin1(data))
        return
    try:
        with path.open("rb") as stream:
            extracted = read_zip(stream, config.limits())
    except ArchiveError as e:
        raise InputError(str(path), e.problem) from None
    yield from (Skipped(reason) for reason in extracted.refused)
    for member in sorted(extracted.files):
        if member.endswith(".txt"):
            yield (f"{path.parent.name}/{path.name}:{member.removesuffix('.txt')}",
                   book_prose(decode_utf8_or_latin1(extracted.files[member])))


def book_prose(text: str) -> list[str]:
    """Paragraphs of a book between its Gutenberg markers, boilerplate left out."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    start = GUTENBERG_START.search(text)
    text = text[start.end():] if start else text
    end = GUTENBERG_END.search(text)
    text = text[: end.start()] if end else text
    blocks = (" ".join(block.split()) for block in re.split(r"\n\s*\n", text))
    return [b for b in blocks if len(b) >= 2 * MIN_PARAGRAPH_CHARS and not BOILERPLATE.search(b)]


RAW_FILES: dict[str, tuple[tuple[str, ...], Callable[[Path], Iterator]]] = {
    "wikipedia": (("*wiki-*pages-articles*.xml*",), wikipedia_raw),
    "arxiv": (("*.tar.gz", "*.tgz", "*.tar", "*.gz"), arxiv_raw),
    "books": (("*.txt", "*.zip"), books_raw),
}


# --- the audit -------------------------------------------------------------------------------


@dataclass
class Audit:
    source: str
    documents: int = 0
    residue_ids: set[str] = field(default_factory=set)  # documents holding any residue
    occurrences: Counter[str] = field(default_factory=Counter)
    documents_with: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # pattern -> first document id
    raw_read: bool = False
    raw_documents: int = 0
    absent_documents: int = 0
    paragraphs: int = 0
    missing: int = 0
    missing_examples: list[tuple[str, str]] = field(default_factory=list)
    raw_unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, problem), as a run records them
    raw_skipped: Counter[str] = field(default_factory=Counter)  # archive members refused, by reason

    def add_residue(self, doc_id: str, found: Counter[str]) -> None:
        if not found:
            return
        self.residue_ids.add(doc_id)
        for name, count in found.items():
            self.occurrences[name] += count
            self.documents_with[name] += 1
            self.examples.setdefault(name, doc_id)

    @property
    def with_residue(self) -> int:
        return len(self.residue_ids)

    @property
    def residue_share(self) -> float:
        return self.with_residue / self.documents if self.documents else 0.0

    @property
    def missing_share(self) -> float:
        return self.missing / self.paragraphs if self.paragraphs else 0.0


def run_audit(source: str, corpus: Path, raw: Path | None = None) -> Audit:
    audit = Audit(source)
    texts: dict[str, str] = {}
    for doc in read_corpus(corpus_folder(corpus, source, same_source=False)):
        audit.documents += 1
        found = residue(source, doc.text)
        if raw is not None:
            texts[doc.id] = doc.text
        audit.add_residue(doc.id, found)
    if raw is not None:
        _audit_raw(audit, raw, texts)
    return audit


def _audit_raw(audit: Audit, raw: Path, texts: dict[str, str]) -> None:
    if not raw.exists():
        raise UserError(f"{raw}: raw input path does not exist")
    check_regular_file(raw, "a raw input file or folder", folder_ok=True)  # a FIFO or device: not read
    patterns, reader = RAW_FILES[audit.source]
    paths = [raw] if raw.is_file() else sorted({p for pattern in patterns for p in raw.rglob(pattern) if p.is_file()})
    audit.raw_read = True
    flattened: dict[str, str] = {}
    for path in paths:
        try:
            for read in reader(path):
                if isinstance(read, Skipped):
                    audit.raw_skipped[read.reason] += 1
                else:
                    _audit_raw_document(audit, *read, texts, flattened)
        except InputError as e:
            audit.raw_unreadable.append((e.path, e.problem))


def _audit_raw_document(audit: Audit, doc_id: str, item: list[str] | Paper, texts: dict[str, str],
                        flattened: dict[str, str]) -> None:
    audit.raw_documents += 1
    text = texts.get(doc_id)
    if text is None:
        audit.absent_documents += 1
        return
    if doc_id not in flattened:
        flattened[doc_id] = " ".join(text.split())
    prose = item.prose if isinstance(item, Paper) else item
    for paragraph in prose:
        audit.paragraphs += 1
        if " ".join(paragraph.split()) not in flattened[doc_id]:
            audit.missing += 1
            if len(audit.missing_examples) < EXAMPLES:
                audit.missing_examples.append((doc_id, paragraph))
    if isinstance(item, Paper):
        audit.add_residue(doc_id, _paper_residue(text, item))


def _paper_residue(text: str, paper: Paper) -> Counter[str]:
    """Control words in a paper's corpus text, outside verbatim, that the paper defines in any
    form (not expanded) or that appear nowhere in its files (made by expansion, like `\\gammaq`
    from `\\gamma\\idx`). A listing that shows a macro's name is the paper's text."""
    found: Counter[str] = Counter()
    for word in TEX_CONTROL_WORD.findall(without_listings(text)):
        if word in paper.defined:
            found["user macro left"] += 1
        elif word not in paper.control_words and word not in EXPANSION_WORDS:
            found["control word made"] += 1
    return found


def residue_names(source: str) -> list[str]:
    """The residue classes counted for a source, in the order reports list them."""
    return list(RESIDUE[source]) + (["user macro left", "control word made"] if source == "arxiv" else [])


def format_audit(audit: Audit) -> str:
    names = residue_names(audit.source)
    width = max(len(n) for n in names) + 2
    lines = [(f"{audit.source}: {audit.documents:,} documents, {audit.with_residue:,} with residue "
              f"({audit.residue_share:.2%})"), f"{'residue':<{width}}{'documents':>10}{'occurrences':>13}  example"]
    for name in names:
        lines.append(f"{name:<{width}}{audit.documents_with[name]:>10,}{audit.occurrences[name]:>13,}  "
                     f"{audit.examples.get(name, '')}")
    if audit.raw_read:
        lines.append(f"raw: {audit.raw_documents:,} documents, {audit.absent_documents:,} not in the corpus; "
                     f"prose paragraphs of the rest: {audit.paragraphs:,}, missing {audit.missing:,} "
                     f"({audit.missing_share:.2%})")
        for doc_id, paragraph in audit.missing_examples:
            lines.append(f"  missing from {doc_id}: {paragraph[:100]!r}")
        if audit.raw_unreadable or audit.raw_skipped:
            skipped = ", ".join(f"{reason} {count:,}" for reason, count in sorted(audit.raw_skipped.items()))
            lines.append(f"raw: {len(audit.raw_unreadable):,} file(s) unreadable; archive members skipped: "
                         f"{skipped or 'none'}")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", choices=["wikipedia", "arxiv", "books"])
    p.add_argument("--corpus", type=path_arg, default="data/corpus", metavar="DIR",
                   help="corpus root or the source's folder (default %(default)s)")
    p.add_argument("--raw", type=path_arg, metavar="PATH",
                   help="the raw input it was built from: also count its prose paragraphs missing")
    p.add_argument("--max-residue", type=float, default=0.0,
                   help="largest share of documents with residue that passes (default %(default)s)")
    p.add_argument("--max-missing", type=float, default=0.0,
                   help="largest share of raw prose paragraphs missing that passes (default %(default)s)")


RERUN_HINT = READ_ONLY_HINT


def run(args: argparse.Namespace) -> None:
    if not (0 <= args.max_residue <= 1 and 0 <= args.max_missing <= 1):  # NaN fails: it passed every audit
        raise UserError("--max-residue and --max-missing are shares: from 0 to 1")
    audit = run_audit(args.source, Path(args.corpus), Path(args.raw) if args.raw else None)
    print(format_audit(audit))
    for path, problem in audit.raw_unreadable:  # as `pipeline run` prints the inputs it could not read
        print(f"  unreadable input: {path}: {problem}", file=sys.stderr)
    failures = []
    if audit.residue_share > args.max_residue:
        failures.append(f"residue in {audit.residue_share:.2%} of documents (--max-residue {args.max_residue})")
    if audit.missing_share > args.max_missing:
        failures.append(f"{audit.missing_share:.2%} of prose paragraphs missing (--max-missing {args.max_missing})")
    if failures:
        print(f"audit failed: {'; '.join(failures)}", file=sys.stderr)
        sys.exit(1)
