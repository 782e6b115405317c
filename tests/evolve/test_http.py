"""The loop through the real OpenAI client and a real local HTTP server: transient faults are
retried without spending attempts; usage is summed over every request."""

from __future__ import annotations

import threading
import time

import pytest

import symbiont as sb
from symbiont.testing import OpenAITestServer, Status, Text

DECL = "fn f(x: u32) -> u32 { x }"
GOOD = "```rust\nfn f(x: u32) -> u32 { x + 10 }\n```"


@pytest.fixture(scope="module")
def rt() -> sb.Runtime:
    return sb.Runtime(DECL, backoff=(0.05, 0.5))


def agent_for(server: OpenAITestServer, **kw: object) -> sb.OpenAIAgent:
    return sb.OpenAIAgent(base_url=server.base_url, api_key="sk-test-secret", model="m", **kw)  # type: ignore[arg-type]


def test_500_and_429_are_retried_without_spending_attempts(rt: sb.Runtime) -> None:
    script = [
        Status(500),
        Status(429, headers={"Retry-After": "0"}),
        Status(503),
        "no code, sorry",
        Text(GOOD, prompt_tokens=100, completion_tokens=20),
    ]
    with OpenAITestServer(script) as server:
        info = rt.evolve(agent_for(server), "Add ten.", activate=False)
        assert server.request_count == 5
    assert info.attempts == 2
    assert len(info.trace.attempts[0].retries) == 3
    assert rt.revision(info.revision).fns.f(1) == 11
    assert info.usage.requests == 2
    assert info.usage.prompt_tokens >= 100 and info.usage.completion_tokens >= 20


def test_connection_refused_is_retried(rt: sb.Runtime) -> None:
    with OpenAITestServer([GOOD]) as server:
        server.pause(0.4)  # nothing listens: connections are refused, then it comes back
        info = rt.evolve(agent_for(server), "Add ten.", activate=False)
    assert info.attempts == 1
    assert info.trace.attempts[0].retries, "the refused connections were retried"


def test_context_overflow_from_the_server_resets(rt: sb.Runtime) -> None:
    overflow = Status(
        400,
        message="This model's maximum context length is 8192 tokens.",
        error_code="context_length_exceeded",
    )
    with OpenAITestServer(["prose", overflow, GOOD]) as server:
        info = rt.evolve(agent_for(server), "Add ten.", activate=False)
        sent = server.requests
    assert [a.decision for a in info.trace.attempts] == ["retry", "reset_context", "registered"]
    assert len(sent[2]["messages"]) == 2


def test_unauthorized_ends_the_lane_at_once_without_leaking_the_key(rt: sb.Runtime) -> None:
    with OpenAITestServer([Status(401, message="bad key"), GOOD]) as server:
        with pytest.raises(sb.EvolveError) as info:
            rt.evolve(agent_for(server), "Add ten.")
        assert server.request_count == 1
    assert "401" in str(info.value)
    assert "sk-test-secret" not in str(info.value)
    assert "sk-test-secret" not in info.value.trace.to_jsonl()


def test_endpoint_down_for_good_ends_after_six_retries(rt: sb.Runtime) -> None:
    with OpenAITestServer([Status(502)] * 20) as server:
        with pytest.raises(sb.EvolveError, match="unreachable after retries"):
            rt.evolve(agent_for(server), "Add ten.")
        assert server.request_count == 7


def test_eight_lanes_against_a_slow_server_overlap(rt: sb.Runtime) -> None:
    lock = threading.Lock()
    state = {"in_flight": 0, "peak": 0}

    def slow(body: dict) -> str:  # type: ignore[type-arg]
        with lock:
            state["in_flight"] += 1
            state["peak"] = max(state["peak"], state["in_flight"])
        time.sleep(0.3)
        with lock:
            state["in_flight"] -= 1
        return GOOD

    with OpenAITestServer([slow] * 8) as server:
        results = rt.evolve_batch(agent_for(server), ["Add ten."] * 8)
    assert all(isinstance(r, sb.EvolveInfo) for r in results)
    assert state["peak"] == 8, "the eight lanes' requests were not in flight together"
