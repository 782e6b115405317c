"""No test folder is skipped silently: every test module on disk is collected.

pytest skips folders named like build output (``build``, ``dist``, ...) by default; a test
folder named so once hid seventeen tests. This compares the files on disk with what pytest
collects when run the way CI runs it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent


def uncollected(root: Path, *, cwd: Path) -> set[str]:
    """Test modules under ``root`` that ``pytest --collect-only`` (run from ``cwd``) skips."""
    on_disk = {p.relative_to(cwd).as_posix() for p in root.rglob("test_*.py")}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         str(root.relative_to(cwd))],
        cwd=cwd, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    collected = {line.split("::", 1)[0] for line in out.stdout.splitlines() if "::" in line}
    return on_disk - collected


def test_every_test_module_is_collected() -> None:
    assert uncollected(TESTS, cwd=TESTS.parent) == set()


def test_the_guard_sees_a_skipped_folder(tmp_path: Path) -> None:
    (tmp_path / "tests" / "build").mkdir(parents=True)
    (tmp_path / "tests" / "ok").mkdir()
    for folder in ("build", "ok"):
        (tmp_path / "tests" / folder / f"test_{folder}.py").write_text(
            "def test_x() -> None:\n    assert 1 + 1 == 2\n"
        )
    assert uncollected(tmp_path / "tests", cwd=tmp_path) == {"tests/build/test_build.py"}
