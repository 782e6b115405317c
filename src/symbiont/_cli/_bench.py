"""`symbiont bench`: run the benchmark scripts, each in its own process, streaming their output.

The scripts ship inside the wheel as ``symbiont/_benchmarks``; a source checkout has
``benchmarks/``. Every script prints its own table and target lines; a target NOT MET is a
report, not a failure: only a script that fails (non-zero exit) makes the command fail.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

LONG = ("memory", "local_model", "ray_eval", "peers")
"""Run only when named: minutes of builds, or the local model."""


def benchmarks_dir() -> Path:
    from symbiont._cli import shipped_dir

    return shipped_dir("benchmarks")


def list_benchmarks() -> list[str]:
    root = benchmarks_dir()
    if not root.is_dir():
        return []
    # Files starting with "_" are helpers the scripts import, not benchmarks.
    return sorted(p.stem for p in root.glob("*.py") if not p.name.startswith("_"))


def default_selection(names: Sequence[str]) -> list[str]:
    return [n for n in names if n not in LONG]


def summary(name: str) -> str:
    """The first line of a script's docstring, read as text: parsing would slow `--help`."""
    try:
        text = (benchmarks_dir() / f"{name}.py").read_text(encoding="utf-8")
    except OSError:
        return ""
    start = text.find('"""')
    if start < 0:
        return ""
    return text[start + 3 :].lstrip().split("\n", 1)[0].strip()


def help_text() -> str:
    names = list_benchmarks()
    if not names:
        return f"no benchmark scripts found in {benchmarks_dir()}"
    width = max(map(len, names))
    lines = []
    for n in names:
        note = "  [long: runs only when named]" if n in LONG else ""
        lines.append(f"  {n:<{width}}  {summary(n)}{note}")
    return "benchmarks:\n" + "\n".join(lines)


def _quick_args(name: str) -> list[str]:
    # dispatch.py predates --quick; a shorter run is a smaller --reps/--calls.
    if name == "dispatch":
        return ["--reps", "5", "--calls", "50000"]
    return ["--quick"]


def run(names: Sequence[str], *, quick: bool = False) -> int:
    """Runs the named benchmarks (default: all but the long ones) one after another."""
    available = list_benchmarks()
    if not available:
        print(f"no benchmark scripts found in {benchmarks_dir()}", file=sys.stderr)
        return 2
    unknown = [n for n in names if n not in available]
    if unknown:
        print(
            f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}",
            file=sys.stderr,
        )
        return 2
    import os
    import subprocess

    selected = list(names) or default_selection(available)
    # The scripts' output is inherited; unbuffered, it streams even into a pipe.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    failed: list[str] = []
    for i, name in enumerate(selected):
        script = benchmarks_dir() / f"{name}.py"
        cmd = [sys.executable, str(script), *(_quick_args(name) if quick else [])]
        if i:
            print()
        print(f"== {name}{' (quick)' if quick else ''}", flush=True)
        started = time.perf_counter()
        code = subprocess.run(cmd, check=False, env=env).returncode
        took = time.perf_counter() - started
        if code != 0:
            failed.append(name)
            print(f"== {name} failed (exit status {code}) after {took:.0f} s", flush=True)
        else:
            print(f"== {name} done in {took:.0f} s", flush=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
