"""Evolve a physics step on a `#[repr(C)]` struct shared between Python and Rust.

`step(state: &mut GameState)` moves a ball in a box and bounces it off the walls. The struct is
declared once in Rust; `rt.types.GameState` is its Python side: records, and a numpy
structured dtype whose layout is checked against rustc's. The check steps eight balls through
1,000 steps each, in place in a structured array, against a numpy reference of the rules,
and names the first rule a candidate breaks (left the box, energy grew, wrong bounce count,
wrong reflection) with the states involved.

    python examples/structs/main.py [--rounds N] [--store runs.db] [--seed S]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from structs_task import GAME_STATE, STATES, STEPS, evaluator

import symbiont as sb

DECLARATION = (
    GAME_STATE
    + """
/// Advances the ball by one time step (see the task for the rules).
fn step(state: &mut GameState) {
    state.x += state.vx;
    state.y += state.vy;
}
"""
)

PROMPT = """Make `step` follow these rules exactly. One step:
1. moves the ball: x += vx, y += vy;
2. then, for each axis separately, if the ball is past a wall it bounces: the position is
   mirrored in that wall (x < 0 becomes -x; x > width becomes 2 * width - x; the same for y
   with height), the velocity component is reversed and scaled by restitution
   (vx = -vx * restitution), and bounces grows by 1 (hitting a corner counts 2).
A velocity component is always smaller than a quarter of the box, so one reflection per axis
is enough. width, height and restitution never change. The ball must never leave the box and
the kinetic energy vx^2 + vy^2 must never grow."""


def main(
    agent: sb.Agent | None = None,
    *,
    rounds: int = 3,
    attempts: int = 5,
    store: str | None = None,
    seed: int = 0,
    check_timeout: float = 10.0,
) -> int:
    rt = sb.Runtime(DECLARATION, check_timeout=check_timeout)
    agent = agent or sb.agent_from_env()
    try:
        run = rt.search(
            agent,
            PROMPT,
            evaluate=evaluator(rt.types.GameState.dtype, seed),
            strategy=sb.HillClimb(seed=seed),
            budget=sb.Budget(rounds=rounds, target=1.0),
            attempts_per_lane=attempts,
            store=store,
            on_event=sb.progress(),
        )
    except sb.EvolveError as exc:
        if not exc.fatal:
            raise
        print(f"stopped: {exc}", file=sys.stderr)
        return 2
    for h in run.history:
        if h.summary:
            print(f"round {h.round} attempt {h.attempt}: {h.summary}")
    if run.best is None:
        print(f"no revision follows the rules after {run.rounds} round(s)", file=sys.stderr)
        return 1
    print(f"revision {run.best.revision} follows the rules for {STATES} balls x {STEPS} steps")
    print(rt.code())
    ball: Any = rt.types.GameState(x=1.0, y=9.5, vx=-2.0, vy=1.0, width=10.0, height=10.0,
                              restitution=0.5, bounces=0)  # fmt: skip
    rt.fns.step(ball)  # a record: its fields are written back
    print(f"a ball at (1, 9.5) moving (-2, 1) in a 10 x 10 box, one step later: {ball}")
    print(f"run {run.name} is in {run.store}: `symbiont show {run.name}` tells its story")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--attempts", type=int, default=5, help="LLM requests per lane")
    parser.add_argument("--store", help="the run store (default: runs.db in the cache dir)")
    parser.add_argument("--seed", type=int, default=0, help="initial states' and strategy's seed")
    args = parser.parse_args()
    sys.exit(main(rounds=args.rounds, attempts=args.attempts, store=args.store, seed=args.seed))
