"""Licence detection from characteristic phrases, and licence-name normalisation."""

from __future__ import annotations

import pytest

from pipeline.filters.licenses import detect_license, is_license_file, normalise_license_name
from sources.samples.github import LICENSES


@pytest.mark.parametrize("kind", sorted(LICENSES))
def test_sample_stand_ins_are_recognised(kind: str) -> None:
    assert detect_license(LICENSES[kind].format(year=2020, owner="X")) == kind


@pytest.mark.parametrize("text, expected", [
    ("Permission is hereby granted,\n   free of charge, to any person", "MIT"),
    ("Redistribution and use in source and binary forms ... endorse or promote products", "BSD-3-Clause"),
    ("Redistribution and use in source and binary forms, with or without modification", "BSD-2-Clause"),
    ("Redistribution and use in source and binary forms. All advertising materials must", "BSD-4-Clause"),
    ("Apache License\n Version 2.0, January 2004", "Apache-2.0"),
    ("GNU GENERAL PUBLIC LICENSE Version 2, June 1991", "GPL-2.0"),
    ("GNU GENERAL PUBLIC LICENSE Version 3, 29 June 2007", "GPL-3.0"),
    ("GNU LESSER GENERAL PUBLIC LICENSE Version 3 ... the GNU General Public License", "LGPL-3.0"),
    ("GNU AFFERO GENERAL PUBLIC LICENSE Version 3", "AGPL-3.0"),
    ("Mozilla Public License Version 2.0", "MPL-2.0"),
    ("This is free and unencumbered software released into the public domain.", "Unlicense"),
    ("SPDX-License-Identifier: Apache-2.0 OR MIT", "Apache-2.0"),
    ("All rights reserved. Do not copy.", "unknown"),
])
def test_detects_by_characteristic_phrases(text: str, expected: str) -> None:
    assert detect_license(text) == expected


def test_names_from_metadata_normalise_to_spdx() -> None:
    assert [normalise_license_name(n) for n in ("mit", "Apache-2.0", "bsd-3-clause", "GPL-3.0-only", "", None,
                                                "wtfpl")] == ["MIT", "Apache-2.0", "BSD-3-Clause", "GPL-3.0",
                                                              "unknown", "unknown", "unknown"]


def test_licence_file_names() -> None:
    assert all(map(is_license_file, ["LICENSE", "LICENCE.txt", "copying", "License.md", "LICENSE-MIT"]))
    assert not any(map(is_license_file, ["licenses.py", "README.md", "src"]))
