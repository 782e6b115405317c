"""The rastrigin example: its evaluator on hand-written Rust, and the example driven end to
end by a scripted agent (a lookup table and a panic refused, the exact formula reaching the
target)."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import symbiont as sb
from symbiont._cli import examples_dir
from symbiont.testing import OpenAITestServer, ScriptedAgent, Status

EXACT = """
fn surface(x: f64, y: f64) -> f64 {
    // 2 pi, spelled once: 20 + x^2 - 10 cos(2 pi x) + (the same in y)
    let tau = 2.0 * std::f64::consts::PI;
    20.0 + x * x - 10.0 * (tau * x).cos() + y * y - 10.0 * (tau * y).cos()
}
"""
BOWL = "fn surface(x: f64, y: f64) -> f64 { x * x + y * y }"
VALUES = ", ".join(f"{i}.5" for i in range(17))
TABLE = (
    f"fn surface(x: f64, y: f64) -> f64 {{\n    let t = [{VALUES}];\n"
    "    t[((x + y).abs() as usize) % t.len()]\n}"
)
PANICS = (
    "fn surface(x: f64, _y: f64) -> f64 {\n    let v: Vec<f64> = Vec::new();\n    v[x as usize]\n}"
)


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return runpy.run_path(str(examples_dir() / "rastrigin" / "main.py"))


def evaluate(task: ModuleType, code: str) -> sb.Score:
    handle = sb.Runtime(code, profile="debug").revision(0)
    result: sb.Score = task.evaluate(handle.fns, handle.map)
    return result


def test_numeric_literals_are_counted_outside_comments_and_strings(
    example: dict[str, Any],
) -> None:
    count = example["task"].numeric_literals
    assert count(EXACT) == ["2.0", "20.0", "10.0", "10.0"]
    assert count('let s = "1 2 3"; /* 4 */ let t = (1u8, 0x1F, 2.5e-3_f64); t.0') == [
        "1u8", "0x1F", "2.5e-3_f64",
    ]  # fmt: skip


def test_the_evaluator_scores_the_exact_formula_and_refuses_a_table(
    example: dict[str, Any],
) -> None:
    task = example["task"]
    exact = evaluate(task, EXACT)
    assert exact.value < 1e-20
    bowl = evaluate(task, BOWL)
    assert bowl.value > 100 and bowl.metrics["max_error"] > 39
    assert bowl.feedback is not None and "the worst mismatches" in bowl.feedback
    assert "expected 80.588" in bowl.feedback  # the corners of the grid
    with pytest.raises(sb.Reject, match="17 numeric literals"):
        evaluate(task, TABLE)
    with pytest.raises(sb.Reject, match="not a finite number"):
        evaluate(task, "fn surface(x: f64, y: f64) -> f64 { x / (y - y) * 0.0 }")
    with pytest.raises(sb.PanicError):
        evaluate(task, PANICS)
    table = task.sample_table(seed=0, round_=3)
    assert len(table.splitlines()) == 51 and table != task.sample_table(seed=0, round_=4)
    x, y, z = (float(v) for v in table.splitlines()[1].replace("->", "").split())
    assert abs(z - task.truth(np.float64(x), np.float64(y))) < 1e-8


def test_the_example_refuses_a_table_and_a_panic_then_reaches_the_target(
    example: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")  # the plot extra draws the picture
    fence = "```rust\n{}\n```".format
    agent = ScriptedAgent([fence(TABLE), fence(PANICS), fence(BOWL), fence(EXACT)])
    picture = tmp_path / "surface.png"
    status = example["main"](
        agent, attempts=2, store=str(tmp_path / "runs.db"), plot_path=str(picture)
    )
    assert status == 0
    assert picture.read_bytes().startswith(b"\x89PNG")
    assert "17 numeric literals (at most 16)" in agent.requests[1].messages[-1].content
    round_2 = agent.requests[2].messages[1].content  # a new round after two failures
    assert "index out of bounds" in round_2
    assert "Samples of the surface for round 2:" in round_2
    round_3 = agent.requests[3].messages[1].content
    assert "grid MSE 479.489; the worst mismatches" in round_3
    out = capsys.readouterr().out
    assert "stopped by target after 3 round(s), 4 request(s)" in out
    assert "best: revision 2, grid MSE 0" in out


def test_a_rejected_key_ends_the_example_with_status_2(
    example: dict[str, Any], tmp_path: Path
) -> None:
    with OpenAITestServer([Status(401, message="Incorrect API key provided.")]) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, model="test")
        assert example["main"](agent, store=str(tmp_path / "runs.db")) == 2
        assert server.request_count == 1
