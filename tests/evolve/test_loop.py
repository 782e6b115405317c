"""The constrained-generation loop with a scripted agent: every failure kind produces its
correction and the lane recovers; the budgets hold."""

from __future__ import annotations

import json

import pytest

import symbiont as sb
from symbiont.testing import ScriptedAgent

DECL = """
/// Scale a value.
fn scale(x: u64) -> u64 { x }
"""
GOOD = "Here you go:\n```rust\nfn scale(x: u64) -> u64 {\n    x * 3\n}\n```\n"


@pytest.fixture(scope="module")
def rt() -> sb.Runtime:
    return sb.Runtime(DECL, backoff=(0.01, 0.05))


def fenced(code: str) -> str:
    return f"```rust\n{code.strip()}\n```"


def last_user(agent: ScriptedAgent) -> str:
    return agent.requests[-1].messages[-1].content


# (first reply, kind, a fragment the correction must contain)
FAILURES = [
    ("I think multiplying by three is best.", "no_code", "no Rust code"),
    (fenced("fn scale(x: u64) -> u64 {\n    x * 3\n"), "parse_error", "line"),
    (fenced("fn scale(x: i64) -> u64 { 3 }"), "signature_mismatch", "fn scale(x: u64) -> u64"),
    (fenced("async fn scale(x: u64) -> u64 { x }"), "signature_mismatch", "async"),
    (fenced("fn scale(x: u64) -> u64 { unsafe { x } }"), "forbidden", "unsafe"),
    (fenced("static K: u64 = 3;\nfn scale(x: u64) -> u64 { x * K }"), "forbidden", "static"),
    (
        fenced("thread_local! { static K: u64 = 3; }\nfn scale(x: u64) -> u64 { x }"),
        "forbidden",
        "thread_local",
    ),
    (
        fenced("macro_rules! three { () => { 3 } }\nfn scale(x: u64) -> u64 { x * three!() }"),
        "forbidden",
        "macro_rules",
    ),
    (
        fenced("use std::process as p;\nfn scale(x: u64) -> u64 { if x == 0 { p::exit(1) } x }"),
        "forbidden",
        "std::process",
    ),
    (fenced("use std::fs::*;\nfn scale(x: u64) -> u64 { x }"), "forbidden", "std::fs"),
    (fenced('fn scale(x: u64) -> u64 {\n    x * "3"\n}'), "compile_error", "candidate.rs:2"),
]


@pytest.mark.parametrize(("reply", "kind", "fragment"), FAILURES, ids=[f[1] for f in FAILURES])
def test_each_failure_gets_its_correction_and_recovers(
    rt: sb.Runtime, reply: str, kind: str, fragment: str
) -> None:
    agent = ScriptedAgent([reply, GOOD])
    info = rt.evolve(agent, "Make it triple.", activate=False)
    assert info.attempts == 2
    first = info.trace.attempts[0]
    assert first.failure is not None
    assert first.failure.kind == kind
    assert first.decision == "retry"
    correction = last_user(agent)
    assert correction.startswith("Attempt 1 of 10 failed.")
    assert fragment in correction
    # The correction continues the same conversation: the bad reply is in the history.
    assert agent.requests[-1].messages[-2].content == reply
    assert rt.revision(info.revision).fns.scale(5) == 15


def test_renamed_parameter_is_accepted(rt: sb.Runtime) -> None:
    agent = ScriptedAgent([fenced("fn scale(value: u64) -> u64 { value * 4 }")])
    info = rt.evolve(agent, "Quadruple.", activate=False)
    assert info.attempts == 1
    assert rt.revision(info.revision).fns.scale(2) == 8


PANICS = {
    "declared": 'fn scale(x: u64) -> u64 {\n    if x > 1 { panic!("too big: {}", x) }\n    x\n}',
    "helper": (
        "fn pick(v: &[u64], i: u64) -> u64 {\n    v[i as usize]\n}\n"
        "fn scale(x: u64) -> u64 {\n    pick(&[1, 2], x) * x\n}"
    ),
}


@pytest.mark.parametrize("where", list(PANICS))
def test_panic_during_check_is_fed_back_with_its_line(rt: sb.Runtime, where: str) -> None:
    def check(fns: sb.Functions) -> float:
        assert fns.scale(7) == 21, "scale(7) must be 21"
        return 1.0

    agent = ScriptedAgent([fenced(PANICS[where]), GOOD])
    info = rt.evolve(agent, "Triple.", check=check, activate=False)
    failure = info.trace.attempts[0].failure
    assert failure is not None and failure.kind == "panic"
    correction = last_user(agent)
    expected_line = 2
    assert f"panicked at line {expected_line}" in correction
    assert ("too big: 7" if where == "declared" else "index out of bounds") in correction
    assert info.score == 1.0


def test_check_failure_message_is_fed_back(rt: sb.Runtime) -> None:
    def check(fns: sb.Functions) -> None:
        got = fns.scale(2)
        assert got == 6, f"scale(2) returned {got}, expected 6"

    agent = ScriptedAgent([fenced("fn scale(x: u64) -> u64 { x * 2 }"), GOOD])
    info = rt.evolve(agent, "Triple.", check=check, activate=False)
    assert "scale(2) returned 4, expected 6" in last_user(agent)
    assert info.trace.attempts[0].failure.kind == "check_failed"  # type: ignore[union-attr]


