"""Licence detection from a licence file's text, and normalisation of licence names.

A licence is recognised by wording only its own text (or its standard notice) holds, in the
lower-cased, whitespace-collapsed text. Mentions of other licences inside a licence do not
count: GPL-3.0's section 13 names the GNU Affero General Public License, MPL-2.0 lists the GNU
licences as "Secondary Licenses", and GPL-2.0/3.0 end by pointing to the Lesser GPL. So a GNU
licence counts only by its title ("GNU Affero General Public License Version 3, 19 November
2007") or by the notice that applies it ("... General Public License as published by the Free
Software Foundation, either version 3 ..."), and the notice only in a file that holds no
licence text (a licence's own text quotes other licences' names and versions).
`SPDX-License-Identifier:` lines win over wording.

Some licences hold the wording of another: ZPL-2.1, Apache-1.1, OpenSSL, BSD-2-Clause-Patent
and BSD-3-Clause-Clear have BSD's "Redistribution and use in source and binary forms"; NCSA,
MIT-0, JSON and X11 MIT's "Permission is hereby granted, free of charge" (BSL-1.0 nearly: "to
any person or organization"); curl ISC's grant. Each of those is told by a sentence only it has
(its title, its patent grant, its advertising clause), and the MIT, ISC or BSD wording next to
that sentence is its own, not a second licence: a ZPL text is ZPL-2.1, never BSD-3-Clause. Only
MIT, BSD-2/3-Clause and Apache-2.0 pass the paper's filter, so a licence that merely resembles
one must not be reported as one.

A file can hold several licences (dual-licensed projects paste MIT and Apache-2.0 into one
LICENSE): `detect_licenses` returns them all in order of appearance, and `choose_license`
picks the one a user may take. Results are SPDX identifiers; `unknown` when nothing matches.
"""

from __future__ import annotations

import re
from bisect import bisect_left

UNKNOWN = "unknown"
PERMISSIVE = ("MIT", "BSD-2-Clause", "BSD-3-Clause", "Apache-2.0")  # the paper's Apache, BSD and MIT

# Names as BigQuery's github_repos.licenses table and GitHub's API spell them, lower-cased.
ALIASES = {
    "mit": "MIT",
    "expat": "MIT",
    "apache-2.0": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache2": "Apache-2.0",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause",
    "gpl-2.0": "GPL-2.0",
    "gpl-3.0": "GPL-3.0",
    "lgpl-2.0": "LGPL-2.0",
    "lgpl-2.1": "LGPL-2.1",
    "lgpl-3.0": "LGPL-3.0",
    "agpl-3.0": "AGPL-3.0",
    "mpl-1.1": "MPL-1.1",
    "mpl-2.0": "MPL-2.0",
    "epl-1.0": "EPL-1.0",
    "epl-2.0": "EPL-2.0",
    "isc": "ISC",
    "unlicense": "Unlicense",
    "cc0-1.0": "CC0-1.0",
    "artistic-2.0": "Artistic-2.0",
    "zpl-2.1": "ZPL-2.1",
    "psf-2.0": "PSF-2.0",
    "python-2.0": "PSF-2.0",
    "bsd-2-clause-patent": "BSD-2-Clause-Patent",
    "bsd-3-clause-clear": "BSD-3-Clause-Clear",
    "bsl-1.0": "BSL-1.0",
    "mit-0": "MIT-0",
    "0bsd": "0BSD",
    "ncsa": "NCSA",
}
_SPDX = re.compile(r"spdx-license-identifier:[ \t]*([^\n]*)")
_SPDX_ID = re.compile(r"[a-z0-9.+-]+")
_SPDX_OPERATORS = frozenset(["or", "and", "with"])
_PARENTHESES = ("(", ")")
AND = " AND "  # joins the licences of one choice that all apply ("GPL-3.0 AND MIT"), in a licence entry
MAX_SPDX_CHOICES = 64  # "(a OR b) AND (c OR d) AND ..." doubles its choices with each AND
_MONTH = "(?:january|february|march|april|may|june|july|august|september|october|november|december)"
_GNU = r"gnu (affero |lesser |library )?general public license"
# The title a GNU licence text starts with: "GNU GENERAL PUBLIC LICENSE Version 3, 29 June 2007".
_GNU_TITLE = re.compile(rf"{_GNU},?(?: \([a-z0-9.-]+\))? version (\d(?:\.\d)?),? (?:\d{{1,2}} )?{_MONTH}")
# The notice that applies one: "... under the terms of the GNU General Public License as published
# by the Free Software Foundation; either version 2 of the License ...".
_GNU_NOTICE = re.compile(
    rf"{_GNU},? (?:as published by the free software foundation[,;]? )?(?:either )?(?:version |v)(\d(?:\.\d)?)")
