"""The paper's own packages (`.sty` files in the arXiv source, loaded with `\\usepackage`): their
notation macros, read with the package rules of `latex_macros.collect_macros`, written into the
paper's preamble as plain definitions, with the verbatim environments they define
(`latex_verbatim`)."""

from __future__ import annotations

import re
from collections.abc import Callable

from pipeline.text.latex import MAX_INPUT_DEPTH, resolve_input, strip_comments
from pipeline.text.latex_macros import collect_macros
from pipeline.text.latex_verbatim import Environments, environment_definitions, regions

USEPACKAGE = re.compile(r"\\(?:usepackage|RequirePackage)\s*(?:\[[^\]]*\])?\s*\{([^{}]*)\}")


def package_definitions(sty: str) -> str:
    """The notation macros of a package's text, as plain definitions (package rules of
    `collect_macros`), and the verbatim environments it defines (`latex_verbatim`): what a
    paper's `\\usepackage{own}` makes available to its text."""
    sty = strip_comments(sty)
    macros, _ = collect_macros(sty, package=True)
    listings = environment_definitions(regions(sty).environments.verbatim)
    return "".join(m.definition() for m in macros.values()) + listings


def inline_packages(text: str, base: str, load: Callable[[str], str | None],
                    environments: Environments = Environments()) -> str:
    """`text` with the notation macros of each local package it loads (`\\usepackage{a,b}` with
    a.sty in the paper, found relative to `base`) written after the \\usepackage command.
    A package loading another local package brings that one's macros too; each package once.
    `environments` names the verbatim environments the paper's other files define (a package's
    `\\lstnewenvironment{code}`): a \\usepackage shown in their listings loads nothing either."""
    seen: set[str] = set()

    def definitions(name: str, depth: int) -> str:
        path = resolve_input(base, name.strip(), ".sty")
        if path is None or path in seen or depth > MAX_INPUT_DEPTH:
            return ""
        sty = load(path)
        if sty is None:
            return ""
        seen.add(path)
        sty = strip_comments(sty)
        nested = "".join(definitions(n, depth + 1) for m in USEPACKAGE.finditer(sty) for n in m.group(1).split(","))
        return nested + package_definitions(sty)

    spans = regions(text, environments)

    def replace(match: re.Match[str]) -> str:
        if spans.verbatim_at(match.start()) is not None:
            return match.group(0)  # a preamble shown in a listing loads nothing
        return match.group(0) + "".join(definitions(n, 0) for n in match.group(1).split(","))

    return USEPACKAGE.sub(replace, text)
