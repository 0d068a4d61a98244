"""Shared fixtures: the repository root and the installed console scripts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def repo() -> Path:
    return REPO


def script(name: str) -> str:
    """Path of an installed console script (pipeline, tokenizer, train) beside this Python."""
    path = BIN / name
    assert path.exists(), f"{path} missing: run ./install.sh"
    return str(path)


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env
