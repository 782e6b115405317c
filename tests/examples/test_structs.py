"""The structs example: the rules checked on hand-written Rust steps over a `#[repr(C)]`
struct, and the whole example driven by a scripted agent from broken steps to the right one."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symbiont as sb
from symbiont._cli import examples_dir
from symbiont.testing import ScriptedAgent

sys.path.insert(0, str(examples_dir() / "structs"))
import structs_task as task

SIG = "fn step(state: &mut GameState)"
RIGHT = (
    SIG
    + """ {
    fn bounce(p: &mut f64, v: &mut f64, size: f64, e: f64) -> u32 {
        if *p < 0.0 {
            *p = -*p;
        } else if *p > size {
            *p = 2.0 * size - *p;
        } else {
            return 0;
        }
        *v = -*v * e;
        1
    }
    state.x += state.vx;
    state.y += state.vy;
    let e = state.restitution;
    state.bounces += bounce(&mut state.x, &mut state.vx, state.width, e);
    state.bounces += bounce(&mut state.y, &mut state.vy, state.height, e);
}"""
)
NO_BOUNCE = SIG + " {\n    state.x += state.vx;\n    state.y += state.vy;\n}"
SPEEDS_UP = RIGHT.replace("*v = -*v * e;", "*v = -*v * 1.5;")
CLAMPS = RIGHT.replace("*p = -*p;", "*p = 0.0;").replace("*p = 2.0 * size - *p;", "*p = size;")
UNCOUNTED = RIGHT.replace("state.bounces += bounce(&mut state.y", "bounce(&mut state.y")
PANICS = SIG + ' {\n    assert!(state.x < 3.0, "too far right");\n    state.x += state.vx;\n}'
SPINS = SIG + " {\n    while state.x >= 0.0 { state.x += 1e-300; }\n}"


def runtime(code: str) -> sb.Runtime:
    rt = sb.Runtime(task.GAME_STATE + SIG + ";", check_timeout=0.5)
    rt.register(code, activate=True)
    return rt


def evaluate(code: str) -> float:
    rt = runtime(code)
    return task.evaluator(rt.types.GameState.dtype)(rt.fns)


def test_the_right_step_passes_1000_steps_and_matches_a_record() -> None:
    assert evaluate(RIGHT) == 1.0
    rt = runtime(RIGHT)
    ball = rt.types.GameState(x=1.0, y=9.5, vx=-2.0, vy=1.0, width=10.0, height=10.0,
                              restitution=0.5, bounces=0)  # fmt: skip
    rt.fns.step(ball)
    assert (ball.x, ball.y, ball.vx, ball.vy, ball.bounces) == (1.0, 9.5, 1.0, -0.5, 2)


def test_the_reference_keeps_every_invariant() -> None:
    dtype = runtime(RIGHT).types.GameState.dtype
    s = task.initial_states(dtype)
    e0 = task.energy(s)
    for _ in range(task.STEPS):
        e = task.energy(s)
        task.reference_step(s)
        assert np.all((s["x"] >= 0) & (s["x"] <= s["width"]))
        assert np.all((s["y"] >= 0) & (s["y"] <= s["height"]))
        assert np.all(task.energy(s) <= e * (1 + 1e-12))
    elastic = s["restitution"] == 1.0
    assert np.allclose(task.energy(s)[elastic], e0[elastic])
    assert np.all(s["bounces"] > 10)  # every ball met the walls many times


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (NO_BOUNCE, "the ball left the box at step"),
        (SPEEDS_UP, "the kinetic energy vx^2 + vy^2 grew"),
        (UNCOUNTED, "the bounce count is wrong"),
        (CLAMPS, "the new state does not follow the rules"),
    ],
)
def test_a_broken_rule_is_named_with_the_states(code: str, message: str) -> None:
    with pytest.raises(sb.Reject, match="expected x=") as err:
        evaluate(code)
    assert message in str(err.value)
    assert "in the box" in str(err.value) and "restitution" in str(err.value)


def test_the_example_rejects_broken_steps_then_follows_the_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main: Any = runpy.run_path(str(examples_dir() / "structs" / "main.py"))["main"]
    forbidden = SIG + " {\n    static mut N: u32 = 0;\n}"
    script = [f"```rust\n{c}\n```" for c in (forbidden, PANICS, SPINS, SPEEDS_UP, RIGHT)]
    agent = ScriptedAgent(script)
    assert main(agent, rounds=1, store=str(tmp_path / "runs.db"), check_timeout=0.5) == 0
    feedback = [r.messages[-1].content for r in agent.requests[1:]]
    assert "static" in feedback[0]
    assert "too far right" in feedback[1] and "line 2" in feedback[1]
    assert "timed out" in feedback[2].lower() or "deadline" in feedback[2].lower()
    assert "the kinetic energy vx^2 + vy^2 grew" in feedback[3]
    out = capsys.readouterr().out
    assert "follows the rules for 8 balls x 1000 steps" in out
    assert "x=1.0, y=9.5, vx=1.0, vy=-0.5" in out and "bounces=2" in out
