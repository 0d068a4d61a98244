"""Licence detection on the official licence texts, and licence-name normalisation.

The official texts are read where this machine has them, never copied into the repository:
Debian's /usr/share/common-licenses, the licence files installed packages ship in their
dist-info folders, the templates of the `lice` package (test extra: it ships AGPL-3.0, ISC,
MIT and the Apache notice), and the licence stanzas of Debian copyright files (Unlicense, ZPL-2.1,
EPL-1.0, BSL-1.0, X11, curl, OpenSSL, BSD-4-Clause). A test whose text is absent here is skipped
and says which text and where it was looked for. Licences installed nowhere (BSD-2-Clause-Patent,
NCSA, MIT-0, JSON, EPL-2.0) are told by their distinguishing sentences, typed by hand.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.text.licenses import (
    choose_license,
    detect_license,
    detect_licenses,
    is_license_file,
    normalise_license_name,
    spdx_alternatives,
)
from sources.samples.github import LICENSES
from tests.installed_licences import installed_licence

COMMON_LICENSES = Path("/usr/share/common-licenses")


def common(name: str) -> Callable[[], str]:
    def read() -> str:
        path = COMMON_LICENSES / name
        if not path.is_file():
            pytest.skip(f"{path} absent (Debian's base-files ships it)")
        return path.read_text()
    return read


def lice(template: str) -> Callable[[], str]:
    def read() -> str:
        module = pytest.importorskip("lice", reason="the `lice` package (test extra) ships the official texts")
        path = Path(module.__file__).parent / f"template-{template}.txt"
        # lice's own placeholders, filled as `lice` fills them.
        return path.read_text().replace("{{ year }}", "2021").replace("{{ organization }}", "Example Authors")
    return read


def dist_info(distribution: str, name: str) -> Callable[[], str]:
    return lambda: installed_licence(distribution, name).read_text()


def debian_copyright_stanza(license_name: str) -> Callable[[], str]:
    """A licence's text from a Debian machine-readable copyright file (indented, '.' for blank lines):
    the first stanza of that name long enough to be the text, not a pointer to common-licenses."""
    def read() -> str:
        for path in sorted(glob.glob("/usr/share/doc/*/copyright")):
            text = Path(path).read_text(errors="replace")
            for stanza in re.finditer(rf"^License: {re.escape(license_name)}\n((?:[ \t].*\n)+)", text, re.MULTILINE):
                if stanza.group(1).count("\n") >= 8:
                    return "\n".join("" if line.strip() == "." else line[1:]
                                     for line in stanza.group(1).splitlines())
        pytest.skip(f"no /usr/share/doc/*/copyright holds the {license_name} text")
    return read


OFFICIAL_TEXTS = {
    "MIT (lice)": ("MIT", lice("mit")),
    "MIT (setuptools)": ("MIT", dist_info("setuptools", "LICENSE")),
    "BSD-2-Clause (lice)": ("BSD-2-Clause", lice("bsd2")),
    "BSD-2-Clause (xxhash)": ("BSD-2-Clause", dist_info("xxhash", "LICENSE")),
    "BSD-3-Clause (lice)": ("BSD-3-Clause", lice("bsd3")),
    "BSD-3-Clause (Debian)": ("BSD-3-Clause", common("BSD")),
    "BSD-3-Clause (lxml)": ("BSD-3-Clause", dist_info("lxml", "LICENSE.txt")),
    "Apache-2.0 (Debian)": ("Apache-2.0", common("Apache-2.0")),
    "Apache-2.0 (requests)": ("Apache-2.0", dist_info("requests", "LICENSE")),
    "Apache-2.0 notice header": ("Apache-2.0", lice("apache-header")),
    "GPL-2.0 (Debian)": ("GPL-2.0", common("GPL-2")),
    "GPL-2.0 (lice)": ("GPL-2.0", lice("gpl2")),
    "GPL-2.0 notice header": ("GPL-2.0", lice("gpl2-header")),
    "GPL-3.0 (Debian)": ("GPL-3.0", common("GPL-3")),
    "GPL-3.0 (lice)": ("GPL-3.0", lice("gpl3")),
    "GPL-3.0 notice header": ("GPL-3.0", lice("gpl3-header")),
    "LGPL-2.1 (Debian)": ("LGPL-2.1", common("LGPL-2.1")),
    "LGPL-2.0 (Debian)": ("LGPL-2.0", common("LGPL-2")),
    "LGPL-3.0 (Debian)": ("LGPL-3.0", common("LGPL-3")),
    "LGPL-3.0 (lice)": ("LGPL-3.0", lice("lgpl")),
    "AGPL-3.0 (lice)": ("AGPL-3.0", lice("agpl3")),
    "AGPL-3.0 notice header": ("AGPL-3.0", lice("agpl3-header")),
    "MPL-2.0 (Debian)": ("MPL-2.0", common("MPL-2.0")),
    "MPL-2.0 (lice)": ("MPL-2.0", lice("mpl")),
    "MPL-2.0 notice header": ("MPL-2.0", lice("mpl-header")),
    "ISC (lice)": ("ISC", lice("isc")),
    "ISC (shellingham)": ("ISC", dist_info("shellingham", "LICENSE")),
    "Unlicense (Debian copyright)": ("Unlicense", debian_copyright_stanza("Unlicense")),
    # Licences that are none of the four the paper keeps, several holding MIT's, ISC's or BSD's
    # wording: each is reported as itself, never as MIT, BSD or Apache-2.0.
    "ZPL-2.1 (Debian copyright)": ("ZPL-2.1", debian_copyright_stanza("ZPL-2.1")),
    "PSF-2.0 (typing_extensions)": ("PSF-2.0", dist_info("typing_extensions", "LICENSE")),
    "PSF-2.0 (aiohappyeyeballs)": ("PSF-2.0", dist_info("aiohappyeyeballs", "LICENSE")),
    "MPL-1.1 (Debian)": ("MPL-1.1", common("MPL-1.1")),
    "MPL-2.0 (certifi)": ("MPL-2.0", dist_info("certifi", "LICENSE")),
    "LGPL-2.1 (multivolumefile)": ("LGPL-2.1", dist_info("multivolumefile", "LICENSE")),
    "EPL-1.0 (Debian copyright)": ("EPL-1.0", debian_copyright_stanza("EPL-1.0")),
    "CC0-1.0 (Debian)": ("CC0-1.0", common("CC0-1.0")),
    "BSD-4-Clause (Debian copyright)": ("BSD-4-Clause", debian_copyright_stanza("BSD-4-clause")),
    "BSL-1.0 (Debian copyright)": ("BSL-1.0", debian_copyright_stanza("BSL-1.0")),
    "X11 (Debian copyright)": ("X11", debian_copyright_stanza("X11")),
    "curl (Debian copyright)": ("curl", debian_copyright_stanza("curl")),
    "OpenSSL (Debian copyright)": ("OpenSSL", debian_copyright_stanza("OpenSSL")),
}


@pytest.mark.parametrize("name", sorted(OFFICIAL_TEXTS))
def test_official_licence_texts_are_recognised(name: str) -> None:
    expected, read = OFFICIAL_TEXTS[name]
    text = read()
    # The text alone, and as a repository's LICENSE holds it: under a copyright line.
    assert detect_licenses(text) == [expected]
    assert detect_license(f"Copyright (c) 2021 Example Authors\n\n{text}") == expected


# Licences installed nowhere here, by the sentences that tell them apart (typed by hand: short
# phrases of each licence, with the MIT, ISC or BSD wording the licence holds).
BSD_CLAUSES = ("Redistribution and use in source and binary forms, with or without modification, are permitted "
               "provided that the following conditions are met: 1. Redistributions of source code must retain the "
               "above copyright notice. 2. Redistributions in binary form must reproduce the above copyright notice.")
MIT_GRANT = ("Permission is hereby granted, free of charge, to any person obtaining a copy of this software and "
             "associated documentation files (the \"Software\"), to deal in the Software without restriction, "
             "subject to the following conditions: The above copyright notice and this permission notice shall be "
             "included in all copies or substantial portions of the Software.")


@pytest.mark.parametrize("text, expected", [
    (f"Zope Public License (ZPL) Version 2.1\n{BSD_CLAUSES} 3. Names of the copyright holders must not be used "
     "to endorse or promote products derived from this software.", "ZPL-2.1"),
    (f"{BSD_CLAUSES}\nSubject to the terms and conditions of this license, each copyright holder and contributor "
     "hereby grants to those receiving rights under this license a perpetual, worldwide, non-exclusive, no-charge, "
     "royalty-free, irrevocable patent license.", "BSD-2-Clause-Patent"),
    (f"{BSD_CLAUSES} 3. Neither the name of the copyright holder nor the names of its contributors may be used to "
     "endorse or promote products.\nNO EXPRESS OR IMPLIED LICENSES TO ANY PARTY'S PATENT RIGHTS ARE GRANTED BY "
     "THIS LICENSE.", "BSD-3-Clause-Clear"),
    (f"The Apache Software License, Version 1.1\n{BSD_CLAUSES} 3. The end-user documentation included with the "
     "redistribution, if any, must include the following acknowledgment: \"This product includes software "
     "developed by the Apache Software Foundation (http://www.apache.org/).\" 4. The names \"Apache\" must not "
     "be used to endorse or promote products derived from this software.", "Apache-1.1"),
    ("Eclipse Public License - v 2.0\nTHE ACCOMPANYING PROGRAM IS PROVIDED UNDER THE TERMS OF THIS ECLIPSE PUBLIC "
     "LICENSE (\"AGREEMENT\").", "EPL-2.0"),
    ("University of Illinois/NCSA Open Source License\nPermission is hereby granted, free of charge, to any person "
     "obtaining a copy of this software and associated documentation files (the \"Software\"), to deal with the "
     "Software without restriction. Neither the names of the developers may be used to endorse or promote "
     "products.", "NCSA"),
    ("Permission is hereby granted, free of charge, to any person obtaining a copy of this software, to deal in "
     "the Software without restriction, and to permit persons to whom the Software is furnished to do so.\n\n"
     "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND.", "MIT-0"),
    (f"{MIT_GRANT}\nThe Software shall be used for Good, not Evil.", "JSON"),
    (f"{BSD_CLAUSES}\nYou acknowledge that this software is not designed, licensed or intended for use in the "
     "design, construction, operation or maintenance of any nuclear facility.", "BSD-3-Clause-No-Nuclear-License"),
    # Apache-2.0 with the Commons Clause forbids selling: no longer Apache-2.0.
    ("\"Commons Clause\" License Condition v1.0\nThe Software is provided to you by the Licensor under the "
     "License, as defined below, subject to the following condition.\nLicense: Apache License, Version 2.0",
     "Commons-Clause"),
    ("This is free and unencumbered software released into the public domain.", "Unlicense"),
])
def test_licences_holding_permissive_wording_are_told_apart(text: str, expected: str) -> None:
    assert detect_licenses(text) == [expected]
    assert detect_license(text) == expected  # the permissive wording inside is not a second licence to choose


def test_permissive_wording_beside_another_licence_of_its_own_kind_is_kept() -> None:
    # A ZPL text owns BSD wording, not MIT's: a project offering both keeps its MIT option.
    zpl = f"Zope Public License (ZPL) Version 2.1\n{BSD_CLAUSES}"
    assert detect_licenses(f"{zpl}\n\n{MIT_GRANT}") == ["ZPL-2.1", "MIT"]
    assert detect_license(f"{zpl}\n\n{MIT_GRANT}") == "MIT"
    # The X11 advertising clause makes MIT's grant X11's only when MIT's grant is there.
    advertising = "Except as contained in this notice, the name of a copyright holder shall not be used in advertising."
    assert detect_licenses(f"{MIT_GRANT}\n{advertising}") == ["X11"]
    assert detect_licenses(advertising) == []


def test_gpl3_is_reported_as_gpl3_not_agpl() -> None:
    """GPL-3.0's section 13 names the GNU Affero GPL, and it ends pointing to the Lesser GPL."""
    text = common("GPL-3")()
    flat = " ".join(text.split())
    assert "GNU Affero General Public License" in flat and "GNU Lesser General Public License" in flat
    assert detect_license(text) == "GPL-3.0"
    assert detect_license(text, preferred=("GPL-3.0",)) == "GPL-3.0"


