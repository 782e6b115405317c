"""Vectorised calls (`rt.map.f`) against per-element calls, plain Python and numpy.

    python benchmarks/vectorised.py [--quick] [--reps N]

1. `fn f(x: f64) -> f64 { x * 2.0 + 1.0 }` over 1,000,000 float64: `rt.map.f(xs)` against
   calling the dispatcher `rt.fns.f` once per element from Python (a list comprehension over a
   list prepared beforehand, so the list conversion is not charged to it). Target: >= 20x.
2. `shade(x, y, t) -> u32`, a Julia-set escape-time shader (up to 64 iterations of z = z^2 + c,
   c depending on t), over a 1000x1000 grid with t a broadcast scalar:
   - `rt.map.shade` against the same shader in plain Python, timed on a 100x100 subsample of
     the grid (every 10th point each way, so it meets the same mix of fast and slow points)
     and scaled per point. Target: >= 50x.
   - against the same formula as numpy array expressions over the whole grid (escaped points
     are dropped from the working arrays each iteration, the usual way to write it). Target:
     faster than numpy.
   - `threads=2` against `threads=1`. Target: >= 1.6x (needs 2 cores; the grid is symmetric
     under z -> -z, so the two halves of the rows carry the same work).
   The three implementations are checked to agree exactly on the subsample.

Every figure is a median over repetitions run round-robin in one process. The runtime uses
the defaults (profile "release", guards on); a row with guards off shows what the inserted
deadline checks cost. Nothing is asserted: this is a report.
"""

from __future__ import annotations

import argparse
import math
import os

import _report as rep
import numpy as np

import symbiont as sb

DECL = """
fn f(x: f64) -> f64 { x * 2.0 + 1.0 }

/// Julia-set escape time of the point (x, y) of the unit square at time t.
fn shade(x: f64, y: f64, t: f64) -> u32 {
    // The unit square onto [-1.6, 1.6] x [-1.0, 1.0] of the complex plane.
    let mut zr = (x - 0.5) * 3.2;
    let mut zi = (y - 0.5) * 2.0;
    // c circles the origin as t advances; |c| = 0.7885 keeps the set connected and busy.
    let cr = 0.7885 * t.cos();
    let ci = 0.7885 * t.sin();
    let mut i: u32 = 0;
    while i < 64 {
        let zr2 = zr * zr;
        let zi2 = zi * zi;
        if zr2 + zi2 > 4.0 {
            break;
        }
        zi = 2.0 * zr * zi + ci;
        zr = zr2 - zi2 + cr;
        i += 1;
    }
    i
}
"""

# The broadcast time: c = 0.7885 * e^(3i) ~ -0.78 + 0.11i, a connected Julia set in which a
# quarter of the grid runs all 64 iterations (a frame at t = 2, say, escapes within 6 on
# average, and the per-point cos/sin then weighs more: try --t).
T = 3.0
SIDE = 1000
MAX_ITER = 64


def shade_python(x: float, y: float, t: float) -> int:
    """The shader in plain Python, operation for operation the Rust one."""
    zr = (x - 0.5) * 3.2
    zi = (y - 0.5) * 2.0
    cr = 0.7885 * math.cos(t)
    ci = 0.7885 * math.sin(t)
    i = 0
    while i < MAX_ITER:
        zr2 = zr * zr
        zi2 = zi * zi
        if zr2 + zi2 > 4.0:
            break
        zi = 2.0 * zr * zi + ci
        zr = zr2 - zi2 + cr
        i += 1
    return i


