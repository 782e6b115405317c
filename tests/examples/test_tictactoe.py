"""The tic-tac-toe example: its evaluator on hand-written Rust players, and the whole example
driven by a scripted agent through bad players (rejected with the reason) to a perfect one."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

import pytest

import symbiont as sb
from symbiont._cli import examples_dir
from symbiont.testing import ScriptedAgent

sys.path.insert(0, str(examples_dir() / "tictactoe"))
import tictactoe_task as task

PERFECT = """
fn choose_move(board: &[u8], player: u8) -> usize {
    fn won(b: &[u8; 9], p: u8) -> bool {
        const L: [[usize; 3]; 8] = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6],
                                    [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]];
        L.iter().any(|l| l.iter().all(|&i| b[i] == p))
    }
    fn value(b: &mut [u8; 9], p: u8) -> i32 {
        if won(b, 3 - p) { return -1; }
        let mut best = -2;
        let mut any = false;
        for i in 0..9 {
            if b[i] != 0 { continue; }
            any = true;
            b[i] = p;
            let v = -value(b, 3 - p);
            b[i] = 0;
            if v > best { best = v; }
        }
        if any { best } else { 0 }
    }
    let mut b = [0u8; 9];
    b.copy_from_slice(&board[..9]);
    let (mut best, mut pick) = (-2, 9);
    for i in 0..9 {
        if b[i] != 0 { continue; }
        b[i] = player;
        let v = -value(&mut b, 3 - player);
        b[i] = 0;
        if v > best { best = v; pick = i; }
    }
    pick
}
"""

FIRST_EMPTY = "fn choose_move(board: &[u8], player: u8) -> usize { 0 }"
PANICS = 'fn choose_move(board: &[u8], player: u8) -> usize {\n    panic!("no idea")\n}'
SPINS = "fn choose_move(board: &[u8], player: u8) -> usize {\n    loop {}\n}"
UNSAFE = (
    "fn choose_move(board: &[u8], player: u8) -> usize {\n"
    "    unsafe { *board.as_ptr() as usize }\n}"
)


def fence(code: str) -> str:
    return f"```rust\n{code}\n```"


def player(code: str) -> sb.Functions:
    rt = sb.Runtime("fn choose_move(board: &[u8], player: u8) -> usize;")
    rt.register(code, activate=True)
    return rt.fns


def test_minimax_reference_is_perfect() -> None:
    assert task.minimax((0,) * 9, 1)[0] == 0  # tic-tac-toe is a draw
    assert task.minimax((1, 1, 0, 2, 2, 0, 0, 0, 0), 1) == (1, (2,))
    # against itself, perfect play draws every game from both sides
    me = task.minimax_player(__import__("random").Random(1))
    tally = task.tournament(lambda b, p: me(tuple(b), p), games=10)["minimax"]
    assert (tally.draws, tally.losses) == (10, 0)


def test_a_perfect_rust_player_never_loses() -> None:
    tallies = task.tournament(player(PERFECT).choose_move, games=20)
    assert tallies["minimax"].draws == 20 and tallies["minimax"].forfeits == 0
    assert sum(t.losses for t in tallies.values()) == 0
    assert tallies["random"].wins > 10


def test_illegal_moves_and_panics_forfeit_with_the_reason() -> None:
    tallies = task.tournament(player(FIRST_EMPTY).choose_move, games=4)
    t = tallies["random"]
    assert t.forfeits == 4 and t.losses == 4
    assert t.first_forfeit is not None and "returned 0 on board" in t.first_forfeit
    assert "is taken" in t.first_forfeit
    panicky = task.tournament(player(PANICS).choose_move, games=2)["heuristic"]
    assert panicky.forfeits == 2 and "panicked" in str(panicky.first_forfeit)
    assert "no idea" in str(panicky.first_forfeit)
    with pytest.raises(sb.Reject, match="every game was forfeited"):
        task.evaluator(games=2)(player(PANICS))


def test_the_example_rejects_bad_players_then_finds_a_perfect_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main: Any = runpy.run_path(str(examples_dir() / "tictactoe" / "main.py"))["main"]
    script = [fence(c) for c in (UNSAFE, PANICS, FIRST_EMPTY, SPINS, PERFECT)]
    agent = ScriptedAgent(script)
    code = main(agent, rounds=1, store=str(tmp_path / "runs.db"), check_timeout=0.5)
    assert code == 0
    feedback = [r.messages[-1].content for r in agent.requests[1:]]
    assert "unsafe" in feedback[0]
    assert "every game was forfeited" in feedback[1] and "no idea" in feedback[1]
    assert "is taken" in feedback[2]
    assert "timed out" in feedback[3].lower() or "deadline" in feedback[3].lower()
    out = capsys.readouterr().out
    assert "unbeaten by the perfect player" in out
    assert "round" in out and "minimax" in out
