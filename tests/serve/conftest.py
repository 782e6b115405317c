"""Fixtures of the `symbiont serve` tests: one finished scripted run shared by the module."""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_helpers import scripted_run

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "runs.db"
    scripted_run(path)
    return path
