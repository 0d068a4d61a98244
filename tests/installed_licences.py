"""Real licence texts for tests: the licence files installed packages ship in their dist-info."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest


def installed_licence(distribution: str, name: str) -> Path:
    """`distribution`'s dist-info file `name` (its LICENSE and the like); skips the test when the
    package is not installed or ships no such file."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{distribution} is not installed (its dist-info holds the licence files)")
    for file in files:
        if ".dist-info/" in str(file) and str(file).endswith(f"/{name}"):
            return Path(file.locate())
    pytest.skip(f"{distribution}'s dist-info has no {name}")