def shade_numpy(xs: np.ndarray, ys: np.ndarray, t: float) -> np.ndarray:
    """The shader as numpy array expressions: every iteration updates the points still inside
    and drops the escaped ones from the working arrays (same operations, same results)."""
    zr = ((xs - 0.5) * 3.2).ravel()
    zi = ((ys - 0.5) * 2.0).ravel()
    cr = 0.7885 * math.cos(t)  # libm, like Rust's f64::cos: bit-identical c
    ci = 0.7885 * math.sin(t)
    out = np.full(zr.size, MAX_ITER, dtype=np.uint32)
    idx = np.arange(zr.size)
    for i in range(MAX_ITER):
        zr2 = zr * zr
        zi2 = zi * zi
        escaped = zr2 + zi2 > 4.0
        if escaped.any():
            out[idx[escaped]] = i
            keep = ~escaped
            idx, zr, zi, zr2, zi2 = idx[keep], zr[keep], zi[keep], zr2[keep], zi2[keep]
        zi = 2.0 * zr * zi + ci
        zr = zr2 - zi2 + cr
    return out.reshape(np.shape(xs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 7, quick 3)")
    parser.add_argument("--t", type=float, default=T, help=f"the shader's time (default {T})")
    args = parser.parse_args()
    reps = args.reps or (3 if args.quick else 7)
    t = args.t
    rep.machine()

    rt = sb.Runtime(DECL)
    bare = sb.Runtime(DECL, guards=False)

    # ---------------------------------------------------------------- 1. map vs per element
    xs = np.random.default_rng(1).random(1_000_000)
    as_list = xs.tolist()
    f, fmap = rt.fns.f, rt.map.f
    out = np.empty_like(xs)
    assert np.array_equal(fmap(xs), xs * 2.0 + 1.0)
    assert [f(x) for x in as_list[:1000]] == (xs[:1000] * 2.0 + 1.0).tolist()
    rows1 = {
        "rt.fns.f(x) per element, list comprehension": lambda: [f(x) for x in as_list],
        "rt.map.f(xs)": lambda: fmap(xs),
        "rt.map.f(xs, out=out)": lambda: fmap(xs, out=out),
        "numpy xs * 2.0 + 1.0 (reference)": lambda: xs * 2.0 + 1.0,
    }
    s1 = rep.round_robin(rows1, reps)
    per_elem = rep.median(s1["rt.fns.f(x) per element, list comprehension"])
    print(f"1. fn f(x: f64) -> f64 {{ x * 2.0 + 1.0 }} over {xs.size:,} float64")
    rep.table(
        ["call", "ms", "ns/element", "x faster than per element"],
        [
            (name, rep.median(v) * 1e3, rep.median(v) / xs.size * 1e9, per_elem / rep.median(v))
            for name, v in s1.items()
        ],
    )

    # ---------------------------------------------------------------- 2. the shader
    grid = np.linspace(0.0, 1.0, SIDE)
    gx, gy = np.meshgrid(grid, grid)  # C-contiguous (1000, 1000) float64 each
    sub_x, sub_y = gx[::10, ::10], gy[::10, ::10]  # 100x100, spread over the whole grid
    sub_pts = list(zip(sub_x.ravel().tolist(), sub_y.ravel().tolist(), strict=True))
    smap, bare_map = rt.map.shade, bare.map.shade

    full = smap(gx, gy, t)
    py_sub = np.array([shade_python(x, y, t) for x, y in sub_pts], dtype=np.uint32)
    np_full = shade_numpy(gx, gy, t)
    agree_np = float(np.mean(np_full == full))
    agree_py = float(np.mean(py_sub.reshape(sub_x.shape) == full[::10, ::10]))
    agree_threads = bool(np.array_equal(smap(gx, gy, t, threads=2), full))

    def python_subset() -> None:
        for x, y in sub_pts:
            shade_python(x, y, t)

    rows2 = {
        "plain Python, 100x100 subsample": python_subset,
        "numpy array expressions": lambda: shade_numpy(gx, gy, t),
        "rt.map.shade, threads=1": lambda: smap(gx, gy, t, threads=1),
        "rt.map.shade, threads=2": lambda: smap(gx, gy, t, threads=2),
        "rt.map.shade, threads=1, guards off": lambda: bare_map(gx, gy, t, threads=1),
    }
    s2 = rep.round_robin(rows2, reps)
    points = {name: gx.size for name in rows2}
    points["plain Python, 100x100 subsample"] = len(sub_pts)
    ns_pt = {name: rep.median(v) / points[name] * 1e9 for name, v in s2.items()}
    one = ns_pt["rt.map.shade, threads=1"]
    py, npy = ns_pt["plain Python, 100x100 subsample"], ns_pt["numpy array expressions"]
    two = ns_pt["rt.map.shade, threads=2"]

    print(
        f"\n2. Julia-set shader over a {SIDE}x{SIDE} grid, t = {t} (broadcast), "
        f"mean {full.mean():.1f} iterations per point (max {MAX_ITER})"
    )
    rep.table(
        ["implementation", "points", "ms", "ns/point", "x vs Python", "x vs numpy"],
        [
            (name, points[name], rep.median(s2[name]) * 1e3, ns, py / ns, npy / ns)
            for name, ns in ns_pt.items()
        ],
    )
    print(
        "Python's time is for its subsample only; the ratios compare time per point "
        f"(subsample mean {py_sub.mean():.1f} iterations; whole grid in Python: "
        f"~{py * gx.size / 1e9:.1f} s)."
    )
    print(
        f"agreement with rt.map.shade: plain Python {agree_py:.2%} of the subsample, "
        f"numpy {agree_np:.2%} of the grid, threads=2 identical: {agree_threads}"
    )
    print(f"{reps} reps, round-robin, medians; {os.cpu_count()} cores.\n")

    ratio1 = per_elem / rep.median(s1["rt.map.f(xs)"])
    rep.target(">= 20x: rt.map.f vs rt.fns.f per element", f"{ratio1:.1f}x", ratio1 >= 20)
    rep.target(">= 50x: rt.map.shade vs plain Python", f"{py / one:.0f}x", py / one >= 50)
    rep.target("faster than numpy: rt.map.shade vs numpy", f"{npy / one:.1f}x", npy / one > 1)
    rep.target(">= 1.6x: threads=2 vs threads=1", f"{one / two:.2f}x", one / two >= 1.6)


if __name__ == "__main__":
    main()
