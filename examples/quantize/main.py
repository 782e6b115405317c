"""Evolve a scalar quantizer for Laplacian data toward two objectives at once.

`quantize(input, output)` starts as rounding to the nearest integer. Each candidate runs on
10,000 Laplacian samples and is measured twice: its mean squared error and the number of
distinct values it writes (as bits per value). The Pareto strategy keeps the non-dominated
quantizers and starts each lane from one of them; the front after each round is printed and,
with --plot, drawn.

    python examples/quantize/main.py [--rounds N] [--store runs.db] [--seed S] [--plot front.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quantize_task import GOAL_BITS, GOAL_MSE, OBJECTIVES, evaluator, front, reaches_goal

import symbiont as sb

DECLARATION = """
/// Quantizes each input value: writes to output[i] the level chosen for input[i]. The inputs
/// are Laplacian (centred on 0, scale 1). Both slices have the same length.
fn quantize(input: &[f64], output: &mut [f64]) {
    for (o, x) in output.iter_mut().zip(input) {
        *o = x.round();
    }
}
"""

PROMPT = (
    "Improve quantize, a scalar quantizer for Laplacian data (mean 0, scale 1, variance 2). "
    "Two objectives, both lower is better: the mean squared error between output and input, and "
    f"the number of distinct output values (bits per value = log2 of it). Aim for at most "
    f"{2 ** int(GOAL_BITS)} levels with an error below {GOAL_MSE}, and explore other trade-offs "
    "(fewer levels, or lower error). Use fixed levels and thresholds (a Lloyd-Max design), not "
    "values computed from the input."
)


def main(
    agent: sb.Agent | None = None,
    *,
    rounds: int = 3,
    attempts: int = 5,
    lanes: int = 1,
    store: str | None = None,
    seed: int = 0,
    plot: str | None = None,
) -> int:
    rt = sb.Runtime(DECLARATION)
    agent = agent or sb.agent_from_env()
    scored: list[dict[str, Any]] = []
    progress = sb.progress()

    def on_event(event: sb.Event) -> None:
        if event.kind == "revision":
            scored.append({"round": event.round, "revision": event.data["revision"],
                           **event.data["metrics"]})  # fmt: skip
        progress(event)

    try:
        run = rt.search(
            agent,
            PROMPT,
            evaluate=evaluator(seed),
            strategy=sb.Pareto(OBJECTIVES, lanes=lanes, seed=seed),
            objective="mse",
            maximize=False,
            budget=sb.Budget(rounds=rounds),
            attempts_per_lane=attempts,
            store=store,
            on_event=on_event,
        )
    except sb.EvolveError as exc:
        if not exc.fatal:
            raise
        print(f"stopped: {exc}", file=sys.stderr)
        return 2
    fronts = fronts_per_round(scored, run.rounds)
    for r, pts in fronts.items():
        cells = ", ".join(f"rev {p['revision']}: {p['levels']:g} levels, MSE {p['mse']:.4f}"
                          for p in pts)  # fmt: skip
        print(f"front after round {r}: {cells}")
    if plot and fronts:
        draw(fronts, plot)
        print(f"front per round drawn in {plot}")
    if reaches_goal(scored):
        print(f"goal reached: at most {GOAL_BITS:g} bits per value with MSE <= {GOAL_MSE}")
    else:
        print(f"goal (at most {GOAL_BITS:g} bits per value, MSE <= {GOAL_MSE}) not reached")
    print(f"run {run.name} is in {run.store}: `symbiont show {run.name}` tells its story")
    return 0


def fronts_per_round(scored: list[dict[str, Any]], rounds: int) -> dict[int, list[dict[str, Any]]]:
    """The front of everything scored up to and including each round (0: the seed)."""
    return {r: front(s for s in scored if s["round"] <= r) for r in range(rounds + 1)}


def draw(fronts: dict[int, list[dict[str, Any]]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r, pts in fronts.items():
        ax.step([p["bits"] for p in pts], [p["mse"] for p in pts], where="post",
                marker="o", label=f"after round {r}")  # fmt: skip
    ax.axvline(GOAL_BITS, color="grey", lw=0.5)
    ax.axhline(GOAL_MSE, color="grey", lw=0.5)
    ax.set_xlabel("bits per value (log2 of distinct levels)")
    ax.set_ylabel("mean squared error")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("quantize: the Pareto front per round")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--attempts", type=int, default=5, help="LLM requests per lane")
    parser.add_argument("--lanes", type=int, default=1, help="lanes per round")
    parser.add_argument("--store", help="the run store (default: runs.db in the cache dir)")
    parser.add_argument("--seed", type=int, default=0, help="samples' and strategy's seed")
    parser.add_argument("--plot", help="draw the front per round into this PNG")
    args = parser.parse_args()
    sys.exit(main(rounds=args.rounds, attempts=args.attempts, lanes=args.lanes,
                  store=args.store, seed=args.seed, plot=args.plot))  # fmt: skip
