"""Evolve a tic-tac-toe player against random, heuristic and perfect (minimax) opponents.

`choose_move(board, player)` starts as "take the first empty square". Each candidate plays 100
games against each opponent, alternating sides (win 1, draw 0.5; an illegal move or a panic
forfeits the game); its share of the points is the score, and the per-opponent results go back
to the LLM. A table per round shows how the best player does against each opponent.

    python examples/tictactoe/main.py [--rounds N] [--store runs.db] [--seed S]
    symbiont example tictactoe -- --rounds 5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tictactoe_task import GAMES, OPPONENTS, evaluator

import symbiont as sb

DECLARATION = """
/// Chooses a move in tic-tac-toe. `board` holds 9 squares row by row (index 0 is the top left,
/// 8 the bottom right): 0 empty, 1 X, 2 O. `player` (1 or 2) is the side to move. Returns the
/// index of an empty square; a taken or out-of-range square, or a panic, loses the game.
fn choose_move(board: &[u8], player: u8) -> usize {
    board.iter().position(|&v| v == 0).unwrap_or(0)
}
"""

PROMPT = (
    "Make choose_move play tic-tac-toe as well as possible: it plays 100 games against each of "
    "a random player, a heuristic player (wins, blocks, centre, corners) and a perfect minimax "
    "player, alternating who starts. A win counts 1, a draw 0.5. Never lose to the perfect "
    "player: with perfect play every game against it is a draw."
)


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
    scored: list[dict[str, Any]] = []  # every scored revision, for the table per round
    progress = sb.progress()

    def on_event(event: sb.Event) -> None:
        if event.kind == "revision":
            scored.append({"round": event.round, **event.data})
        progress(event)

    try:
        run = rt.search(
            agent,
            PROMPT,
            evaluate=evaluator(seed=seed),
            strategy=sb.HillClimb(seed=seed),
            budget=sb.Budget(rounds=rounds, patience=3),
            attempts_per_lane=attempts,
            store=store,
            on_event=on_event,
        )
    except sb.EvolveError as exc:
        if not exc.fatal:
            raise
        print(f"stopped: {exc}", file=sys.stderr)
        return 2
    print(table(scored))
    if run.best is None:
        print("no revision scored", file=sys.stderr)
        return 1
    best = run.best
    print(f"best: revision {best.revision}, {best.score:.3f} of the points ({run.stop_reason})")
    if best.metrics.get("minimax_points") == GAMES / 2 and not best.metrics.get("forfeits"):
        print("unbeaten by the perfect player")
    print(rt.code())
    print(f"run {run.name} is in {run.store}: `symbiont show {run.name}` tells its story")
    return 0


def table(scored: list[dict[str, Any]]) -> str:
    """The best revision of each round (by score) and its points per opponent."""
    head = f"{'round':>5} {'rev':>4} " + " ".join(f"{o:>10}" for o in OPPONENTS)
    lines = [head + f" {'forfeits':>8} {'score':>6}"]
    for r in sorted({s["round"] for s in scored}):
        best = max((s for s in scored if s["round"] == r), key=lambda s: s["score"])
        m = best["metrics"]
        cells = " ".join(f"{m[o + '_points']:>10g}" for o in OPPONENTS)
        lines.append(
            f"{r:>5} {best['revision']:>4} {cells} {m['forfeits']:>8g} {best['score']:>6.3f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--attempts", type=int, default=5, help="LLM requests per lane")
    parser.add_argument("--store", help="the run store (default: runs.db in the cache dir)")
    parser.add_argument("--seed", type=int, default=0, help="opponents' and strategy's seed")
    args = parser.parse_args()
    sys.exit(main(rounds=args.rounds, attempts=args.attempts, store=args.store, seed=args.seed))
