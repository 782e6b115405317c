"""Shared types across the boundary, as ratios measured in one run.

    python benchmarks/shared_types.py [--reps 15]

(Not `types.py`: a script folder comes first on sys.path, and that name would shadow the
standard library module.)

- Summing `close` over 1,000,000 `Candle`s (a `&[Candle]` structured array) against summing an
  `&[f64]` of the same byte size: the struct path should cost no more than the bytes it reads
  (target <= 1.2x per call).
- A `Candle` record argument (`&Candle`, a record of `rt.types.Candle`), and a `Candle`
  return, per call, against `operator.neg(12345)` (target <= 6x). A numpy record (`arr[i]`)
  is timed too: numpy exporting its buffer dominates that call.
- `rt.types.Candle(...)` building a record, for scale.
- A `Vec<f64>` result of 10 and of 1,000,000 elements against `np.empty` of the same size
  (results up to 64 KiB are copied into memory numpy owns, larger ones are the Vec's buffer).
"""

from __future__ import annotations

import argparse
import operator
from collections.abc import Callable

import _report as rep
import numpy as np

import symbiont as sb

DECL = """
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Candle { pub open: f64, pub high: f64, pub low: f64, pub close: f64, pub volume: f64 }

fn sum_close(c: &[Candle]) -> f64 { c.iter().map(|x| x.close).sum() }
fn sum_f64(xs: &[f64]) -> f64 { xs.iter().sum() }
fn close_of(c: &Candle) -> f64 { c.close }
fn candle(x: f64) -> Candle { Candle { open: x, high: x, low: x, close: x, volume: x } }
fn ramp(n: usize) -> Vec<f64> { (0..n).map(|i| i as f64).collect() }
"""


def per_call(fn: Callable[[object], object], arg: object, calls: int) -> Callable[[], object]:
    def run() -> None:
        for _ in range(calls):
            fn(arg)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    rep.machine()
    rt = sb.Runtime(DECL, profile="release")
    n = 1_000_000
    candles = rt.types.Candle.zeros(n)
    candles["close"] = np.arange(n, dtype=float)
    flat = np.arange(5 * n, dtype=float)  # the same 40 MB
    record = candles[3]
    made = rt.types.Candle(open=1.0, high=1.0, low=1.0, close=1.0, volume=1.0)
    calls = args.calls
    rows = {
        "sum_close(&[Candle]), 1,000,000 records": lambda: rt.fns.sum_close(candles),
        "sum_f64(&[f64]), 5,000,000 elements": lambda: rt.fns.sum_f64(flat),
        "operator.neg(12345)": per_call(operator.neg, 12345, calls),
        "close_of(&Candle), a structured array's element": per_call(rt.fns.close_of, record, calls),
        "close_of(&Candle), rt.types.Candle(...)": per_call(rt.fns.close_of, made, calls),
        "candle(1.0) -> Candle": per_call(rt.fns.candle, 1.0, calls),
    }
    small, big = 10, 1_000_000
    big_calls = max(1, calls // 1000)
    vec_rows = {
        "ramp(10) -> Vec<f64>": per_call(rt.fns.ramp, small, calls),
        "np.empty(10)": per_call(np.empty, small, calls),
        "ramp(1,000,000) -> Vec<f64>": per_call(rt.fns.ramp, big, big_calls),
        "np.empty(1,000,000)": per_call(np.empty, big, big_calls),
    }
    samples = rep.round_robin({**rows, **vec_rows}, args.reps)
    vec_med = {name: rep.median(samples.pop(name)) for name in vec_rows}
    med = {name: rep.median(s) for name, s in samples.items()}
    neg = med["operator.neg(12345)"] / calls
    bulk = (
        med["sum_close(&[Candle]), 1,000,000 records"] / med["sum_f64(&[f64]), 5,000,000 elements"]
    )
    table_rows = []
    for name, seconds in med.items():
        per = seconds / calls if name not in list(med)[:2] else seconds
        ratio = f"{per / neg:.2f}x" if name not in list(med)[:2] else ""
        table_rows.append((name, f"{per * 1e9:,.1f} ns", ratio))
    rep.table(("call", "median per call", "vs operator.neg"), table_rows)
    rep.target("&[Candle] sum vs &[f64] of the same bytes <= 1.2x", f"{bulk:.2f}x", bulk <= 1.2)
    record_ratio = med["close_of(&Candle), rt.types.Candle(...)"] / calls / neg
    ret_ratio = med["candle(1.0) -> Candle"] / calls / neg
    rep.target("&Candle argument <= 6x operator.neg", f"{record_ratio:.1f}x", record_ratio <= 6)
    rep.target("Candle return <= 6x operator.neg", f"{ret_ratio:.1f}x", ret_ratio <= 6)
    print()
    vec_table = []
    for n, count in ((small, calls), (big, big_calls)):
        label = f"{n:,}"
        ours = vec_med[f"ramp({label}) -> Vec<f64>"] / count
        empty = vec_med[f"np.empty({label})"] / count
        vec_table.append((f"Vec<f64> of {label}", f"{ours * 1e9:,.0f} ns",
                          f"{empty * 1e9:,.0f} ns", f"{ours / empty:.2f}x"))  # fmt: skip
    rep.table(("result", "ramp(n)", "np.empty(n)", "ratio"), vec_table)


if __name__ == "__main__":
    main()