_GNU_IDS = {"": "GPL", "affero ": "AGPL", "lesser ": "LGPL", "library ": "LGPL"}

# Wording that only the licence's own text holds, each with its SPDX id ("{}" takes the version
# the pattern captures).
_WORDING = [
    (re.compile(r"apache license,? version 2\.0"), "Apache-2.0"),
    (re.compile(r"mozilla public license,?(?: -)? (?:version |v\.? ?)(1\.0|1\.1|2\.0)"), "MPL-{}"),
    (re.compile(r"eclipse public license,?(?: -)? (?:version |v\.? ?)?([12]\.0)"), "EPL-{}"),
    (re.compile(r"this is free and unencumbered software released into the public domain"), "Unlicense"),
    (re.compile(r"\bcc0 1\.0 universal"), "CC0-1.0"),
    (re.compile(r"python software foundation license,? version 2|\bpsf hereby grants licensee"), "PSF-2.0"),
    # Boost's grant is MIT's but "to any person or organization": not counted as MIT's (below).
    (re.compile(r"boost software license"), "BSL-1.0"),
]
# Wording other licences' texts hold too (see the module's docstring): MIT's grant (not Boost's
# "to any person or organization"), ISC's, and BSD's first line, whose clauses tell 2, 3 or 4.
_SHARED_WORDING = [
    (re.compile(r"permission is hereby granted, free of charge, to any(?! person or organization)"), "MIT"),
    (re.compile(r"permission to use, copy, modify, (?:and/or|and) distribute this software for any purpose "
                r"with or without fee is hereby granted, provided that the above copyright notice"), "ISC"),
    (re.compile(r"redistribution and use in source and binary forms"), "BSD"),
]
# Licences whose text holds shared wording, by a sentence only they have: (pattern, SPDX id,
# the shared wording their text holds, whether the sentence alone names the licence). A clause
# that some licences add to MIT or ISC (the advertising clause) names a licence only next to them.
_OWNING_WORDING = [
    (re.compile(r"zope public license \(zpl\) version 2\.1|does not give you the right to use servicemarks"),
     "ZPL-2.1", "BSD", True),
    (re.compile(r"apache (?:software )?license,? version (1\.[01])"), "Apache-{}", "BSD", True),
    (re.compile(r"the following acknowledge?ment: \W*this product includes software developed by the apache "
                r"software foundation"), "Apache-1.1", "BSD", True),
    (re.compile(r"for use in the openssl toolkit"), "OpenSSL", "BSD", True),
    (re.compile(r"each copyright holder and contributor hereby grants to those receiving rights under this "
                r"license"), "BSD-2-Clause-Patent", "BSD", True),
    (re.compile(r"no express or implied licenses to any party's patent rights are granted by this license"),
     "BSD-3-Clause-Clear", "BSD", True),
    (re.compile(r"in the design, construction, operation or maintenance of any nuclear facility"),
     "BSD-3-Clause-No-Nuclear-License", "BSD", True),
    (re.compile(r"university of illinois/ncsa open source license|to deal with the software without restriction"),
     "NCSA", "MIT", True),
    (re.compile(r"furnished to do so\. the software is provided"), "MIT-0", "MIT", False),
    (re.compile(r"the software shall be used for good, not evil"), "JSON", "MIT", False),
    (re.compile(r"except as contained in this notice, the name of"), "X11", "MIT", False),
    (re.compile(r"except as contained in this notice, the name of"), "curl", "ISC", False),
]
# Conditions that take away what the licence beside them grants: Apache-2.0 (or MIT) with the
# Commons Clause forbids selling the software, so the file's licence is no longer Apache-2.0.
_RESTRICTIONS = [(re.compile(r"commons clause\W*license condition"), "Commons-Clause")]
# How far (in characters of the flattened text) a licence's own sentence sits from the shared
# wording it owns: the longest of these texts (BSD-2-Clause-Patent, ZPL-2.1) is under 2,600.
_OWNING_REACH = 3_000
# A BSD text's clauses end at the disclaimer; which clauses it has tells 2, 3 or 4.
_BSD_DISCLAIMER = re.compile(r"this software is provided by|the software is provided")


