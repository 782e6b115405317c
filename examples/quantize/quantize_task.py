"""The quantizer evaluator: two objectives on 10,000 Laplacian samples.

`quantize(input, output)` writes one value per input. Its error is the mean squared error
against the input; its rate is log2 of the number of distinct values it writes (bits per value
with a fixed-length code). Lower is better for both: the search keeps the front of the
trade-offs, and no single number says which quantizer is best.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

import symbiont as sb

SAMPLES = 10_000
OBJECTIVES = {"mse": "min", "bits": "min"}
# The goal: at most 8 levels (3 bits) with an error below what the best uniform 8-level
# quantizer reaches on these samples (0.154 with the step 1.04).
GOAL_BITS, GOAL_MSE = 3.0, 0.16


def samples(seed: int = 0, n: int = SAMPLES) -> np.ndarray:
    """Laplacian samples of scale 1 (variance 2)."""
    return np.random.default_rng(seed).laplace(0.0, 1.0, n)


def measure(output: np.ndarray, data: np.ndarray) -> dict[str, float]:
    """The two objectives of an output, or `sb.Reject` naming what is wrong with it."""
    bad = ~np.isfinite(output)
    if bad.any():
        i = int(np.argmax(bad))
        raise sb.Reject(f"output[{i}] is {output[i]} for input {data[i]!r}: write finite values")
    mse = float(np.mean((output - data) ** 2))
    zero = float(np.mean(data**2))
    if mse > zero:
        raise sb.Reject(
            f"mean squared error {mse:.4g} is worse than writing 0 everywhere ({zero:.4g}): "
            "each output must approximate its input"
        )
    levels = len(np.unique(output))
    return {"mse": mse, "bits": float(np.log2(levels)), "levels": float(levels)}


def evaluator(seed: int = 0) -> Callable[[sb.Functions], sb.Score]:
    data = samples(seed)

    def evaluate(fns: sb.Functions) -> sb.Score:
        output = np.full_like(data, np.nan)  # untouched entries show as not finite
        fns.quantize(data, output)
        m = measure(output, data)
        note = f"MSE {m['mse']:.4g} with {m['levels']:g} levels ({m['bits']:.2f} bits per value)"
        return sb.Score(m["mse"], metrics=m, feedback=note)

    return evaluate


def front(points: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The non-dominated points (both objectives minimised), by increasing bits."""
    pts = sorted(points, key=lambda p: (p["bits"], p["mse"]))
    kept: list[dict[str, Any]] = []
    for p in pts:
        if not kept or p["mse"] < kept[-1]["mse"]:
            kept.append(dict(p))
    return kept


def reaches_goal(points: Iterable[Mapping[str, Any]]) -> bool:
    return any(p["bits"] <= GOAL_BITS and p["mse"] <= GOAL_MSE for p in points)
