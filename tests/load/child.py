"""Running a scenario in a child interpreter, for tests whose failure mode is a crash of the
interpreter itself: a regression then fails the test instead of killing the test run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


def scenario(script: str, timeout: float = 180) -> str:
    """Runs ``script`` in a child interpreter; its stdout, once it exited cleanly."""
    try:
        child = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=os.environ.copy(),
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the scenario did not finish within {timeout} s: {exc.stdout!r}")
    assert child.returncode == 0, (
        f"the child died (exit {child.returncode}): {child.stdout[-800:]}\n{child.stderr[-1500:]}"
    )
    return child.stdout