def normalise_license_name(name: str | None) -> str:
    """A licence name from metadata (`mit`, `apache-2.0`, `GPL-3.0-only`) as an SPDX id."""
    if not isinstance(name, str) or not name.strip():
        return UNKNOWN
    key = name.strip().lower().removesuffix("-only").removesuffix("-or-later").removesuffix("+")
    return ALIASES.get(key, UNKNOWN)


def _gnu_id(family: str, version: str) -> str:
    kind = _GNU_IDS[family or ""]
    if family == "library ":
        version = "2.0"  # the Library GPL had one version; 2.1 renamed it Lesser
    elif "." not in version:
        version += ".0"
    return f"{kind}-{version}"


def _bsd_variant(text: str, start: int) -> str:
    end = _BSD_DISCLAIMER.search(text, start)
    clauses = text[start : end.start() if end else len(text)]
    if "all advertising materials" in clauses:
        return "BSD-4-Clause"
    # The third clause forbids using the authors' names to endorse derived products.
    if "endorse or promote" in clauses or "neither the name" in clauses:
        return "BSD-3-Clause"
    return "BSD-2-Clause"


def _spdx_id(template: str, match: re.Match[str]) -> str:
    """"MPL-{}" with the version the pattern captured ("MPL-2.0"); a fixed id as it is."""
    return template.format(match.group(1)) if "{}" in template else template


def _owned_wording(t: str) -> list[tuple[int, str]]:
    """The licences told by a sentence of their own that also hold shared wording (see
    `_OWNING_WORDING`), with the shared wording each owns; the rest is found as usual."""
    shared = [(m.start(), m.end(), kind) for pattern, kind in _SHARED_WORDING for m in pattern.finditer(t)]
    starts_by_kind = {kind: [start for start, _, k in shared if k == kind] for _, kind in _SHARED_WORDING}
    owned: set[int] = set()  # starts of shared wording that belongs to another licence
    found: list[tuple[int, str]] = []
    for pattern, template, kind, names_alone in _OWNING_WORDING:
        for m in pattern.finditer(t):
            mine = _nearest(starts_by_kind[kind], m.start())
            if mine is not None:
                owned.add(mine)
            if mine is not None or names_alone:
                found.append((m.start() if mine is None else min(m.start(), mine), _spdx_id(template, m)))
    for start, end, kind in shared:
        if start not in owned:
            found.append((start, _bsd_variant(t, end) if kind == "BSD" else kind))
    return found


def _nearest(starts: list[int], position: int) -> int | None:
    """The one of the sorted `starts` nearest to `position`, within `_OWNING_REACH`."""
    i = bisect_left(starts, position)
    near = [start for start in starts[max(i - 1, 0): i + 1] if abs(start - position) <= _OWNING_REACH]
    return min(near, key=lambda start: abs(start - position), default=None)


def detect_licenses(text: str) -> list[str]:
    """The SPDX ids of the licences this text holds, in order of appearance (may be empty)."""
    lower = text.lower()
    spdx = _SPDX.findall(lower)
    if spdx:  # "Apache-2.0 OR MIT", up to the end of the line or of its comment
        expressions = [re.split(r"\*/|-->", line)[0] for line in spdx]
        entries = [AND.join(dict.fromkeys(map(normalise_license_name, alternative)))
                   for e in expressions for alternative in spdx_alternatives(e)]
        return list(dict.fromkeys(x for x in entries if x != UNKNOWN)) or [UNKNOWN]
    t = " ".join(lower.split())
    found = [(m.start(), _gnu_id(m.group(1), m.group(2))) for m in _GNU_TITLE.finditer(t)]
    for pattern, template in _WORDING:
        found.extend((m.start(), _spdx_id(template, m)) for m in pattern.finditer(t))
    found.extend(_owned_wording(t))
    if not found:  # no licence text, perhaps the notice that applies a GNU licence
        found = [(m.start(), _gnu_id(m.group(1), m.group(2))) for m in _GNU_NOTICE.finditer(t)]
    restrictions = [(m.start(), spdx_id) for pattern, spdx_id in _RESTRICTIONS for m in pattern.finditer(t)]
    if restrictions:
        found = [(start, spdx_id) for start, spdx_id in found if spdx_id not in PERMISSIVE] + restrictions
    return list(dict.fromkeys(spdx_id for _, spdx_id in sorted(found)))


