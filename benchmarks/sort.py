"""What evolved native code is worth: a hand-written sort against Python, numpy and ctypes.

    python benchmarks/sort.py [--quick] [--reps N]

A good sort for `fn sort(xs: &mut [f64])`, written by hand as a candidate (an LSD radix sort:
f64 bit patterns mapped to order-preserving u64 keys kept in place, 8 passes of 8 bits with
one histogram pass and one buffer, passes whose digit is the same for every key skipped,
std's pdqsort below 1,024 elements), registered with `rt.register(code, activate=True)`; std's
`sort_unstable_by(f64::total_cmp)` is registered as a second candidate for reference.

1. 1,000,000 standard-normal f64, sorted in place: `rt.fns.sort` against Python's
   `list.sort()` and numpy's `ndarray.sort()` (the in-place form of `numpy.sort`, so no row
   pays for a copy; each run gets a fresh copy of the data, untimed). All results are checked
   to be the same order.
2. The same algorithm called through the dispatcher against ctypes: the candidate's code is
   compiled by rustc (same flags) into a tiny library of its own with an
   `extern "C" fn sort_c(p: *mut f64, n: usize)` wrapper, called with `CDLL`, `argtypes` and
   `arr.ctypes.data_as(...)` per call (also with the pointer prepared once, ctypes' best
   case). Guards are off on the symbiont side for this comparison (ctypes' library has
   none), so both run the same machine code; ns per call for n = 1, 10, 1,000 (each array
   sorted again in place: already sorted after the first call, the same work on both sides)
   and 1,000,000.

Targets: the evolved sort is faster than numpy's; at n = 1 the
dispatcher call costs >= 10x less than ctypes with `arr.ctypes` (43 ns against 1-3 us there).
Medians of interleaved repetitions in one run. Nothing is asserted: this is a report.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import gc
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _report as rep
import numpy as np

import symbiont as sb
from symbiont._compile import find_toolchain

DECL = """
/// Sorts `xs` in ascending order.
fn sort(xs: &mut [f64]) {
    xs.sort_by(|a, b| a.total_cmp(b));
}
"""

RADIX = """\
/// Sorts `xs` in ascending order (IEEE total order: -0.0 before 0.0).
fn sort(xs: &mut [f64]) {
    let n = xs.len();
    if n < 1024 {
        // 8 x 256 counters cost more than a comparison sort here.
        xs.sort_unstable_by(|a, b| a.total_cmp(b));
        return;
    }
    // One pass turns every value into its order-preserving key (kept in place as f64 bits)
    // and counts the digits of all 8 passes.
    let mut counts = [[0usize; 256]; 8];
    for x in xs.iter_mut() {
        let k = key(*x);
        let [c0, c1, c2, c3, c4, c5, c6, c7] = &mut counts;
        c0[(k & 255) as usize] += 1;
        c1[((k >> 8) & 255) as usize] += 1;
        c2[((k >> 16) & 255) as usize] += 1;
        c3[((k >> 24) & 255) as usize] += 1;
        c4[((k >> 32) & 255) as usize] += 1;
        c5[((k >> 40) & 255) as usize] += 1;
        c6[((k >> 48) & 255) as usize] += 1;
        c7[(k >> 56) as usize] += 1;
        *x = f64::from_bits(k);
    }
    // 8-bit digits: 256 scatter targets stay in cache and TLB, where 2,048 (11 bits) thrash.
    let mut buf = vec![0f64; n];
    let mut in_xs = true;
    for (p, c) in counts.iter_mut().enumerate() {
        if c.iter().any(|&m| m == n) {
            continue; // every key has the same digit here: the pass would change nothing
        }
        let mut sum = 0;
        for m in c.iter_mut() {
            let here = *m;
            *m = sum;
            sum += here;
        }
        let (src, dst): (&[f64], &mut [f64]) =
            if in_xs { (&*xs, &mut buf[..]) } else { (&buf[..], &mut *xs) };
        for &v in src {
            let d = ((v.to_bits() >> (8 * p)) & 255) as usize;
            dst[c[d]] = v;
            c[d] += 1;
        }
        in_xs = !in_xs;
    }
    if !in_xs {
        xs.copy_from_slice(&buf);
    }
    for x in xs.iter_mut() {
        *x = from_key(x.to_bits());
    }
}