def test_mpl2_lists_gnu_licences_as_secondary_but_is_mpl2() -> None:
    text = common("MPL-2.0")()
    assert "GNU Affero General Public License, Version 3.0" in " ".join(text.split())
    assert detect_licenses(text) == ["MPL-2.0"]


def test_dual_licensed_files_offer_both_licences() -> None:
    # Two official texts pasted into one LICENSE, as dual-licensed projects do.
    mit, apache = lice("mit")(), common("Apache-2.0")()
    assert detect_licenses(f"{mit}\n\n----\n\n{apache}") == ["MIT", "Apache-2.0"]
    assert detect_licenses(f"{apache}\n\n{mit}") == ["Apache-2.0", "MIT"]
    gpl, bsd = common("GPL-2")(), lice("bsd3")()
    assert detect_licenses(f"{gpl}\n{bsd}") == ["GPL-2.0", "BSD-3-Clause"]
    # The user may take either: an allowed one is chosen, whatever the order of the texts.
    assert detect_license(f"{gpl}\n{bsd}") == "BSD-3-Clause"
    assert detect_license(f"{gpl}\n{bsd}", preferred=("GPL-2.0",)) == "GPL-2.0"
    assert detect_license(f"{apache}\n\n{mit}", preferred=("Apache-2.0",)) == "Apache-2.0"