def test_prose_only_model_ends_after_exactly_ten_requests(rt: sb.Runtime) -> None:
    agent = ScriptedAgent([f"Thinking about it, round {i}." for i in range(20)])
    with pytest.raises(sb.EvolveError) as info:
        rt.evolve(agent, "Triple.")
    err = info.value
    assert len(agent.requests) == 10
    assert len(err.attempts) == 10
    assert err.last_failure is not None and err.last_failure.kind == "no_code"
    assert "no revision after 10 attempts" in str(err)
    final = agent.requests[-1].messages
    base_prompts = [m for m in final if m.role == "user" and m.content.startswith("Task: Triple.")]
    assert len(base_prompts) == 1
    assert [m.role for m in final[:2]] == ["system", "user"]
    assert [a.decision for a in err.attempts][-1] == "end"


def test_repeat_of_rejected_code_restarts_with_a_note(rt: sb.Runtime) -> None:
    bad = fenced('fn scale(x: u64) -> u64 { x * "3" }')
    same_code_other_layout = (
        'Again:\n```rust\n// retry\nfn scale(x: u64) -> u64 {\n x * "3"\n}\n```'
    )
    agent = ScriptedAgent([bad, same_code_other_layout, GOOD])
    info = rt.evolve(agent, "Triple.", activate=False)
    decisions = [a.decision for a in info.trace.attempts]
    assert decisions == ["retry", "reset_repeat", "registered"]
    restarted = agent.requests[2].messages
    assert len(restarted) == 2  # back to system + base prompt
    assert "Do not repeat it" in restarted[-1].content
    assert info.attempts == 3


def test_context_overflow_restarts_from_base_prompt(rt: sb.Runtime) -> None:
    agent = ScriptedAgent(
        ["no code here", sb.ContextOverflowError("maximum context length exceeded"), GOOD]
    )
    info = rt.evolve(agent, "Triple.", activate=False)
    assert [a.decision for a in info.trace.attempts] == ["retry", "reset_context", "registered"]
    assert info.attempts == 2  # the overflowed request spent no attempt
    assert len(agent.requests[2].messages) == 2


def test_context_overflow_budget_is_three_resets(rt: sb.Runtime) -> None:
    agent = ScriptedAgent([sb.ContextOverflowError("too long")] * 5)
    with pytest.raises(sb.EvolveError, match="overflowed the model's context window 4 times"):
        rt.evolve(agent, "Triple.")
    assert len(agent.requests) == 4


def test_transient_errors_are_retried_without_spending_attempts(rt: sb.Runtime) -> None:
    agent = ScriptedAgent([sb.TransientAgentError("503", status=503)] * 3 + ["prose", GOOD])
    info = rt.evolve(agent, "Triple.", activate=False)
    assert info.attempts == 2
    assert len(info.trace.attempts[0].retries) == 3
    assert len(agent.requests) == 5


def test_transient_budget_is_six_retries(rt: sb.Runtime) -> None:
    agent = ScriptedAgent([sb.TransientAgentError("down", status=502)] * 10)
    with pytest.raises(sb.EvolveError, match="unreachable after retries") as info:
        rt.evolve(agent, "Triple.")
    assert len(agent.requests) == 7
    assert isinstance(info.value.__cause__, sb.TransientAgentError)


def test_fatal_agent_error_ends_the_lane_at_once(rt: sb.Runtime) -> None:
    agent = ScriptedAgent([sb.AgentError("401 unauthorized", status=401), GOOD])
    with pytest.raises(sb.EvolveError, match="401") as info:
        rt.evolve(agent, "Triple.")
    assert len(agent.requests) == 1
    assert isinstance(info.value.__cause__, sb.AgentError)


def test_evolve_activates_and_reports_usage_timings_trace(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rt = sb.Runtime(DECL)
    scale = rt.fns.scale
    agent = ScriptedAgent(["nothing", GOOD])
    info = rt.evolve(agent, "Triple.")
    assert rt.active_revision == info.revision
    assert scale(2) == 6 and rt.fns.scale is scale
    assert info.usage.requests == 2 and info.usage.total_tokens > 0
    assert info.timings.build > 0 and info.timings.llm >= 0
    assert info.new
    path = tmp_path / "trace.jsonl"
    info.trace.write_jsonl(path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["attempt"] for r in rows] == [1, 2]
    assert rows[0]["failure"]["kind"] == "no_code"
    assert rows[1]["revision"] == info.revision
    assert set(rows[0]["timings"]) == {"llm", "validate", "build", "load", "check"}
    assert rows[0]["messages"][1]["content"].startswith("Task: Triple.")
    assert rows[1]["usage"]["total_tokens"] > 0


def test_identical_candidate_returns_existing_revision(rt: sb.Runtime) -> None:
    first = rt.evolve(ScriptedAgent([GOOD]), "Triple.", activate=False)
    again = rt.evolve(ScriptedAgent(["```rust\nfn scale(x: u64) -> u64 { x * 3 } // same\n```"]),
                      "x", activate=False)  # fmt: skip
    assert first.revision == again.revision
    assert not again.new