/// Order-preserving key: flip every bit of a negative number, only the sign bit otherwise.
fn key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

fn from_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}
"""

STD = """\
fn sort(xs: &mut [f64]) {
    xs.sort_unstable_by(|a, b| a.total_cmp(b));
}
"""

WRAPPER = """\
include!("candidate.rs");

#[no_mangle]
pub unsafe extern "C" fn sort_c(p: *mut f64, n: usize) {
    if n > 0 {
        sort(std::slice::from_raw_parts_mut(p, n));
    }
}
"""


def build_ctypes(code: str, flags: tuple[str, ...], workdir: Path) -> ctypes.CDLL:
    """The candidate plus a C wrapper, compiled by rustc with the runtime's own flags."""
    (workdir / "candidate.rs").write_text(code)
    (workdir / "lib.rs").write_text(WRAPPER)
    out = workdir / "libsortc.so"
    own = tuple(f for f in flags if not f.startswith("--error-format"))
    cmd = [find_toolchain(None).rustc, *own, "--crate-name", "sortc", "lib.rs", "-o", str(out)]
    subprocess.run(cmd, cwd=workdir, check=True, capture_output=True)
    lib = ctypes.CDLL(str(out))
    lib.sort_c.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.c_size_t]
    lib.sort_c.restype = None
    return lib


def per_call_ns(rows: dict[str, Callable[[], object]], calls: int, reps: int) -> dict[str, float]:
    """Median ns per call of each row (a loop of ``calls`` calls, the empty loop's time
    subtracted), interleaved round-robin as in dispatch.py."""

    def loop(fn: Callable[[], object]) -> float:
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        return time.perf_counter() - started

    def empty() -> float:
        started = time.perf_counter()
        for _ in range(calls):
            pass
        return time.perf_counter() - started

    for fn in rows.values():
        loop(fn)  # warm up the specialising interpreter
    samples: dict[str, list[float]] = {name: [] for name in rows}
    gc.disable()
    try:
        for _ in range(reps):
            base = empty()
            for name, fn in rows.items():
                samples[name].append((loop(fn) - base) / calls * 1e9)
    finally:
        gc.enable()
    return {name: rep.median(v) for name, v in samples.items()}


def sorts_work(fn: Callable[[Any], object], work: dict[str, Any], name: str) -> object:
    return fn(work[name])