def test_a_real_dual_licence_file() -> None:
    # pandas ships packaging's licence as one file holding both the Apache and BSD texts.
    text = dist_info("pandas", "PACKAGING_LICENSE")()
    assert detect_licenses(text) == ["Apache-2.0", "BSD-2-Clause"]


@pytest.mark.parametrize("kind", sorted(LICENSES))
def test_sample_stand_ins_are_recognised(kind: str) -> None:
    assert detect_license(LICENSES[kind].format(year=2020, owner="X")) == kind


@pytest.mark.parametrize("text, expected", [
    ("Permission is hereby granted,\n   free of charge, to any person", ["MIT"]),
    ("Redistribution and use in source and binary forms ... Neither the name of the copyright holder", ["BSD-3-Clause"]),
    ("Redistribution and use in source and binary forms, with or without modification", ["BSD-2-Clause"]),
    ("Redistribution and use in source and binary forms. All advertising materials must", ["BSD-4-Clause"]),
    ("Apache License\n Version 2.0, January 2004", ["Apache-2.0"]),
    ("GNU GENERAL PUBLIC LICENSE\n  Version 2, June 1991", ["GPL-2.0"]),
    ("GNU GENERAL PUBLIC LICENSE\n  Version 3, 29 June 2007", ["GPL-3.0"]),
    ("GNU AFFERO GENERAL PUBLIC LICENSE\n  Version 3, 19 November 2007", ["AGPL-3.0"]),
    # Other licences a licence names do not count: GPL-3.0's section 13, GPL-2.0's last lines,
    # MPL-2.0's "Secondary Licenses".
    ("GNU GENERAL PUBLIC LICENSE Version 3, 29 June 2007 ... 13. Use with the GNU Affero General Public "
     "License. ... version 3 of the GNU Affero General Public License into a single combined work", ["GPL-3.0"]),
    ("GNU GENERAL PUBLIC LICENSE Version 2, June 1991 ... use the GNU Lesser General Public License instead",
     ["GPL-2.0"]),
    ("Mozilla Public License Version 2.0 ... means either the GNU General Public License, Version 2.0, the GNU "
     "Lesser General Public License, Version 2.1, the GNU Affero General Public License, Version 3.0", ["MPL-2.0"]),
    ("it under the terms of the GNU Affero General Public License as published by the Free Software Foundation, "
     "either version 3 of the License", ["AGPL-3.0"]),
    ("licensed under the GNU General Public License v3.0", ["GPL-3.0"]),
    ("Mozilla Public License Version 2.0", ["MPL-2.0"]),
    ("This is free and unencumbered software released into the public domain.", ["Unlicense"]),
    ("# SPDX-License-Identifier: Apache-2.0 OR MIT\nimport os", ["Apache-2.0", "MIT"]),
    ("/* SPDX-License-Identifier: GPL-2.0-only */", ["GPL-2.0"]),
    ("All rights reserved. Do not copy.", []),
])
def test_detects_by_characteristic_phrases(text: str, expected: list[str]) -> None:
    assert detect_licenses(text) == expected


