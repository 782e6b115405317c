"""Learn a surface from samples: `surface(x, y)` until the grid MSE is below 1e-10.

The model sees a fresh table of 50 random points of a hidden surface each round (the
Rastrigin function, never named) and the worst mismatches of the best code so far. Each
candidate is scored by its mean squared error over a 101 x 101 grid; code with more than 16
numeric literals is refused as a lookup table. The run stops when the MSE is below 1e-10.

    python examples/rastrigin/main.py [--rounds N] [--plot surface.png]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import symbiont as sb

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the evaluator lives beside this file
import surface as task

DECLARATION = """
/// The height of an unknown surface at (x, y), for x and y in [-5.12, 5.12].
fn surface(x: f64, y: f64) -> f64 {
    0.0
}
"""

TASK = (
    "Find the formula of the surface sampled below and implement `surface(x, y)` with it. "
    "A lookup table is refused (at most 16 numeric literals): derive the closed form."
)
PROMPT = TASK  # every example's main.py names its task as PROMPT

TARGET = 1e-10


def sampled_prompt(seed: int) -> Callable[[sb.PromptContext], str]:
    """The default prompt with this round's table of 50 fresh samples."""

    def build(ctx: sb.PromptContext) -> str:
        table = task.sample_table(seed, ctx.round)
        return f"{sb.default_prompt(ctx)}\n\nSamples of the surface for round {ctx.round}:\n{table}"

    return build


def plot(rt: sb.Runtime, path: str) -> None:
    """Truth and the best surface side by side over the grid, with their difference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    xs, ys, error = task.grid_errors(rt.map.surface)
    shape = (task.GRID.size, task.GRID.size)
    extent = (task.LOW, task.HIGH, task.LOW, task.HIGH)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, values, title in (
        (axes[0], task.truth(xs, ys), "truth"),
        (axes[1], task.truth(xs, ys) + error, f"best (revision {rt.active_revision})"),
        (axes[2], np.abs(error), "|best - truth|"),
    ):
        image = ax.imshow(values.reshape(shape), origin="lower", extent=extent, cmap="viridis")
        ax.set_title(title)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    print(f"plot written to {path}")


def main(
    agent: sb.Agent | None = None,
    *,
    rounds: int = 10,
    attempts: int = 3,
    seed: int = 0,
    store: str | None = None,
    plot_path: str | None = None,
) -> int:
    rt = sb.Runtime(DECLARATION)
    agent = agent or sb.agent_from_env()
    try:
        run = rt.search(
            agent,
            TASK,
            evaluate=task.evaluate,
            objective="mse",
            maximize=False,
            budget=sb.Budget(rounds=rounds, target=TARGET),
            attempts_per_lane=attempts,
            prompt=sampled_prompt(seed),
            store=store,
            on_event=sb.progress(),
        )
    except sb.EvolveError as exc:
        if not exc.fatal:
            raise
        # A bad key or an unknown model: another round cannot help.
        print(f"stopped: {exc}", file=sys.stderr)
        return 2
    assert run.best is not None  # the seed (0.0 everywhere) always scores
    best = run.best
    print(f"stopped by {run.stop_reason} after {run.rounds} round(s), {run.attempts} request(s)")
    print(f"best: revision {best.revision}, grid MSE {best.score:.3g}")
    print(rt.code())
    if plot_path:
        plot(rt, plot_path)
    print(f"run {run.name} is in {run.store}: `symbiont show {run.name}` tells its story")
    return 0 if best.score < TARGET else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--attempts", type=int, default=3, help="replies per round")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample tables")
    parser.add_argument("--store", help="the run store (default: runs.db in the cache dir)")
    parser.add_argument("--plot", metavar="PNG", help="draw truth against the best surface")
    args = parser.parse_args()
    sys.exit(
        main(
            rounds=args.rounds,
            attempts=args.attempts,
            seed=args.seed,
            store=args.store,
            plot_path=args.plot,
        )
    )