def choose_license(found: list[str], preferred: tuple[str, ...] = PERMISSIVE) -> str:
    """One licence of several a project offers (dual licensing lets users choose): the first of
    `preferred` offered, else the first known one, else `unknown`. An entry of licences that all
    apply ("GPL-3.0 AND MIT") is offered only when each of them is preferred."""
    for spdx_id in preferred:
        for entry in found:
            licences = entry.split(AND)
            if spdx_id in licences and all(x in preferred for x in licences):
                return entry
    known = [x for x in found if x != UNKNOWN]
    return known[0] if known else UNKNOWN


def spdx_alternatives(expression: str) -> list[tuple[str, ...]]:
    """The choices an SPDX expression (lower-cased) gives, each the ids of the licences that all
    apply: "(mit or apache-2.0) and bsd-3-clause" -> [(mit, bsd-3-clause), (apache-2.0,
    bsd-3-clause)]. WITH binds tightest and names an exception, which only widens its licence: the
    licence is what counts. One that does not parse (or whose choices pass MAX_SPDX_CHOICES) is
    taken at its word's worst: every id in it applies, so nothing unparsed lets code through."""
    tokens = re.findall(r"[()]|[a-z0-9.+-]+", expression)
    try:
        choices, end = _spdx_or(tokens, 0)
        if end == len(tokens) and len(choices) <= MAX_SPDX_CHOICES:
            return choices
    except (IndexError, ValueError, RecursionError):
        pass
    ids = tuple(t for t in tokens if t not in _SPDX_OPERATORS and t not in _PARENTHESES)
    return [ids] if ids else []


def _spdx_or(tokens: list[str], at: int) -> tuple[list[tuple[str, ...]], int]:
    choices, at = _spdx_and(tokens, at)
    while at < len(tokens) and tokens[at] == "or":
        more, at = _spdx_and(tokens, at + 1)
        choices = choices + more
    return choices, at


def _spdx_and(tokens: list[str], at: int) -> tuple[list[tuple[str, ...]], int]:
    choices, at = _spdx_term(tokens, at)
    while at < len(tokens) and tokens[at] == "and":
        right, at = _spdx_term(tokens, at + 1)
        choices = [left + more for left in choices for more in right]
        if len(choices) > MAX_SPDX_CHOICES:
            raise ValueError("too many choices")
    return choices, at


def _spdx_term(tokens: list[str], at: int) -> tuple[list[tuple[str, ...]], int]:
    if tokens[at] == "(":
        choices, at = _spdx_or(tokens, at + 1)
        if tokens[at] != ")":
            raise ValueError("unclosed parenthesis")
        at += 1
    elif tokens[at] in _SPDX_OPERATORS or tokens[at] in _PARENTHESES:
        raise ValueError(f"unexpected {tokens[at]}")
    else:
        choices, at = [(tokens[at],)], at + 1
    if at < len(tokens) and tokens[at] == "with":
        if at + 1 >= len(tokens) or tokens[at + 1] in _PARENTHESES or tokens[at + 1] in _SPDX_OPERATORS:
            raise ValueError("WITH names no exception")
        at += 2
    return choices, at


def detect_license(text: str, preferred: tuple[str, ...] = PERMISSIVE) -> str:
    """The SPDX id of the licence whose text this is (see `choose_license` for several), or `unknown`."""
    return choose_license(detect_licenses(text), preferred)


LICENSE_FILE_NAMES = ("license", "licence", "copying", "license-mit", "license-apache", "unlicense")


# What may follow a licence file's name: a text format or a variant (COPYING.LESSER, LICENSE.MIT),
# never a program's extension (license.py, copying.c are code).
CODE_SUFFIXES = frozenset(["py", "c", "h", "cc", "cpp", "hpp", "js", "ts", "go", "rs", "java", "rb", "php", "sh",
                           "pl", "cs", "swift", "kt", "scala", "lua", "r", "m", "jl", "ex", "hs", "ml", "json",
                           "yml", "yaml", "toml", "xml", "css", "scss", "ini", "cfg", "bat", "ps1"])


def is_license_file(name: str) -> bool:
    """LICENSE, LICENCE.txt, COPYING.md, COPYING.LESSER, license-mit ... (case does not matter);
    not a program that happens to be named so (license.py, copying.c)."""
    stem, _, suffix = name.lower().partition(".")
    return stem in LICENSE_FILE_NAMES and suffix.rsplit(".", 1)[-1] not in CODE_SUFFIXES
