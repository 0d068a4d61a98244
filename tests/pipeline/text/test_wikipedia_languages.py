"""The Wikipedia language codes: the site matrix's non-ISO codes are there, Wikimedia's other
interwiki prefixes (projects, not languages) are not."""

from __future__ import annotations

from pipeline.text.wikipedia_languages import WIKIPEDIA_LANGUAGE_CODES


def test_the_non_iso_codes_wikis_were_created_under_are_codes() -> None:
    hyphenated = {"be-x-old", "be-tarask", "zh-classical", "roa-rup", "roa-tara", "zh-min-nan", "map-bms",
                  "nds-nl", "bat-smg", "fiu-vro", "zh-yue", "cbk-zam"}
    assert hyphenated | {"simple", "en", "uk", "vi", "ceb", "war"} <= WIKIPEDIA_LANGUAGE_CODES


def test_wikimedia_project_prefixes_are_no_language_codes() -> None:
    projects = {"wikt", "wiktionary", "commons", "meta", "m", "species", "mw", "w", "wp", "s", "q", "n", "b", "v",
                "d", "c", "wikidata", "incubator", "outreach"}
    assert projects.isdisjoint(WIKIPEDIA_LANGUAGE_CODES)
    assert all(code == code.lower() and code.strip() == code for code in WIKIPEDIA_LANGUAGE_CODES)
