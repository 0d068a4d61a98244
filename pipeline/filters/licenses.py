"""Licence detection from a licence file's text, and normalisation of licence names.

Detection looks for each licence's characteristic phrases in the lower-cased,
whitespace-collapsed text, most specific first (a GPL text mentions no MIT phrase, but an
LGPL text does mention the GPL). An `SPDX-License-Identifier:` line wins over phrases.
Results are SPDX identifiers; `unknown` when nothing matches.
"""

from __future__ import annotations

import re

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
    "lgpl-2.1": "LGPL-2.1",
    "lgpl-3.0": "LGPL-3.0",
    "agpl-3.0": "AGPL-3.0",
    "mpl-2.0": "MPL-2.0",
    "epl-1.0": "EPL-1.0",
    "isc": "ISC",
    "unlicense": "Unlicense",
    "cc0-1.0": "CC0-1.0",
    "artistic-2.0": "Artistic-2.0",
}
_SPDX = re.compile(r"spdx-license-identifier:\s*([a-z0-9.+-]+)")


def normalise_license_name(name: str | None) -> str:
    """A licence name from metadata (`mit`, `apache-2.0`, `GPL-3.0-only`) as an SPDX id."""
    if not name:
        return UNKNOWN
    key = name.strip().lower().removesuffix("-only").removesuffix("-or-later").removesuffix("+")
    return ALIASES.get(key, UNKNOWN)


def _has(text: str, *phrases: str) -> bool:
    return all(p in text for p in phrases)


def detect_license(text: str) -> str:
    """The SPDX id of the licence whose text this is, or `unknown`."""
    t = " ".join(text.lower().split())
    spdx = _SPDX.search(t)
    if spdx:
        return normalise_license_name(spdx.group(1))
    if "gnu affero general public license" in t:
        return "AGPL-3.0"
    if "gnu lesser general public license" in t or "gnu library general public license" in t:
        return "LGPL-3.0" if "version 3" in t else "LGPL-2.1"
    if "gnu general public license" in t:
        return "GPL-3.0" if "version 3" in t else "GPL-2.0"
    if "mozilla public license" in t:
        return "MPL-2.0"
    if "eclipse public license" in t:
        return "EPL-1.0"
    if _has(t, "apache license", "version 2.0"):
        return "Apache-2.0"
    if "redistribution and use in source and binary forms" in t:
        if "all advertising materials" in t:
            return "BSD-4-Clause"
        # The third clause forbids using the authors' names to endorse derived products.
        if "endorse or promote" in t or "neither the name" in t:
            return "BSD-3-Clause"
        return "BSD-2-Clause"
    if _has(t, "permission is hereby granted, free of charge"):
        return "MIT"
    if _has(t, "permission to use, copy, modify, and/or distribute this software for any purpose"):
        return "ISC"
    if "free and unencumbered software released into the public domain" in t:
        return "Unlicense"
    return UNKNOWN


LICENSE_FILE_NAMES = ("license", "licence", "copying", "license-mit", "license-apache", "unlicense")


def is_license_file(name: str) -> bool:
    """LICENSE, LICENCE.txt, COPYING.md, license-mit ... (case does not matter)."""
    stem = name.lower().split(".", 1)[0]
    return stem in LICENSE_FILE_NAMES
