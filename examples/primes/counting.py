"""The primes task: the naive default, the lane hints, the correctness cases, the timing and
the per-lane comparison through pinned revision handles. Importable on its own: the example's
test and benchmarks/examples.py use it, with REFERENCE, a hand-written good candidate."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

import numpy as np

import symbiont as sb

LIMIT = 50_000  # the n every candidate is timed at

DEFAULT = """
/// The number of primes p with p < n.
fn count_primes_below(n: u32) -> u32 {
    // Naive trial division by every smaller number: the slow start.
    let mut count = 0;
    for k in 2..n {
        let mut prime = true;
        for d in 2..k {
            if k % d == 0 {
                prime = false;
                break;
            }
        }
        if prime {
            count += 1;
        }
    }
    count
}
"""

HINTS = [
    "trial division by odd numbers up to the square root",
    "a sieve of Eratosthenes over a Vec<bool>",
    "an odd-only sieve of Eratosthenes (index i stands for 2i + 1)",
    "a segmented sieve with a cache-sized segment",
    "a 2-3-5 wheel that skips multiples of 2, 3 and 5",
    "a bitset sieve over odd numbers, one bit per candidate in u64 words",
    "an odd-only sieve that starts crossing out at p * p with step 2p",
    "a sieve whose final count uses u64 popcounts",
]

# A good answer written by hand (odd-only bitset sieve, counted with popcounts): the
# known-good candidate of the tests and the "evolved" row of the benchmark.
REFERENCE = """
fn count_primes_below(n: u32) -> u32 {
    if n < 3 {
        return 0;
    }
    // Bit i of the sieve stands for the odd number 2i + 1; 1 is not prime.
    let odds = (n as usize) / 2;
    let mut bits = vec![u64::MAX; (odds + 63) / 64];
    bits[0] &= !1;
    let mut i = 1;
    while (2 * i + 1) * (2 * i + 1) < n as usize {
        if bits[i / 64] >> (i % 64) & 1 == 1 {
            let p = 2 * i + 1;
            let mut j = p * p / 2;
            while j < odds {
                bits[j / 64] &= !(1u64 << (j % 64));
                j += p;
            }
        }
        i += 1;
    }
    let extra = bits.len() * 64 - odds;
    if extra > 0 {
        let last = bits.len() - 1;
        bits[last] &= u64::MAX >> extra;
    }
    // The odd primes plus 2.
    bits.iter().map(|w| w.count_ones()).sum::<u32>() + 1
}
"""


def numpy_count(n: int) -> int:
    """Primes below ``n`` by a numpy sieve: the reference answer and the numpy baseline."""
    if n < 3:
        return 0
    sieve = np.ones(n // 2, dtype=bool)  # index i: 2i + 1
    sieve[0] = False
    i = 1
    while (2 * i + 1) ** 2 < n:
        if sieve[i]:
            p = 2 * i + 1
            sieve[p * p // 2 :: p] = False
        i += 1
    return int(sieve.sum()) + 1


def python_count(n: int) -> int:
    """Primes below ``n`` by a plain-Python sieve over a bytearray: the Python baseline."""
    if n < 3:
        return 0
    sieve = bytearray([1]) * n
    sieve[0] = sieve[1] = 0
    for p in range(2, int(n**0.5) + 1):
        if sieve[p]:
            sieve[p * p :: p] = bytes(len(range(p * p, n, p)))
    return sum(sieve)


CASES = [0, 1, 2, 3, 4, 5, 10, 11, 100, 997, 1000, 7919, 7920, 30_031]


def check(count: Callable[[int], int], limit: int = LIMIT) -> None:
    """AssertionError naming the first n whose count is wrong."""
    for n in [*(c for c in CASES if c < limit), limit]:
        got, want = count(n), numpy_count(n)
        assert got == want, f"count_primes_below({n}) returned {got}, expected {want}"


def seconds(count: Callable[[int], int], limit: int = LIMIT, runs: int = 7) -> float:
    return sb.measure(count, limit, repeats=runs, warmup=1).median


def make_evaluator(limit: int = LIMIT, runs: int = 7) -> Callable[[sb.Functions], sb.Score]:
    """The evaluator: the cases checked against numpy, then milliseconds per call at
    ``limit`` (the median of ``runs``; lower is better)."""

    def evaluate(fns: sb.Functions) -> sb.Score:
        check(fns.count_primes_below, limit)
        ms = seconds(fns.count_primes_below, limit, runs) * 1e3
        return sb.Score(ms, feedback=f"count_primes_below({limit}) takes {ms:.4g} ms")

    return evaluate


def lane_bests(store: str, run_name: str) -> dict[int, tuple[int, str, float]]:
    """Each lane's best scored revision in the run store: lane -> (number, code, ms)."""
    con = sqlite3.connect(store)
    try:
        rows = con.execute(
            "SELECT r.lane, r.number, r.code, r.score FROM revisions r JOIN runs ON "
            "runs.id = r.run_id WHERE runs.name = ? AND r.status = 'scored' "
            "AND r.lane IS NOT NULL ORDER BY r.score",
            (run_name,),
        ).fetchall()
    finally:
        con.close()
    best: dict[int, tuple[int, str, float]] = {}
    for lane, number, code, score in rows:
        best.setdefault(lane, (number, code, score))
    return best


def markdown(rows: list[list[str]]) -> str:
    """A Markdown table (the first row is the header), readable as plain text too."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in rows]  # fmt: skip
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def settings_hints(store: str, run_name: str) -> list[str]:
    """The lane hints the run was started with, as the store recorded them."""
    con = sqlite3.connect(store)
    try:
        (settings,) = con.execute(
            "SELECT settings FROM runs WHERE name = ?", (run_name,)
        ).fetchone()
    finally:
        con.close()
    found: Any = json.loads(settings).get("strategy", {}).get("hints", [])
    return [str(h) for h in found]
