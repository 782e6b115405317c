"""The rastrigin task: the hidden surface, the sample tables, the lookup-table check and the
grid evaluator. Importable on its own (the example's test drives it with hand-written Rust)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

import symbiont as sb

LOW, HIGH = -5.12, 5.12
MAX_LITERALS = 16
# The grid the score is measured on: 101 x 101 points over the whole domain.
GRID = np.linspace(LOW, HIGH, 101)


def truth(x: Any, y: Any) -> Any:
    """The Rastrigin function in two dimensions, which the model never sees as a formula."""
    return 20.0 + x**2 - 10.0 * np.cos(2 * np.pi * x) + y**2 - 10.0 * np.cos(2 * np.pi * y)


def sample_table(seed: int, round_: int, n: int = 50) -> str:
    """A fresh table of ``n`` random points for one round: the model's only view of the
    surface, so a different table each round shows it new evidence."""
    rng = np.random.default_rng([seed, round_])
    # Rounded before the heights are computed, so every row is exact as printed.
    xs, ys = (np.round(rng.uniform(LOW, HIGH, n), 4) for _ in range(2))
    rows = [f"{x:+.4f} {y:+.4f} -> {z:.9f}" for x, y, z in zip(xs, ys, truth(xs, ys), strict=True)]
    return "x y -> surface(x, y)\n" + "\n".join(rows)


_COMMENT_OR_STRING = re.compile(r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\])*\"", re.DOTALL)
# Rust numeric literals: decimal, hex, octal or binary integers and floats, with an optional
# exponent and type suffix; a tuple index such as `.0` after an identifier is not one.
_NUMBER = re.compile(
    r"(?<![\w.])(?:0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+|\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?)"
    r"(?:_?(?:f32|f64|[iu](?:8|16|32|64|128|size)))?"
)


def numeric_literals(code: str) -> list[str]:
    """The numeric literals of ``code``, comments and strings left out."""
    return _NUMBER.findall(_COMMENT_OR_STRING.sub(" ", code))


def grid_errors(surface: Callable[[Any, Any], Any]) -> tuple[Any, Any, Any]:
    """``(xs, ys, error)`` over the grid for a vectorised ``surface(xs, ys)``."""
    xs, ys = (a.ravel() for a in np.meshgrid(GRID, GRID))
    return xs, ys, np.asarray(surface(xs, ys), dtype=float) - truth(xs, ys)


def evaluate(fns: sb.Functions, maps: Any) -> sb.Score:
    """The grid MSE (lower is better), with the worst mismatches as feedback. Code with more
    than 16 numeric literals is refused: it would be a lookup table, not the surface."""
    literals = numeric_literals(sb.code_of(fns))
    if len(literals) > MAX_LITERALS:
        raise sb.Reject(
            f"the code has {len(literals)} numeric literals (at most {MAX_LITERALS}): find the "
            "formula behind the samples instead of tabulating them"
        )
    xs, ys, error = grid_errors(maps.surface)
    if not np.all(np.isfinite(error)):
        i = int(np.flatnonzero(~np.isfinite(error))[0])
        raise sb.Reject(f"surface({xs[i]:.4f}, {ys[i]:.4f}) is not a finite number")
    mse = float(np.mean(error**2))
    worst = np.argsort(-np.abs(error))[:5]
    lines = [
        f"surface({xs[i]:+.4f}, {ys[i]:+.4f}) = {error[i] + truth(xs[i], ys[i]):.6f}, "
        f"expected {truth(xs[i], ys[i]):.6f}"
        for i in worst
    ]
    return sb.Score(
        mse,
        metrics={"max_error": float(np.max(np.abs(error)))},
        feedback=f"grid MSE {mse:.6g}; the worst mismatches:\n" + "\n".join(lines),
    )
