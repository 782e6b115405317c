"""Fixtures of the search tests: a fresh runtime (debug profile) and a store path."""

from __future__ import annotations

from pathlib import Path

import pytest
from search_helpers import DECL

import symbiont as sb


@pytest.fixture
def rt() -> sb.Runtime:
    return sb.Runtime(DECL, profile="debug")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"
