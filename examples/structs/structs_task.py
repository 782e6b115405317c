"""The rules of the bouncing ball and the check that holds a candidate to them, step by step.

A `GameState` is a ball in the box [0, width] x [0, height]. One `step`:

1. moves the ball by its velocity: x += vx, y += vy;
2. for each axis, if the ball left the box past a wall, reflects it: the position is mirrored
   in that wall (x < 0 becomes -x; x > width becomes 2 * width - x), the velocity component
   reverses and is scaled by `restitution` (vx = -vx * restitution), and `bounces` grows by one
   (a corner counts twice).

Velocities are below a quarter of the box, so a step crosses at most one wall per axis. It
follows that the ball never leaves the box, that the kinetic energy vx^2 + vy^2 changes only
at a bounce, and then never grows (it is kept exactly when restitution is 1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import symbiont as sb

STEPS = 1_000
STATES = 8
TOLERANCE = 1e-6  # equivalent formulations round differently; the rule is linear, errors stay small

GAME_STATE = """
/// A ball in the box [0, width] x [0, height].
#[repr(C)]
struct GameState {
    x: f64,
    y: f64,
    vx: f64,
    vy: f64,
    width: f64,
    height: f64,
    /// The share of the velocity component kept at a bounce, in (0, 1].
    restitution: f64,
    bounces: u32,
}
"""


def initial_states(dtype: np.dtype, seed: int = 0, n: int = STATES) -> np.ndarray:
    """`n` balls in boxes of different sizes; half of them bounce elastically."""
    rng = np.random.default_rng(seed)
    s = np.zeros(n, dtype=dtype)
    s["width"] = rng.uniform(5.0, 20.0, n)
    s["height"] = rng.uniform(5.0, 20.0, n)
    s["x"] = rng.uniform(0.0, 1.0, n) * s["width"]
    s["y"] = rng.uniform(0.0, 1.0, n) * s["height"]
    s["vx"] = rng.uniform(-0.24, 0.24, n) * s["width"]
    s["vy"] = rng.uniform(-0.24, 0.24, n) * s["height"]
    s["restitution"] = np.where(np.arange(n) % 2 == 0, 1.0, rng.uniform(0.5, 0.99, n))
    return s


def reference_step(s: np.ndarray) -> None:
    """One step of the rules above on every state of a structured array, in place."""
    s["x"] += s["vx"]
    s["y"] += s["vy"]
    for p, v, size in (("x", "vx", "width"), ("y", "vy", "height")):
        low, high = s[p] < 0.0, s[p] > s[size]
        s[p] = np.where(low, -s[p], np.where(high, 2.0 * s[size] - s[p], s[p]))
        hit = low | high
        s[v] = np.where(hit, -s[v] * s["restitution"], s[v])
        s["bounces"] += hit.astype(np.uint32)


def energy(s: np.ndarray) -> np.ndarray:
    return np.asarray(s["vx"] ** 2 + s["vy"] ** 2)


def fmt(row: np.ndarray) -> str:
    return (f"x={row['x']:.6g}, y={row['y']:.6g}, vx={row['vx']:.6g}, vy={row['vy']:.6g}, "
            f"bounces={row['bounces']}")  # fmt: skip


def diagnose(step: int, before: np.ndarray, got: np.ndarray, want: np.ndarray) -> str:
    """Names the first rule a state broke at `step`, with the states involved."""
    box = f"box {before['width']:.6g} x {before['height']:.6g}"
    where = f"step {step} from {fmt(before)} in the {box}, restitution {before['restitution']:.6g}"
    if not (0.0 <= got["x"] <= got["width"] and 0.0 <= got["y"] <= got["height"]):
        rule = "the ball left the box"
    elif energy(got) > energy(before) * (1 + 1e-12) + 1e-12:
        rule = "the kinetic energy vx^2 + vy^2 grew"
    elif got["width"] != before["width"] or got["height"] != before["height"]:
        rule = "the box changed (width and height must stay as they are)"
    elif got["bounces"] != want["bounces"]:
        rule = "the bounce count is wrong (one per wall hit)"
    else:
        rule = "the new state does not follow the rules"
    return f"{rule} at {where}: got {fmt(got)}, expected {fmt(want)}"


def evaluator(dtype: np.dtype, seed: int = 0) -> Callable[[sb.Functions], float]:
    """Steps every initial state 1,000 times through the candidate and the reference, comparing
    each step; the first difference rejects the candidate with the rule it broke."""
    start = initial_states(dtype, seed)

    def evaluate(fns: sb.Functions) -> float:
        got, want = start.copy(), start.copy()
        for step in range(1, STEPS + 1):
            before = got.copy()
            for i in range(len(got)):
                fns.step(got[i : i + 1])  # a 1-element structured array: written in place
            reference_step(want)
            for i in range(len(got)):
                g, w = got[i], want[i]
                same = g["bounces"] == w["bounces"] and all(
                    abs(g[f] - w[f]) <= TOLERANCE * max(1.0, abs(w[f]))
                    for f in ("x", "y", "vx", "vy", "width", "height", "restitution")
                )
                if not same:
                    raise sb.Reject(diagnose(step, before[i], g, w))
            got = want.copy()  # each step starts from the exact state, so errors never pile up
        return 1.0

    return evaluate
