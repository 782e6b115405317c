"""The examples' evolved reference candidates against their default, plain Python and numpy.

    python benchmarks/examples.py [--quick] [--runs N]

One table, one row per case, milliseconds per call (median of --runs samples, sb.measure):
- sort (examples/sort): the bubble-sort default, the reference sort (an LSD radix sort
  written by hand as a good evolved answer, the known-good candidate of the example's test),
  Python's sorted() on a list, numpy's in-place ndarray.sort; six distributions of 10,000
  values (--quick: 2,000), each run on a fresh copy;
- primes (examples/primes): the naive trial-division default, the reference (an odd-only
  bitset sieve counted with popcounts), a plain-Python bytearray sieve and a numpy sieve, at
  n = 50,000 and (without the default, which would take minutes) n = 1,000,000;
- fractal, when examples/fractal is in this checkout and exposes `benchmark_cases()`.

Nothing is asserted: this is a report. The ratios come from one run on one machine.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _report as rep
import numpy as np

import symbiont as sb

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
if not EXAMPLES.is_dir():  # installed: the wheel ships them beside the benchmarks
    from symbiont._cli import examples_dir

    EXAMPLES = examples_dir()


def example_module(folder: str, module: str) -> Any:
    sys.path.insert(0, str(EXAMPLES / folder))
    return importlib.import_module(module)


def ms(
    fn: Callable[..., Any], *args: Any, runs: int, setup: Callable[[], Any] | None = None
) -> float:
    return sb.measure(fn, *args, repeats=runs, warmup=1, setup=setup).median * 1e3


Row = tuple[str, str, float | None, float, float, float]


def sort_rows(size: int, runs: int) -> list[Row]:
    task = example_module("sort", "sorting")
    default = sb.Runtime(task.DEFAULT).fns.sort
    reference = sb.Runtime(task.REFERENCE).fns.sort
    rows: list[Row] = []
    for name, xs in task.datasets(size).items():
        task.check(reference, {name: xs})
        rows.append((
            "sort", f"{name} ({size:,})",
            task.seconds(default, xs, runs) * 1e3,
            task.seconds(reference, xs, runs) * 1e3,
            task.python_seconds(xs, runs) * 1e3,
            task.seconds(np.ndarray.sort, xs, runs) * 1e3,
        ))  # fmt: skip
    return rows


def primes_rows(runs: int, quick: bool) -> list[Row]:
    task = example_module("primes", "counting")
    default = sb.Runtime(task.DEFAULT).fns.count_primes_below
    reference = sb.Runtime(task.REFERENCE).fns.count_primes_below
    rows: list[Row] = []
    for n, with_default in ((task.LIMIT // (5 if quick else 1), True), (1_000_000, False)):
        assert reference(n) == task.numpy_count(n) == task.python_count(n)
        rows.append((
            "primes", f"n = {n:,}",
            ms(default, n, runs=runs) if with_default else None,
            ms(reference, n, runs=runs),
            ms(task.python_count, n, runs=runs),
            ms(task.numpy_count, n, runs=runs),
        ))  # fmt: skip
    return rows


def fractal_rows(runs: int, quick: bool) -> list[Row]:
    if not (EXAMPLES / "fractal" / "main.py").is_file():
        print("fractal: not in this checkout, left out")
        return []
    for path in sorted((EXAMPLES / "fractal").glob("*.py")):
        module = example_module("fractal", path.stem)
        cases = getattr(module, "benchmark_cases", None)
        if cases is not None:
            found: list[Row] = cases(runs=runs, quick=quick)
            return found
    print("fractal: examples/fractal has no benchmark_cases(), left out")
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs, fewer runs")
    parser.add_argument("--runs", type=int, default=None, help="samples per median")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 21)
    rep.machine()
    rows = [
        *sort_rows(2_000 if args.quick else 10_000, runs),
        *primes_rows(runs, args.quick),
        *fractal_rows(runs, args.quick),
    ]
    rep.table(
        ["example", "case", "default ms", "evolved ms", "python ms", "numpy ms",
         "vs default", "vs python", "vs numpy"],
        [
            (ex, case, "-" if d is None else d, e, p, n,
             "-" if d is None else f"{d / e:,.1f}x", f"{p / e:,.1f}x", f"{n / e:.2f}x")
            for ex, case, d, e, p, n in rows
        ],
    )  # fmt: skip
    print("vs X: X's time over the evolved reference's (above 1: the evolved code is faster)")


if __name__ == "__main__":
    main()
