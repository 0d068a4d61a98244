"""xparse document commands: argument specs read, uses expanded with their branches chosen,
exact outputs written by hand from xparse's documented rules (usrguide: m, o, O{}, s)."""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline.text.latex_macros import collect_macros, expand_macros
from pipeline.text.latex_xparse import Argument, choose_branches, parse_spec


def expand(source: str) -> str:
    macros, text = collect_macros(source)
    return expand_macros(text, macros)


def test_specs_are_read_with_long_prefixes_and_spaces() -> None:
    assert parse_spec(" s O{a {b}} +m\n o ") == (Argument("s"), Argument("O", "a {b}"), Argument("m"), Argument("o"))
    assert parse_spec("") == ()
    assert [parse_spec(spec) for spec in ("r()", "m d()", "+", "O", "O{", "m" * 10)] == [None] * 6


def test_branches_are_chosen_by_the_arguments_given() -> None:
    body = "\\IfBooleanTF{#1}{star \\IfNoValueTF{#2}{none}{#2}}{plain}\\IfValueT{#2}{!}\\IfBooleanF {#1} {-}"
    assert [choose_branches(body, given) for given in [(True, False), (True, True), (False, True), (False, False)]] == [
        "star none", "star #2!", "plain!-", "plain-"]
    # A test of something else than an argument, or without its branches, stays as written.
    assert choose_branches("\\IfBooleanTF{\\x}{a}{b} \\IfBooleanT{#1}", (True,)) == "\\IfBooleanTF{\\x}{a}{b} \\IfBooleanT{#1}"


@pytest.mark.parametrize(
    "source, expected",
    [
        # m: mandatory, like \newcommand's arguments; the name braced or bare, spaces in the spec.
        ("\\NewDocumentCommand{\\pair}{ m m }{(#1,#2)}\\pair{a}{b}", "(a,b)"),
        ("\\NewDocumentCommand\\vect{+m}{\\mathbf{#1}}$\\vect v$", "$\\mathbf{v}$"),
        # o: optional without default, tested by \IfNoValueTF / \IfValueT; alone it stands for nothing.
        ("\\NewDocumentCommand{\\E}{o m}{\\mathbb{E}\\IfNoValueTF{#1}{}{_{#1}}[#2]}\\E{X} \\E[p]{X}",
         "\\mathbb{E}[X] \\mathbb{E}_{p}[X]"),
        ("\\NewDocumentCommand{\\f}{m o}{f(#1\\IfValueT{#2}{;#2})}\\f{x} \\f{x}[t]", "f(x) f(x;t)"),
        # O{default}: optional with a default, anywhere in the spec.
        ("\\NewDocumentCommand{\\norm}{O{2} m}{\\|#2\\|_{#1}}\\norm{x} \\norm[1]{y}", "\\|x\\|_{2} \\|y\\|_{1}"),
        # s: a star chooses \IfBooleanTF's first branch; T and F forms print one branch or nothing.
        ("\\NewDocumentCommand{\\abs}{s m}{\\IfBooleanTF{#1}{\\left|#2\\right|}{|#2|}}\\abs{x} \\abs*{y}",
         "|x| \\left|y\\right|"),
        ("\\NewDocumentCommand{\\t}{s}{\\IfBooleanT{#1}{star}\\IfBooleanF{#1}{plain}}\\t* \\t", "star plain"),
        # A body that does not test the star expands the same with or without it; without a star
        # (or an optional argument) the spaces after the use are the paper's, left as they are.
        ("\\NewDocumentCommand{\\ours}{s}{OurNet}\\ours and \\ours* is", "OurNet and OurNet is"),
        # Renew redefines, Provide defines only what is not yet defined, Declare always defines.
        ("\\newcommand{\\x}{a}\\RenewDocumentCommand{\\x}{}{b}\\ProvideDocumentCommand{\\x}{}{c}"
         "\\ProvideDocumentCommand{\\y}{}{d}\\DeclareDocumentCommand{\\y}{m}{e#1}\\x\\y{f}", "bef"),
        ("\\NewExpandableDocumentCommand{\\half}{m}{#1/2}\\half{n}", "n/2"),
    ],
)
def test_xparse_commands_expand_like_newcommand(source: str, expected: str) -> None:
    assert expand(source) == expected


@pytest.mark.parametrize("spec", ["r()", "d()", "v", "e{^_}", "g", "t+", "m >{\\Split}m", "!o m"])
def test_xparse_specs_not_read_stay_unexpanded_and_are_counted(spec: str) -> None:
    counted: Counter[str] = Counter()
    macros, text = collect_macros(f"\\NewDocumentCommand{{\\q}}{{{spec}}}{{Q#1}}Use \\q(x).", unsupported=counted)
    assert (expand_macros(text, macros), dict(counted)) == ("Use \\q(x).", {"unsupported_xparse_spec": 1})