def test_choice_among_several() -> None:
    assert choose_license(["GPL-2.0", "MIT"]) == "MIT"
    assert choose_license(["GPL-2.0", "unknown"]) == "GPL-2.0"
    assert choose_license([]) == "unknown"


def test_names_from_metadata_normalise_to_spdx() -> None:
    assert [normalise_license_name(n) for n in ("mit", "Apache-2.0", "bsd-3-clause", "GPL-3.0-only", "", None,
                                                "wtfpl")] == ["MIT", "Apache-2.0", "BSD-3-Clause", "GPL-3.0",
                                                              "unknown", "unknown", "unknown"]
    # GitHub's keys of licences that resemble the permissive four stay themselves.
    assert [normalise_license_name(n) for n in ("zpl-2.1", "bsd-2-clause-patent", "bsd-3-clause-clear", "mit-0",
                                                "bsl-1.0", "mpl-1.1", "epl-2.0", "ncsa")] == [
        "ZPL-2.1", "BSD-2-Clause-Patent", "BSD-3-Clause-Clear", "MIT-0", "BSL-1.0", "MPL-1.1", "EPL-2.0", "NCSA"]
    assert normalise_license_name(["mit"]) == "unknown" and normalise_license_name(3) == "unknown"  # type: ignore[arg-type]


