"""Per-call cost of symbiont's native callables, as ratios to a builtin measured in one run.

    python benchmarks/dispatch.py [--reps 25] [--calls 200000]

Every repetition times each callable in a tight loop (callable and argument in fast locals,
GC off) and an empty loop of the same length, whose time is subtracted; the table shows the
median over repetitions, interleaved round-robin so machine noise hits all rows alike.
`operator.neg(12345)` (a METH_O builtin that allocates its int result) is the floor.
Targets: dispatcher <= 1.3x operator.neg; a 1-element numpy `&mut [f64]` call <= 4x. The
`rt.nogil` rows show what releasing the GIL adds to a call (no target: it is for long calls).
"""

from __future__ import annotations

import argparse
import gc
import operator
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import symbiont as sb

DECL = """
fn f(x: u64) -> u64 { x.wrapping_add(1) }
fn g(xs: &mut [f64]) { for x in xs.iter_mut() { *x += 1.0; } }
"""


def loop(n: int, fn: Callable[[Any], Any], arg: Any) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn(arg)
    return time.perf_counter() - started


def empty(n: int, fn: Callable[[Any], Any], arg: Any) -> float:
    started = time.perf_counter()
    for _ in range(n):
        pass
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=25)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()

    rt = sb.Runtime(DECL, profile="release")
    handle = rt.revision(0).fns
    one = np.zeros(1)
    rows: dict[str, tuple[Callable[[Any], Any], Any]] = {
        "operator.neg(12345)": (operator.neg, 12345),
        "rt.fns.f(12345)  [dispatcher]": (rt.fns.f, 12345),
        "rt.revision(0).fns.f(12345)  [handle]": (handle.f, 12345),
        "rt.fns.g(np.zeros(1))  [&mut [f64], 1 elem]": (rt.fns.g, one),
        "rt.nogil.f(12345)  [releases the GIL]": (rt.nogil.f, 12345),
        "rt.nogil.g(np.zeros(1))  [releases the GIL]": (rt.nogil.g, one),
        "python def f(x): return x + 1": ((lambda x: x + 1), 12345),
    }
    for fn, arg in rows.values():  # warm up the specialising interpreter
        loop(10_000, fn, arg)
    samples: dict[str, list[float]] = {name: [] for name in rows}
    gc.disable()
    try:
        for _ in range(args.reps):
            base = empty(args.calls, operator.neg, 0)
            for name, (fn, arg) in rows.items():
                samples[name].append((loop(args.calls, fn, arg) - base) / args.calls * 1e9)
    finally:
        gc.enable()
    floor = statistics.median(samples["operator.neg(12345)"])
    width = max(map(len, rows))
    print(f"{'call':<{width}}  {'ns/call':>8}  {'x neg':>6}")
    for name, values in samples.items():
        ns = statistics.median(values)
        print(f"{name:<{width}}  {ns:8.1f}  {ns / floor:6.2f}")
    print(f"\n{args.reps} reps x {args.calls} calls, empty-loop time subtracted, medians.")


if __name__ == "__main__":
    main()
