"""Evolve a fast sort from bubble sort: `sort(data: &mut [f64])` on six distributions.

Each candidate sorts 10,000 values of six distributions (uniform, normal, sorted, reversed,
few unique, nearly sorted), checked against numpy.sort, then timed (median of 21 runs with
sb.measure). Its score is the geometric mean of numpy.sort's time over its own. std's sorts
are refused (the code is scanned for them), `unsafe` by the policy. The end: a table of the
speedup per distribution against the default, sorted() and numpy.sort.

    python examples/sort/main.py [--rounds N] [--size 10000] [--runs 21]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import symbiont as sb

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the evaluator lives beside this file
import sorting as task

DECLARATION = task.DEFAULT  # the default, with its doc comment

TASK = (
    "Make `sort` as fast as possible on 10,000 f64 values (uniform, normal, already sorted, "
    "reversed, few distinct values, nearly sorted). std's sort, sort_unstable, sort_by, "
    "select_nth_unstable and their kin are refused: write the algorithm yourself."
)
PROMPT = TASK  # every example's main.py names its task as PROMPT


def main(
    agent: sb.Agent | None = None,
    *,
    rounds: int = 5,
    attempts: int = 3,
    seed: int = 0,
    size: int = task.N,
    runs: int = task.RUNS,
    store: str | None = None,
    call_timeout: float = 10.0,
) -> int:
    rt = sb.Runtime(DECLARATION, check_timeout=call_timeout)
    agent = agent or sb.agent_from_env()
    try:
        run = rt.search(
            agent,
            TASK,
            evaluate=task.make_evaluator(size, runs, seed),
            objective="vs_numpy",
            budget=sb.Budget(rounds=rounds),
            attempts_per_lane=attempts,
            # Bubble sort takes ~30 s for its 6 x 22 timed sorts of 10,000 values.
            evaluate_timeout=300,
            store=store,
            on_event=sb.progress(),
        )
    except sb.EvolveError as exc:
        if not exc.fatal:
            raise
        # A bad key or an unknown model: another round cannot help.
        print(f"stopped: {exc}", file=sys.stderr)
        return 2
    if run.best is None:
        print("no revision sorts correctly", file=sys.stderr)
        return 1
    best = run.best
    print(f"stopped by {run.stop_reason} after {run.rounds} round(s), {run.attempts} request(s)")
    print(f"best: revision {best.revision}, {best.score:.3g}x numpy.sort (geometric mean)")
    print(rt.code())
    sorts = {"default": rt.revision(0).fns.sort, f"revision {best.revision}": rt.fns.sort}
    print(task.speed_table(sorts, task.datasets(size, seed), runs))
    print(f"run {run.name} is in {run.store}: `symbiont show {run.name}` tells its story")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--attempts", type=int, default=3, help="replies per round")
    parser.add_argument("--seed", type=int, default=0, help="seed of the datasets")
    parser.add_argument("--size", type=int, default=task.N, help="values per distribution")
    parser.add_argument("--runs", type=int, default=task.RUNS, help="timed runs (median)")
    parser.add_argument("--store", help="the run store (default: runs.db in the cache dir)")
    args = parser.parse_args()
    sys.exit(
        main(
            rounds=args.rounds,
            attempts=args.attempts,
            seed=args.seed,
            size=args.size,
            runs=args.runs,
            store=args.store,
        )
    )
