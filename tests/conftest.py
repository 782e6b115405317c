"""Shared fixtures. Every test session builds into its own fresh cache directory, so nothing
from an earlier run (or another machine state) is reused by accident."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_SESSION_CACHE = Path(tempfile.mkdtemp(prefix="symbiont-tests-"))
os.environ["SYMBIONT_CACHE_DIR"] = str(_SESSION_CACHE)
# A developer's shell may export these; the tests must not talk to a real endpoint.
for _var in ("BASE_URL", "API_KEY", "MODEL", "SYMBIONT_AGENT_COMMAND", "RUST_BACKTRACE"):
    os.environ.pop(_var, None)


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return _SESSION_CACHE
