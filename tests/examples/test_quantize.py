"""The quantize example: its evaluator on hand-written Rust quantizers, and the whole example
driven by a scripted agent through rejected candidates to one on the goal's side of the front."""

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

sys.path.insert(0, str(examples_dir() / "quantize"))
import quantize_task as task

SIGNATURE = "fn quantize(input: &[f64], output: &mut [f64])"
UNIFORM8 = (
    SIGNATURE
    + """ {
    const STEP: f64 = 1.04;
    for (o, x) in output.iter_mut().zip(input) {
        let k = (x / STEP).floor().clamp(-4.0, 3.0);
        *o = (k + 0.5) * STEP;
    }
}"""
)
SIGN = SIGNATURE + " {\n    for (o, x) in output.iter_mut().zip(input) { *o = x.signum(); }\n}"
UNTOUCHED = SIGNATURE + " {}"
FAR = SIGNATURE + " {\n    for o in output.iter_mut() { *o = 100.0; }\n}"
PANICS = SIGNATURE + " {\n    output[input.len()] = 0.0;\n}"
FORBIDDEN = SIGNATURE + " {\n    std::process::exit(0);\n}"


def quantizer(code: str) -> sb.Functions:
    rt = sb.Runtime(SIGNATURE + ";")
    rt.register(code, activate=True)
    return rt.fns


def test_the_evaluator_measures_error_and_levels() -> None:
    score = task.evaluator()(quantizer(UNIFORM8))
    assert score.metrics["levels"] == 8 and score.metrics["bits"] == 3.0
    assert 0.15 < score.metrics["mse"] < task.GOAL_MSE
    assert task.reaches_goal([score.metrics])
    two = task.evaluator()(quantizer(SIGN)).metrics
    assert two["levels"] == 2 and two["bits"] == 1.0 and two["mse"] > score.metrics["mse"]
    assert "2 levels (1.00 bits per value)" in str(task.evaluator()(quantizer(SIGN)).feedback)


def test_the_evaluator_rejects_unfinished_and_useless_output() -> None:
    with pytest.raises(sb.Reject, match=r"output\[0\] is nan .* write finite values"):
        task.evaluator()(quantizer(UNTOUCHED))
    with pytest.raises(sb.Reject, match="worse than writing 0 everywhere"):
        task.evaluator()(quantizer(FAR))


def test_front_keeps_the_non_dominated_points() -> None:
    pts = [{"bits": 1, "mse": 1.0}, {"bits": 2, "mse": 1.5}, {"bits": 3, "mse": 0.1}]
    assert [p["bits"] for p in task.front(pts)] == [1, 3]
    assert task.samples().shape == (10_000,) and abs(np.var(task.samples()) - 2) < 0.1


def test_the_example_rejects_bad_quantizers_then_reaches_the_goal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main: Any = runpy.run_path(str(examples_dir() / "quantize" / "main.py"))["main"]
    script = [f"```rust\n{c}\n```" for c in (FORBIDDEN, UNTOUCHED, FAR, PANICS, UNIFORM8, SIGN)]
    agent = ScriptedAgent(script)
    plot = tmp_path / "front.png"
    assert main(agent, rounds=2, store=str(tmp_path / "runs.db"), plot=str(plot)) == 0
    feedback = [r.messages[-1].content for r in agent.requests[1:5]]
    assert "std::process" in feedback[0]
    assert "write finite values" in feedback[1]
    assert "worse than writing 0 everywhere" in feedback[2]
    assert "panicked at line 2" in feedback[3]
    out = capsys.readouterr().out
    assert "goal reached" in out
    # round 2 adds the 2-level quantizer: a new trade-off, so the front grows
    assert "front after round 2: rev 2: 2 levels, MSE 1.0134, rev 1: 8 levels" in out
    assert plot.stat().st_size > 1000