def test_licence_file_names() -> None:
    assert all(map(is_license_file, ["LICENSE", "LICENCE.txt", "copying", "License.md", "LICENSE-MIT",
                                     "LICENSE.APACHE", "COPYING.LESSER", "LICENSE.Apache-2.0"]))
    # A program named so is code, under the repository's licence, never the licence itself.
    assert not any(map(is_license_file, ["licenses.py", "README.md", "src", "license.py", "copying.c",
                                         "LICENSE.json", "licence.sh"]))


@pytest.mark.parametrize(("expression", "choices"), [
    ("gpl-3.0-only and mit", [("gpl-3.0-only", "mit")]),  # both apply: no choice
    ("apache-2.0 or mit", [("apache-2.0",), ("mit",)]),
    ("(mit or apache-2.0) and bsd-3-clause", [("mit", "bsd-3-clause"), ("apache-2.0", "bsd-3-clause")]),
    ("mit or gpl-3.0 and bsd-2-clause", [("mit",), ("gpl-3.0", "bsd-2-clause")]),  # AND binds tighter
    ("gpl-2.0 with classpath-exception-2.0", [("gpl-2.0",)]),  # an exception widens its licence only
    ("(mit or gpl-3.0", [("mit", "gpl-3.0")]),  # unparsed: every id applies
    ("mit or", [("mit",)]),
    (" and ".join(f"(a{i} or b{i})" for i in range(10)), [tuple(f"{x}{i}" for i in range(10) for x in "ab")]),
])
def test_spdx_expressions_give_their_choices(expression: str, choices: list[tuple[str, ...]]) -> None:
    assert spdx_alternatives(expression) == choices


def test_licences_that_all_apply_pass_only_when_each_is_allowed() -> None:
    assert detect_licenses("// SPDX-License-Identifier: GPL-3.0-only AND MIT") == ["GPL-3.0 AND MIT"]
    assert choose_license(["GPL-3.0 AND MIT"]) == "GPL-3.0 AND MIT"  # not MIT: GPL-3.0 applies too
    assert choose_license(["GPL-3.0 AND MIT", "Apache-2.0"]) == "Apache-2.0"
    assert choose_license(["MIT AND Apache-2.0"]) == "MIT AND Apache-2.0"
    assert detect_licenses("SPDX-License-Identifier: (MIT OR GPL-2.0) AND Apache-2.0") == [
        "MIT AND Apache-2.0", "GPL-2.0 AND Apache-2.0"]
