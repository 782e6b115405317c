"""The current code is shown to the model even when one function is still a stub."""

from __future__ import annotations

import symbiont as sb
from symbiont.testing import ScriptedAgent

DECL = """
/// Exponential moving average step.
fn ema(prev: f64, x: f64) -> f64 { 0.9 * prev + 0.1 * x }

/// Not written yet.
fn spread(a: f64, b: f64) -> f64;
"""

BOTH = (
    "```rust\nfn ema(prev: f64, x: f64) -> f64 { 0.9 * prev + 0.1 * x }\n"
    "fn spread(a: f64, b: f64) -> f64 { (a - b).abs() }\n```"
)


def test_a_stub_does_not_hide_the_other_functions() -> None:
    rt = sb.Runtime(DECL, profile="debug")
    agent = ScriptedAgent([BOTH])
    rt.evolve(agent, "Write spread; keep ema as it is.")
    prompt = agent.requests[0].messages[1].content
    assert "Current implementation (revision 0)" in prompt
    assert "0.9 * prev + 0.1 * x" in prompt
    assert "`spread`: not implemented yet" in prompt
    assert rt.fns.spread(1.0, 4.0) == 3.0


def test_nothing_is_shown_while_every_function_is_a_stub() -> None:
    rt = sb.Runtime("fn f(x: u32) -> u32;", profile="debug")
    agent = ScriptedAgent(["```rust\nfn f(x: u32) -> u32 { x }\n```"])
    rt.evolve(agent, "Identity.")
    assert "Current implementation" not in agent.requests[0].messages[1].content
