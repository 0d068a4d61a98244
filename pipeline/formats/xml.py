"""What every XML reader of raw dumps shares: the entity-expansion guard and lxml's safe settings.

Neither MediaWiki nor Stack Exchange dumps declare a DTD, so a DOCTYPE or ENTITY declaration
before the root element is refused outright: that is how a "billion laughs" file ends as one
counted failure instead of filling memory. lxml is also told never to resolve entities, load a
DTD or reach the network, and to keep its default depth and size limits (huge_tree off).
"""

from __future__ import annotations

SAFE_PARSER_OPTIONS = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False}


def declares_dtd(prologue: bytes) -> bool:
    """Whether the bytes before the root element declare a DTD or an entity."""
    upper = prologue.upper()
    return b"<!DOCTYPE" in upper or b"<!ENTITY" in upper
