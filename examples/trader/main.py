"""Evolve a trading rule in Rust on real market data, backtested in backtesting.py.

`decide(candles: &[Candle], account: &Account) -> Action` returns Hold, Buy { qty } or
Sell { qty }. Each candidate trades the first 70% of the candles inside backtesting.py (its
commission, its statistics); the score is the return. The best revision and a majority-vote
ensemble of the best three (pinned revisions) are then run on the 30% held out.

The data comes from the `backtesting` package (AGPL-3.0), an optional extra of this example:
    pip install 'symbiont[trader]'                   # or: pip install backtesting
    python examples/trader/main.py [--data GOOG] [--rounds N]   # or: symbiont example trader
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

import symbiont as sb


def _load_task() -> Any:
    """examples/trader/task.py, under a name of its own (every example has a task.py)."""
    name = "symbiont_example_trader_task"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("task.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while building the class
        spec.loader.exec_module(module)
    return sys.modules[name]


task = _load_task()
DECLARATION = task.DECLARATION  # every example's main.py names what it evolves
PROMPT = task.TASK

HEADER = f"{'':24} {'return':>9} {'buy&hold':>9} {'max DD':>8} {'Sharpe':>6} {'trades':>6}"


def rank(rt: sb.Runtime, train: Any) -> list[tuple[float, int]]:
    """(train return, revision) for every revision that trades without error, best first."""
    scored = []
    for revision in rt.revisions:
        try:
            r = task.backtest(rt, rt.revision(revision.number).fns.decide, train)
        except (sb.Reject, sb.PanicError, sb.TimeoutError):
            continue
        scored.append((r.return_pct, revision.number))
    return sorted(scored, reverse=True)


def plot(path: Path, curves: dict[str, Any], title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for label, equity in curves.items():
        ax.plot(equity.index, equity.to_numpy() / equity.iloc[0], label=label)
    ax.set_title(title)
    ax.set_ylabel("equity (start = 1)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(
    agent: sb.Agent | None = None,
    *,
    data: str = "GOOG",
    rounds: int = 3,
    attempts: int = 5,
    store: str | None = None,
    plot_path: str | None = "trader.png",
    call_timeout: float = 1.0,
) -> int:
    if not task.backtesting_available():
        print(task.INSTALL_HINT)
        return 0
    train, held_out = task.load(data)
    # A decision takes microseconds: a second per call is a generous deadline for a loop.
    rt = sb.Runtime(task.DECLARATION, check_timeout=call_timeout)
    agent = agent or sb.agent_from_env()
    try:
        run = rt.search(
            agent,
            task.TASK,
            evaluate=task.evaluator(rt, train),
            budget=sb.Budget(rounds=rounds),
            attempts_per_lane=attempts,
            store=store,
            on_event=sb.progress(),
        )
    except sb.EvolveError as exc:
        if not exc.fatal:
            raise
        print(f"stopped: {exc}", file=sys.stderr)
        return 2
    for entry in run.history:
        if entry.failure_kind is not None:
            print(f"round {entry.round} attempt {entry.attempt}: rejected ({entry.summary})")
    ranked = rank(rt, train)
    best = ranked[0][1]
    top = [n for _, n in ranked[:3]]
    print(f"{data}: {len(train)} candles to train, {len(held_out)} held out; "
          f"best revision {best}, ensemble of revisions {', '.join(map(str, top))}")  # fmt: skip
    print(rt.code(best))
    print(HEADER)
    curves = {}
    rows = [
        (f"revision {best} (train)", rt.revision(best).fns.decide, train),
        (f"revision {best} (held out)", rt.revision(best).fns.decide, held_out),
        ("ensemble (train)", task.ensemble(rt, top), train),
        ("ensemble (held out)", task.ensemble(rt, top), held_out),
    ]
    for label, decide, frame in rows:
        result = task.backtest(rt, decide, frame)
        print(f"{label:24} {result.row()}")
        if "held out" in label:
            curves[label.removesuffix(" (held out)")] = result.equity
    closes = held_out["Close"]
    curves["buy and hold"] = closes / closes.iloc[0]
    if plot_path and plot(Path(plot_path), curves, f"{data}, held-out 30%: equity"):
        print(f"equity curves: {plot_path}")
    print(f"run {run.name} is in {run.store}: `symbiont show {run.name}` tells its story")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=task.DATASETS, default="GOOG")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--attempts", type=int, default=5)
    parser.add_argument("--store", default=None, help="the run store (default: the cache dir)")
    parser.add_argument("--plot", default="trader.png", help="equity curve PNG ('' for none)")
    args = parser.parse_args()
    sys.exit(
        main(
            data=args.data,
            rounds=args.rounds,
            attempts=args.attempts,
            store=args.store,
            plot_path=args.plot,
        )
    )
