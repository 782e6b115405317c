"""Shared helpers of the benchmark scripts: round-robin timing, tables and target lines.

Not a benchmark itself (``symbiont bench`` skips files starting with ``_``). The scripts import
it as ``_report``: Python puts a script's own folder first on ``sys.path``.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


def round_robin(
    rows: Mapping[str, Callable[[], object]],
    reps: int,
    *,
    setup: Callable[[str], None] | None = None,
) -> dict[str, list[float]]:
    """Seconds per run of each row, ``reps`` times, interleaved so machine noise (frequency
    changes, a neighbour's burst) hits every row alike. ``setup(name)`` runs untimed before
    each timed run (e.g. refilling an array that the row sorts in place)."""
    samples: dict[str, list[float]] = {name: [] for name in rows}
    gc.collect()
    gc.disable()  # a collection landing in one row's run would be charged to that row
    try:
        for _ in range(reps):
            for name, fn in rows.items():
                if setup is not None:
                    setup(name)
                started = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - started)
    finally:
        gc.enable()
    return samples


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Prints a plain-text table: the first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = (v.rjust(w) for v, w in zip(row[1:], widths[1:], strict=True))
        return "  ".join((first, *rest)).rstrip()

    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3g}"
    return str(value)


def target(text: str, measured: str, met: bool) -> None:
    print(f"target: {text}  measured: {measured}  [{'met' if met else 'NOT MET'}]")


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux: VmRSS from /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (this benchmark needs Linux)")


def machine() -> None:
    """One line on what the figures were measured on: other load skews them, threads most."""
    cores = os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"machine: {cores} cores, load average {load} at start, Python {platform.python_version()}"
    )
