"""The sort task: six distributions, the std-sort check, correctness against numpy and the
timing (medians via sb.measure). Importable on its own: the example's test and
benchmarks/examples.py use it, with REFERENCE, a hand-written good candidate."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

import symbiont as sb

N = 10_000
RUNS = 21

DEFAULT = """
/// Sorts `data` in ascending order (the inputs hold no NaN).
fn sort(data: &mut [f64]) {
    // Bubble sort: the slow start the search improves on.
    let n = data.len();
    for i in 0..n {
        let mut swapped = false;
        for j in 0..n - 1 - i {
            if data[j] > data[j + 1] {
                data.swap(j, j + 1);
                swapped = true;
            }
        }
        if !swapped {
            break;
        }
    }
}
"""

# A good answer written by hand (LSD radix sort on order-preserving keys, insertion sort for
# short inputs): the known-good candidate of the tests and the "evolved" row of the benchmark.
REFERENCE = """
fn key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

fn unkey(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

fn insertion(data: &mut [f64]) {
    for i in 1..data.len() {
        let x = data[i];
        let mut j = i;
        while j > 0 && data[j - 1] > x {
            data[j] = data[j - 1];
            j -= 1;
        }
        data[j] = x;
    }
}

fn sort(data: &mut [f64]) {
    let n = data.len();
    // Inputs already in order (or in reverse order) cost one pass.
    if data.windows(2).all(|w| w[0] <= w[1]) {
        return;
    }
    if data.windows(2).all(|w| w[0] >= w[1]) {
        data.reverse();
        return;
    }
    if n < 64 {
        insertion(data);
        return;
    }
    let mut keys: Vec<u64> = data.iter().map(|&x| key(x)).collect();
    let mut buf = vec![0u64; n];
    let mut counts = [[0usize; 256]; 8];
    for &k in &keys {
        for (pass, c) in counts.iter_mut().enumerate() {
            c[((k >> (8 * pass)) & 255) as usize] += 1;
        }
    }
    for (pass, c) in counts.iter_mut().enumerate() {
        // A digit shared by every key leaves the order as it is: skip the pass.
        if c.iter().any(|&m| m == n) {
            continue;
        }
        let mut sum = 0;
        for slot in c.iter_mut() {
            let m = *slot;
            *slot = sum;
            sum += m;
        }
        for &k in &keys {
            let d = ((k >> (8 * pass)) & 255) as usize;
            buf[c[d]] = k;
            c[d] += 1;
        }
        std::mem::swap(&mut keys, &mut buf);
    }
    for (x, &k) in data.iter_mut().zip(&keys) {
        *x = unkey(k);
    }
}
"""


def _uniform(rng: np.random.Generator, n: int) -> Any:
    return rng.uniform(-1e6, 1e6, n)


def _normal(rng: np.random.Generator, n: int) -> Any:
    return rng.standard_normal(n)


def _sorted(rng: np.random.Generator, n: int) -> Any:
    return np.sort(rng.uniform(0, 1, n))


def _reversed(rng: np.random.Generator, n: int) -> Any:
    return np.sort(rng.uniform(0, 1, n))[::-1].copy()


def _few_unique(rng: np.random.Generator, n: int) -> Any:
    return rng.integers(0, 8, n).astype(np.float64)


def _nearly_sorted(rng: np.random.Generator, n: int) -> Any:
    xs = np.sort(rng.uniform(0, 1, n))
    i, j = rng.integers(0, n, (2, max(1, n // 100)))  # 1% of the values swapped
    xs[i], xs[j] = xs[j], xs[i].copy()
    return xs


DISTRIBUTIONS: dict[str, Callable[[np.random.Generator, int], Any]] = {
    "uniform": _uniform,
    "normal": _normal,
    "sorted": _sorted,
    "reversed": _reversed,
    "few unique": _few_unique,
    "nearly sorted": _nearly_sorted,
}


def datasets(n: int = N, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {name: make(rng, n) for name, make in DISTRIBUTIONS.items()}


_COMMENT_OR_STRING = re.compile(r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\])*\"", re.DOTALL)
# std's sorts and selections, called as methods (`data.sort_by(...)`) or through a path
# (`<[f64]>::sort_unstable(data)`, `slice::sort_by(...)`), turbofish allowed.
_STD_SORT = re.compile(
    r"(?:\.|::)\s*((?:sort|sort_unstable)(?:_by(?:_key|_cached_key)?)?"
    r"|select_nth_unstable(?:_by(?:_key)?)?)\s*(?:::\s*<[^>]*>\s*)?\("
)


def std_sort_calls(code: str) -> list[str]:
    """The std sort or select calls in ``code`` (comments and strings left out)."""
    return _STD_SORT.findall(_COMMENT_OR_STRING.sub(" ", code))


def check(sort: Callable[[Any], Any], data: dict[str, Any]) -> None:
    """Sorts a copy of every dataset; AssertionError naming the first wrong place."""
    for name, xs in data.items():
        got = xs.copy()
        sort(got)
        want = np.sort(xs)
        if not np.array_equal(got, want):
            i = int(np.flatnonzero(got != want)[0])
            raise AssertionError(
                f"on the {name} data ({len(xs):,} values) the result differs from numpy.sort "
                f"at index {i}: got {got[i]!r}, expected {want[i]!r}"
            )


def seconds(sort: Callable[[Any], Any], xs: Any, runs: int = RUNS) -> float:
    """Median seconds of ``runs`` in-place sorts of a fresh copy of ``xs`` (copy untimed)."""
    buf = xs.copy()
    timing = sb.measure(sort, buf, repeats=runs, warmup=1, setup=lambda: np.copyto(buf, xs))
    return timing.median


def python_seconds(xs: Any, runs: int = RUNS) -> float:
    """Median seconds of Python's sorted() on the values as a list."""
    return sb.measure(sorted, xs.tolist(), repeats=runs, warmup=1).median


def make_evaluator(
    n: int = N, runs: int = RUNS, seed: int = 0
) -> Callable[[sb.Functions], sb.Score]:
    """The evaluator: std sorts refused, every distribution checked against numpy, then the
    score, the geometric mean over the distributions of numpy.sort's time over the
    candidate's (1.0: as fast as numpy; both measured in the same evaluation)."""
    data = datasets(n, seed)

    def evaluate(fns: sb.Functions) -> sb.Score:
        calls = std_sort_calls(sb.code_of(fns))
        if calls:
            raise sb.Reject(
                f"the code calls std's {', '.join(sorted(set(calls)))}: write the sorting "
                "algorithm yourself, no std sort or select_nth"
            )
        check(fns.sort, data)
        ratios: dict[str, float] = {}
        lines = []
        for name, xs in data.items():
            mine, theirs = seconds(fns.sort, xs, runs), seconds(np.ndarray.sort, xs, runs)
            ratios[name] = theirs / mine
            lines.append(f"{name}: {mine * 1e3:.3f} ms ({ratios[name]:.2f}x numpy.sort)")
        score = math.exp(sum(math.log(r) for r in ratios.values()) / len(ratios))
        return sb.Score(
            score,
            metrics={f"vs_numpy_{k.replace(' ', '_')}": v for k, v in ratios.items()},
            feedback=f"median of {runs} runs on {n:,} values:\n" + "\n".join(lines),
        )

    return evaluate


def speed_table(
    sorts: dict[str, Callable[[Any], Any]], data: dict[str, Any], runs: int = RUNS
) -> str:
    """Milliseconds per distribution for each native sort in ``sorts`` (the first is the
    baseline), with the last one's speedup against the baseline, sorted() and numpy.sort."""
    names = list(sorts)
    header = ["distribution", *(f"{k} ms" for k in names), "sorted() ms", "numpy ms",
              f"{names[-1]} vs {names[0]}", "vs sorted()", "vs numpy"]  # fmt: skip
    rows = [header]
    for dist, xs in data.items():
        ms = [seconds(fn, xs, runs) * 1e3 for fn in sorts.values()]
        py, npy = python_seconds(xs, runs) * 1e3, seconds(np.ndarray.sort, xs, runs) * 1e3
        best = ms[-1]
        speedups = (ms[0] / best, py / best, npy / best)
        rows.append([dist, *(f"{m:.3f}" for m in ms), f"{py:.3f}", f"{npy:.3f}",
                     *(f"{x:.2f}x" for x in speedups)])  # fmt: skip
    return markdown(rows)


def markdown(rows: list[list[str]]) -> str:
    """A Markdown table (the first row is the header), readable as plain text too."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in rows]  # fmt: skip
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
