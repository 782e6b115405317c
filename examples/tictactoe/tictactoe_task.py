"""The tic-tac-toe evaluator: three opponents in Python, 100 games each, alternating sides.

The board is 9 bytes, row by row: 0 empty, 1 X, 2 O; X moves first. A candidate's
`choose_move(board, player)` returns the index of the square it takes. An illegal answer (out of
range or a taken square) or a panic forfeits the game; a timeout is not caught here, so the
search records it as a failure of the whole candidate.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache

import symbiont as sb

LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))
GAMES = 100
OPPONENTS = ("random", "heuristic", "minimax")

Board = tuple[int, ...]
Player = Callable[[Board, int], int]


def winner(board: Sequence[int]) -> int:
    """1 or 2 for a completed line, 0 otherwise."""
    for a, b, c in LINES:
        if board[a] and board[a] == board[b] == board[c]:
            return board[a]
    return 0


def empty(board: Sequence[int]) -> list[int]:
    return [i for i, v in enumerate(board) if v == 0]


@cache
def minimax(board: Board, player: int) -> tuple[int, tuple[int, ...]]:
    """The value of the position for `player` to move (1 win, 0 draw, -1 loss) and every move
    that reaches it. Memoised: tic-tac-toe has 5,478 reachable positions."""
    if winner(board):
        return -1, ()  # the previous move won
    moves = empty(board)
    if not moves:
        return 0, ()
    best, best_moves = -2, []
    for m in moves:
        child = (*board[:m], player, *board[m + 1 :])
        value = -minimax(child, 3 - player)[0]
        if value > best:
            best, best_moves = value, [m]
        elif value == best:
            best_moves.append(m)
    return best, tuple(best_moves)


def random_player(rng: random.Random) -> Player:
    return lambda board, player: rng.choice(empty(board))


def heuristic_player(rng: random.Random) -> Player:
    """Wins when it can, blocks when it must, else centre, a corner, any square."""

    def play(board: Board, player: int) -> int:
        for who in (player, 3 - player):
            for m in empty(board):
                if winner((*board[:m], who, *board[m + 1 :])) == who:
                    return m
        for group in ((4,), (0, 2, 6, 8), (1, 3, 5, 7)):
            free = [m for m in group if board[m] == 0]
            if free:
                return rng.choice(free)
        raise AssertionError("no move on a full board")

    return play


def minimax_player(rng: random.Random) -> Player:
    """Perfect play, a random choice among the best moves so that the games differ."""
    return lambda board, player: rng.choice(minimax(board, player)[1])


OPPONENT_FACTORIES: dict[str, Callable[[random.Random], Player]] = {
    "random": random_player,
    "heuristic": heuristic_player,
    "minimax": minimax_player,
}


@dataclass
class Tally:
    """One opponent's 100 games from the candidate's side."""

    wins: int = 0
    draws: int = 0
    losses: int = 0
    forfeits: int = 0
    first_forfeit: str | None = None
    lost_game: list[int] = field(default_factory=list)  # the moves of the first game lost

    @property
    def points(self) -> float:
        return self.wins + 0.5 * self.draws


def play_game(
    candidate: Callable[[bytes, int], int], opponent: Player, cand: int
) -> tuple[int, str | None, list[int]]:
    """Plays one game with the candidate as `cand` (1: X, moves first). Returns the winner
    (0: draw), the forfeit reason if the candidate forfeited, and the moves."""
    board: list[int] = [0] * 9
    moves: list[int] = []
    player = 1
    while not winner(board) and empty(board):
        if player == cand:
            try:
                m = candidate(bytes(board), player)
            except sb.PanicError as exc:
                return 3 - cand, f"panicked: {exc}", moves
            if not 0 <= m < 9 or board[m] != 0:
                why = "is out of range" if not 0 <= m < 9 else "is taken"
                return 3 - cand, f"returned {m} on board {board} as player {player}: {why}", moves
        else:
            m = opponent(tuple(board), player)
        board[m] = player
        moves.append(m)
        player = 3 - player
    return winner(board), None, moves


def tournament(
    candidate: Callable[[bytes, int], int], *, seed: int = 0, games: int = GAMES
) -> dict[str, Tally]:
    """`games` games against each opponent, the candidate X in the even ones."""
    result = {}
    for k, name in enumerate(OPPONENTS):
        rng = random.Random(seed * 1000 + k)
        opponent = OPPONENT_FACTORIES[name](rng)
        tally = Tally()
        for g in range(games):
            cand = 1 if g % 2 == 0 else 2
            won, forfeit, moves = play_game(candidate, opponent, cand)
            if forfeit is not None:
                tally.forfeits += 1
                tally.first_forfeit = tally.first_forfeit or forfeit
            if won == cand:
                tally.wins += 1
            elif won == 0:
                tally.draws += 1
            else:
                tally.losses += 1
                if not tally.lost_game and forfeit is None:
                    tally.lost_game = [cand, *moves]
        result[name] = tally
    return result


def describe(name: str, t: Tally) -> str:
    text = f"vs {name}: {t.wins} won, {t.draws} drawn, {t.losses} lost ({t.points:g} points)"
    if t.forfeits:
        text += f", {t.forfeits} forfeited (first: {t.first_forfeit})"
    if t.lost_game:
        side = "X" if t.lost_game[0] == 1 else "O"
        text += f"; e.g. lost as {side} with the moves {t.lost_game[1:]}"
    return text


def evaluator(seed: int = 0, games: int = GAMES) -> Callable[[sb.Functions], sb.Score]:
    """The search's evaluator: the score is the share of points over all games (1.0: every
    game won, which nobody can do against minimax; a plain minimax player scores 0.652)."""

    def evaluate(fns: sb.Functions) -> sb.Score:
        tallies = tournament(fns.choose_move, seed=seed, games=games)
        total = len(OPPONENTS) * games
        if sum(t.forfeits for t in tallies.values()) == total:
            first = tallies["random"].first_forfeit
            raise sb.Reject(f"every game was forfeited; the first: {first}")
        points = sum(t.points for t in tallies.values())
        metrics = {f"{n}_points": t.points for n, t in tallies.items()}
        metrics["forfeits"] = sum(t.forfeits for t in tallies.values())
        feedback = "\n".join(describe(n, t) for n, t in tallies.items())
        return sb.Score(points / total, metrics=metrics, feedback=feedback)

    return evaluate