def per_call(
    size: int,
    disp: Callable[[Any], object],
    guarded: Callable[[Any], object],
    lib: ctypes.CDLL,
    reps: int,
    *,
    quick: bool,
) -> dict[str, float]:
    """ns per call of each way to sort one array of ``size`` in place."""
    double_p = ctypes.POINTER(ctypes.c_double)
    a = np.random.default_rng(size).standard_normal(size)
    ptr = a.ctypes.data_as(double_p)
    sort_c = lib.sort_c
    rows: dict[str, Callable[[], object]] = {
        "dispatcher": lambda: disp(a),
        "dispatcher, guards on": lambda: guarded(a),
        "ctypes, arr.ctypes per call": lambda: sort_c(a.ctypes.data_as(double_p), size),
        "ctypes, pointer prepared": lambda: sort_c(ptr, size),
    }
    if size >= 100_000:
        # Fresh random data before every call (untimed, into the same buffer, so the
        # prepared pointer stays valid), one call per timed run.
        data = a.copy()
        samples = rep.round_robin(rows, reps, setup=lambda _: np.copyto(a, data))
        return {name: rep.median(v) * 1e9 for name, v in samples.items()}
    calls = 200_000 if size <= 10 else 5_000
    return per_call_ns(rows, calls // 4 if quick else calls, reps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 9, quick 3)")
    args = parser.parse_args()
    reps = args.reps or (3 if args.quick else 9)
    rep.machine()

    rt = sb.Runtime(DECL)
    radix = rt.register(RADIX, activate=True)
    std = rt.register(STD)
    bare = sb.Runtime(DECL, guards=False)  # the same code without the inserted guards
    bare.register(RADIX, activate=True)
    tmp = Path(tempfile.mkdtemp(prefix="symbiont-bench-sort-"))
    try:
        lib = build_ctypes(RADIX, rt._builder.flags, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the mapped library outlives its file
    double_p = ctypes.POINTER(ctypes.c_double)

    # ---------------------------------------------------------------- 1. one million floats
    n = 1_000_000
    src = np.random.default_rng(7).standard_normal(n)
    src_list = src.tolist()
    expected = np.sort(src)
    work: dict[str, Any] = {}
    sort_fns = {
        "Python list.sort()": lambda a: a.sort(),
        "numpy ndarray.sort()": lambda a: a.sort(),
        f"rt.fns.sort, radix (revision {radix})": rt.fns.sort,
        f"rt.revision({std}).fns.sort, std sort_unstable_by": rt.revision(std).fns.sort,
        "radix, guards off (dispatcher)": bare.fns.sort,
        "radix via ctypes sort_c": lambda a: lib.sort_c(a.ctypes.data_as(double_p), a.size),
    }

    def refill(name: str) -> None:
        if name.startswith("Python"):
            work[name] = list(src_list)
        elif name in work:
            np.copyto(work[name], src)
        else:
            work[name] = src.copy()

    for name, fn in sort_fns.items():  # check every one sorts, and the same way
        refill(name)
        fn(work[name])
        if not np.array_equal(np.asarray(work[name]), expected):
            raise AssertionError(f"{name} does not give numpy's order")
    rows = {name: functools.partial(sorts_work, fn, work, name) for name, fn in sort_fns.items()}
    samples = rep.round_robin(rows, reps, setup=refill)
    ms = {name: rep.median(v) * 1e3 for name, v in samples.items()}
    py, npy = ms["Python list.sort()"], ms["numpy ndarray.sort()"]
    print(f"\n1. sorting {n:,} standard-normal f64 in place ({reps} reps, medians)")
    rep.table(
        ["sort", "ms", "x vs Python", "x vs numpy"],
        [(name, v, py / v, npy / v) for name, v in ms.items()],
    )
    print("every row checked to give exactly numpy's order")

    # ---------------------------------------------------------------- 2. dispatcher vs ctypes
    print("\n2. per call, the same radix sort: dispatcher (guards off) vs ctypes, ns per call")
    table: list[tuple[object, ...]] = []
    ratios: dict[int, float] = {}
    for size in (1, 10, 1000, n):
        ns = per_call(size, bare.fns.sort, rt.fns.sort, lib, reps, quick=args.quick)
        ratios[size] = ns["ctypes, arr.ctypes per call"] / ns["dispatcher"]
        table.append(
            (
                f"{size:,}",
                ns["dispatcher"],
                ns["dispatcher, guards on"],
                ns["ctypes, arr.ctypes per call"],
                ns["ctypes, pointer prepared"],
                ratios[size],
                ns["ctypes, pointer prepared"] / ns["dispatcher"],
            )
        )
    rep.table(
        [
            "n",
            "dispatcher",
            "guards on",
            "ctypes arr.ctypes",
            "ctypes ptr ready",
            "x arr.ctypes/disp",
            "x ptr/disp",
        ],
        table,
    )
    print(
        "(1,000,000: one call at a time on fresh data, medians; others: loops, empty loop "
        "subtracted)\n"
    )

    radix_ms = ms[f"rt.fns.sort, radix (revision {radix})"]
    rep.target(
        "evolved sort faster than numpy's",
        f"{npy / radix_ms:.2f}x ({radix_ms:.1f} ms vs {npy:.1f} ms)",
        radix_ms < npy,
    )
    rep.target(
        "n=1: dispatcher >= 10x cheaper per call than ctypes with arr.ctypes",
        f"{ratios[1]:.1f}x",
        ratios[1] >= 10,
    )


if __name__ == "__main__":
    main()
