"""One function at a time: a candidate defines only the functions it targets, the others are
taken from the parent revision (register and search)."""

from __future__ import annotations

from pathlib import Path

import pytest

import symbiont as sb
from symbiont._validate import complete_from_parent
from symbiont.testing import ScriptedAgent

DECL = """
/// Exponential moving average step.
fn ema(prev: f64, x: f64) -> f64 { 0.5 * prev + 0.5 * x }

/// Absolute difference.
fn spread(a: f64, b: f64) -> f64;
"""

PARENT = """use std::f64::consts::PI;

/// A helper of ema.
fn weight() -> f64 { 0.9 }

fn ema(prev: f64, x: f64) -> f64 { weight() * prev + (1.0 - weight()) * x }

fn spread(a: f64, b: f64) -> f64 { a - b + 0.0 * PI }
"""


def test_the_parent_fills_in_what_the_candidate_does_not_define() -> None:
    candidate = (
        "use std::f64::consts::PI;\nfn weight() -> f64 { 1.0 }\n"
        "fn spread(a: f64, b: f64) -> f64 { (a - b).abs() + 0.0 * PI }\n"
    )
    merged = complete_from_parent(candidate, PARENT)
    assert merged.startswith(candidate.rstrip())  # the model's line numbers are kept
    rest = merged[len(candidate) :]
    assert "fn ema(prev: f64, x: f64)" in rest
    assert "fn weight()" not in rest and "fn spread" not in rest, "redefined items are replaced"
    assert "use std::f64::consts::PI" not in rest, "a repeated `use` is kept once"


def test_register_one_function_of_two() -> None:
    rt = sb.Runtime(DECL, profile="debug")
    first = rt.register(PARENT, activate=True)
    n = rt.register(
        "fn spread(a: f64, b: f64) -> f64 { (a - b).abs() }", functions=["spread"], activate=True
    )
    assert n != first
    assert rt.fns.spread(1.0, 4.0) == 3.0
    assert rt.fns.ema(0.0, 10.0) == pytest.approx(1.0), "ema and its helper kept from the parent"
    with pytest.raises(sb.CandidateError, match="spread"):
        rt.register("fn ema(p: f64, x: f64) -> f64 { x }", functions=["spread"])
    with pytest.raises(sb.ConfigError, match="not declared; declared: ema, spread"):
        rt.register("fn f() {}", functions=["nope"])


def test_a_search_rewrites_only_the_named_function(tmp_path: Path) -> None:
    rt = sb.Runtime(DECL, profile="debug")

    def evaluate(fns: sb.Functions) -> float:
        assert fns.ema(0.0, 10.0) == 5.0, "ema changed"
        return -abs(fns.spread(1.0, 4.0) - 3.0)

    agent = ScriptedAgent(
        [
            "```rust\nfn spread(a: f64, b: f64) -> f64 { a - b }\n```",
            "```rust\nfn spread(a: f64, b: f64) -> f64 { (a - b).abs() }\n```",
        ]
    )
    run = rt.search(
        agent,
        "Make spread the absolute difference.",
        evaluate=evaluate,
        functions=["spread"],
        budget=sb.Budget(rounds=2, target=0.0),
        store=tmp_path / "runs.db",
    )
    assert run.stop_reason == "target" and run.best is not None and run.best.score == 0.0
    assert "fn ema(prev: f64, x: f64) -> f64 { 0.5 * prev + 0.5 * x }" in run.best.code
    prompt = agent.requests[0].messages[1].content
    wanted = prompt.split("Functions to implement:")[1].split("```\n\n")[0]
    assert "fn spread(a: f64, b: f64) -> f64" in wanted and "fn ema" not in wanted
    assert "Write only `spread`" in prompt
    assert "0.5 * prev + 0.5 * x" in prompt, "the rest of the code is shown as context"


def test_evolve_one_function_shows_the_rest_as_context() -> None:
    rt = sb.Runtime(DECL, profile="debug")
    agent = ScriptedAgent(
        [
            "```rust\nfn ema(p: f64, x: f64) -> f64 { x }\n```",  # not the function asked for
            "```rust\nfn spread(a: f64, b: f64) -> f64 { (a - b).abs() }\n```",
        ]
    )
    info = rt.evolve(agent, "Write spread.", functions=["spread"])
    assert info.attempts == 2 and rt.fns.spread(1.0, 4.0) == 3.0 and rt.fns.ema(0.0, 2.0) == 1.0
    prompt = agent.requests[0].messages[1].content
    assert "0.5 * prev + 0.5 * x" in prompt and "Write only `spread`" in prompt
    assert "spread" in agent.requests[1].messages[-1].content  # the mismatch named the function
