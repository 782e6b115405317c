"""Eight lanes race to count primes: `count_primes_below(n)` from naive trial division.

Each round runs eight concurrent lanes from the best revision, each with its own strategy
hint (trial division to the square root, a sieve, an odd-only sieve, a segmented sieve, a
wheel, a bitset sieve, ...). A candidate must match a numpy sieve on 15 values of n and is
scored by its time at n = 50,000 (lower is better). At the end every lane's best revision is
timed again through a pinned handle (`rt.revision(n).fns`, unaffected by activations), one
table row per lane, and the fastest is activated.

    python examples/primes/main.py [--rounds N] [--lanes 8] [--limit 50000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import symbiont as sb

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the evaluator lives beside this file
import counting as task

DECLARATION = task.DEFAULT  # the default, with its doc comment

TASK = "Make `count_primes_below` as fast as possible; it must stay exact for every n."
PROMPT = TASK  # every example's main.py names its task as PROMPT


def compare_lanes(rt: sb.Runtime, run: sb.SearchRun, limit: int) -> tuple[str, int]:
    """Times each lane's best revision through its pinned handle; returns the table and the
    runtime revision of the fastest (the default included)."""
    runtime_of = {r.code: r.number for r in rt.revisions}
    hints = task.settings_hints(run.store, run.name)
    default = rt.revision(0).fns.count_primes_below
    base = task.seconds(default, limit)
    rows = [["lane", "hint", "revision", "ms", "vs default"]]
    rows.append(["-", "(the default)", "0", f"{base * 1e3:.4g}", "1.0x"])
    fastest, fastest_seconds = 0, base
    for lane, (number, code, _) in sorted(task.lane_bests(run.store, run.name).items()):
        pinned = rt.revision(runtime_of[code]).fns.count_primes_below
        task.check(pinned, limit)
        took = task.seconds(pinned, limit)
        hint = hints[lane % len(hints)] if hints else ""
        rows.append([str(lane), hint, str(number), f"{took * 1e3:.4g}", f"{base / took:.1f}x"])
        if took < fastest_seconds:
            fastest, fastest_seconds = runtime_of[code], took
    return task.markdown(rows), fastest


def main(
    agent: sb.Agent | None = None,
    *,
    rounds: int = 2,
    lanes: int = 8,
    attempts: int = 2,
    limit: int = task.LIMIT,
    store: str | None = None,
    seed: int = 0,
    call_timeout: float = 10.0,
) -> int:
    rt = sb.Runtime(DECLARATION, check_timeout=call_timeout)
    agent = agent or sb.agent_from_env()
    try:
        run = rt.search(
            agent,
            TASK,
            evaluate=task.make_evaluator(limit),
            objective="ms",
            maximize=False,
            strategy=sb.Lanes(lanes, hints=task.HINTS, seed=seed),
            budget=sb.Budget(rounds=rounds),
            attempts_per_lane=attempts,
            evaluate_timeout=300,  # the naive default needs ~10 s for its timed calls
            store=store,
            on_event=sb.progress(),
        )
    except sb.EvolveError as exc:
        if not exc.fatal:
            raise
        # A bad key or an unknown model: the other lanes are stopped too.
        print(f"stopped: {exc}", file=sys.stderr)
        return 2
    print(f"stopped by {run.stop_reason} after {run.rounds} round(s), {run.attempts} request(s)")
    table, fastest = compare_lanes(rt, run, limit)
    print(table)
    rt.activate(fastest)
    print(f"activated revision {fastest}: count_primes_below({limit}) = "
          f"{rt.fns.count_primes_below(limit)}")  # fmt: skip
    print(rt.code())
    print(f"run {run.name} is in {run.store}: `symbiont show {run.name}` tells its story")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--lanes", type=int, default=8, help="concurrent lanes per round")
    parser.add_argument("--attempts", type=int, default=2, help="replies per lane and round")
    parser.add_argument("--limit", type=int, default=task.LIMIT, help="the n timed")
    parser.add_argument("--seed", type=int, default=0, help="seed of the strategy")
    parser.add_argument("--store", help="the run store (default: runs.db in the cache dir)")
    args = parser.parse_args()
    sys.exit(
        main(
            rounds=args.rounds,
            lanes=args.lanes,
            attempts=args.attempts,
            limit=args.limit,
            seed=args.seed,
            store=args.store,
        )
    )
