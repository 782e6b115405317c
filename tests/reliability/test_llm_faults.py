"""The LLM-fault matrix: every way an endpoint can fail, through the real OpenAI client and the
real local HTTP test server, driving `rt.evolve`.

For each fault the test asserts what the loop did (the trace's retries, failure kinds and
decisions, the requests the server saw, the correction sent back) and that the lane ends in a
registered revision or a clear `EvolveError`: never a crash, never a hang (each test also has a
pytest-timeout backstop).

tests/evolve/test_http.py has the first smoke tests of this path; this file is the full matrix.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

import symbiont as sb
from symbiont.testing import Drop, Hang, Malformed, OpenAITestServer, ServerReply, Status, Text

pytestmark = pytest.mark.timeout(60)

DECL = "/// Shift a value.\nfn f(x: u32) -> u32 { x }"
SIGNATURE = "fn f(x: u32) -> u32"
GOOD = "Here:\n```rust\nfn f(x: u32) -> u32 {\n    x + 10\n}\n```"
RETRIES = 6  # the default transient-retry budget


@pytest.fixture(scope="module")
def rt() -> sb.Runtime:
    return sb.Runtime(DECL, backoff=(0.01, 0.1))


def agent_for(base_url: str, timeout: float = 30.0) -> sb.OpenAIAgent:
    return sb.OpenAIAgent(base_url=base_url, api_key="sk-fault-matrix", model="m", timeout=timeout)


def stamped(item: ServerReply, times: list[float]) -> Callable[[dict[str, Any]], ServerReply]:
    """A script item that records when its request arrived."""

    def answer(body: dict[str, Any]) -> ServerReply:
        times.append(time.monotonic())
        return item

    return answer


def evolve_ok(rt: sb.Runtime, server: OpenAITestServer, **agent: Any) -> sb.EvolveInfo:
    info = rt.evolve(agent_for(server.base_url, **agent), "Add ten.", activate=False)
    assert rt.revision(info.revision).fns.f(1) == 11
    return info


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# ---------------------------------------------------------------- transient: retried, then OK


def test_refused_connection_while_the_server_restarts_is_retried() -> None:
    # A backoff long enough that six retries outlast the pause by a wide margin.
    rt = sb.Runtime(DECL, backoff=(0.05, 0.5))
    with OpenAITestServer([GOOD, GOOD]) as server:
        agent = agent_for(server.base_url)
        rt.evolve(agent, "Add ten.")  # warm: the client is imported and connected once
        server.pause(0.3)
        info = rt.evolve(agent, "Add ten.")
        assert server.request_count == 2, "refused connections never reach the server"
    (attempt,) = info.trace.attempts
    assert attempt.decision == "registered"
    assert 1 <= len(attempt.retries) <= RETRIES
    assert all("could not reach" in r and "/chat/completions" in r for r in attempt.retries)
    assert info.attempts == 1, "transport failures spend no attempt"
    assert rt.fns.f(1) == 11


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_server_errors_then_success(rt: sb.Runtime, code: int) -> None:
    with OpenAITestServer([Status(code), Status(code), GOOD]) as server:
        info = evolve_ok(rt, server)
        sent = server.requests
    assert len(sent) == 3
    assert sent[0] == sent[1] == sent[2], "a transient failure retries the very same request"
    (attempt,) = info.trace.attempts
    assert attempt.decision == "registered" and attempt.failure is None
    assert [f"HTTP {code}" in r for r in attempt.retries] == [True, True]
    assert info.attempts == 1
    assert info.usage.requests == 1, "only the answered request carries usage"


@pytest.mark.parametrize(
    ("headers", "wait"),
    [({"Retry-After": "1"}, 1.0), ({"retry-after-ms": "600"}, 0.6)],
    ids=["retry-after", "retry-after-ms"],
)
def test_rate_limit_waits_as_long_as_the_server_asks(
    rt: sb.Runtime, headers: dict[str, str], wait: float
) -> None:
    times: list[float] = []
    script = [stamped(Status(429, headers=headers), times), stamped(Text(GOOD), times)]
    with OpenAITestServer(script) as server:
        info = evolve_ok(rt, server)
        assert server.request_count == 2
    (attempt,) = info.trace.attempts
    assert len(attempt.retries) == 1 and "HTTP 429" in attempt.retries[0]
    # The backoff alone (10 ms) would retry at once; the server's delay wins. A lower bound
    # only: sleeping is never shorter than asked (give the clock a little slack).
    assert times[1] - times[0] >= wait - 0.05


def test_hang_past_the_agents_request_timeout_is_retried(rt: sb.Runtime) -> None:
    started = time.monotonic()
    with OpenAITestServer([Hang(10), GOOD]) as server:
        info = evolve_ok(rt, server, timeout=0.5)
        assert server.request_count == 2
    assert time.monotonic() - started < 10, "the lane waited for the hang instead of timing out"
    (attempt,) = info.trace.attempts
    assert len(attempt.retries) == 1
    assert "timed out after 0.5 s" in attempt.retries[0]
    assert info.attempts == 1


def test_hang_past_the_runtimes_llm_timeout_is_retried() -> None:
    rt = sb.Runtime(DECL, backoff=(0.01, 0.1), llm_timeout=0.5)
    started = time.monotonic()
    with OpenAITestServer([Hang(10), GOOD]) as server:
        info = evolve_ok(rt, server)  # the agent's own timeout (30 s) is not the one that fires
        assert server.request_count == 2
    assert time.monotonic() - started < 10
    (attempt,) = info.trace.attempts
    assert len(attempt.retries) == 1 and attempt.retries[0].startswith("no reply within")


def test_the_outer_timeout_message_names_the_deadline() -> None:
    rt = sb.Runtime(DECL, backoff=(0.01, 0.1), llm_timeout=0.5)
    with OpenAITestServer([Hang(10), GOOD]) as server:
        info = evolve_ok(rt, server)
    assert "0.5 s" in info.trace.attempts[0].retries[0], info.trace.attempts[0].retries[0]


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (Malformed(), "not valid JSON"),
        (Malformed('{"id": "x", "object": "chat.completion"}'), "without a usable choice"),
        (
            Malformed('{"id":"x","object":"chat.completion","created":0,"model":"m","choices":[]}'),
            "without a usable choice",
        ),
        (
            Malformed("<html>502 Bad Gateway</html>", content_type="text/html"),
            "not a chat completion",
        ),
    ],
    ids=["not-json", "no-choices-field", "empty-choices", "html"],
)
def test_malformed_body_is_retried(rt: sb.Runtime, body: Malformed, complaint: str) -> None:
    with OpenAITestServer([body, GOOD]) as server:
        info = evolve_ok(rt, server)
        assert server.request_count == 2
    (attempt,) = info.trace.attempts
    assert len(attempt.retries) == 1 and complaint in attempt.retries[0], attempt.retries
    assert info.attempts == 1


def test_dropped_connection_is_retried(rt: sb.Runtime) -> None:
    with OpenAITestServer([Drop(), GOOD]) as server:
        info = evolve_ok(rt, server)
        assert server.request_count == 2
    (attempt,) = info.trace.attempts
    assert len(attempt.retries) == 1
    assert "could not reach" in attempt.retries[0]
    assert "disconnected" in attempt.retries[0].lower()


def test_faults_are_counted_against_the_attempt_they_delayed(rt: sb.Runtime) -> None:
    script: list[ServerReply] = [
        Status(500),
        "I would add ten.",
        Drop(),
        Malformed(),
        Status(429),
        GOOD,
    ]
    with OpenAITestServer(script) as server:
        info = evolve_ok(rt, server, timeout=5)
        assert server.request_count == 6
    first, second = info.trace.attempts
    assert len(first.retries) == 1 and "HTTP 500" in first.retries[0]
    assert first.failure is not None and first.failure.kind == "no_code"
    assert first.decision == "retry"
    assert len(second.retries) == 3
    assert "could not reach" in second.retries[0]
    assert "not valid JSON" in second.retries[1]
    assert "HTTP 429" in second.retries[2]
    assert second.decision == "registered"
    assert info.attempts == 2 and info.usage.requests == 2


# ---------------------------------------------------------------- unusable replies: fed back


@pytest.mark.parametrize("content", ["", None], ids=["empty", "null"])
def test_empty_content_is_fed_back_as_no_code(rt: sb.Runtime, content: str | None) -> None:
    with OpenAITestServer([Text(content), GOOD]) as server:
        info = evolve_ok(rt, server)
        sent = server.requests
    assert len(sent) == 2
    first = info.trace.attempts[0]
    assert first.failure is not None and first.failure.kind == "no_code"
    assert first.decision == "retry" and first.retries == ()
    assert sent[1]["messages"][-2] == {"role": "assistant", "content": ""}
    correction = sent[1]["messages"][-1]["content"]
    assert correction.startswith("Attempt 1 of 10 failed.")
    assert "no Rust code" in correction and SIGNATURE in correction
    assert info.attempts == 2


def test_reply_cut_off_at_the_length_limit_gets_parse_feedback(rt: sb.Runtime) -> None:
    cut = Text(
        "Sure, here it is:\n```rust\nfn f(x: u32) -> u32 {\n    let shifted = x +",
        finish_reason="length",
    )
    with OpenAITestServer([cut, GOOD]) as server:
        info = evolve_ok(rt, server)
        sent = server.requests
    first = info.trace.attempts[0]
    assert first.finish_reason == "length"
    assert first.failure is not None and first.failure.kind == "parse_error"
    correction = sent[1]["messages"][-1]["content"]
    assert "Never closed: `{` on line 1" in correction
    assert "cut off" in correction and "length limit" in correction
    assert info.attempts == 2


def test_several_megabytes_of_prose_are_fed_back_as_no_code(rt: sb.Runtime) -> None:
    prose = ("The quick brown fox considers adding ten to the input. " * 80 + "\n\n") * 1000
    assert len(prose) > 4_000_000
    with OpenAITestServer([prose, GOOD]) as server:
        info = evolve_ok(rt, server)
        sent = server.requests
    first = info.trace.attempts[0]
    assert first.failure is not None and first.failure.kind == "no_code"
    assert first.reply == prose  # traced whole
    # Not parsed, and not sent back whole: the conversation keeps a short head of it.
    echoed = sent[1]["messages"][-2]["content"]
    assert echoed.startswith(prose[:1000]) and len(echoed) < 10_000 and "omitted" in echoed
    correction = sent[1]["messages"][-1]["content"]
    assert "replies longer than 200,000 are not read" in correction and len(correction) < 2_000
    assert info.attempts == 2


def test_a_huge_cut_off_code_block_gets_short_feedback(rt: sb.Runtime) -> None:
    body = "\n".join(f"    let y{i} = x.wrapping_add({i});" for i in range(30_000))
    cut = Text(f"```rust\nfn f(x: u32) -> u32 {{\n{body}", finish_reason="length")
    assert len(cut.content or "") > 1_000_000
    with OpenAITestServer([cut, GOOD]) as server:
        info = evolve_ok(rt, server)
        sent = server.requests
    first = info.trace.attempts[0]
    assert first.failure is not None and first.failure.kind == "no_code"
    assert first.timings.build == 0.0, "it never reaches rustc"
    correction = sent[1]["messages"][-1]["content"]
    assert "not read" in correction and "length limit" in correction
    assert len(correction) < 2_000
    assert info.attempts == 2


# ---------------------------------------------------------------- the lane ends, clearly


@pytest.mark.parametrize(
    ("status", "hint"),
    [(401, "check API_KEY"), (403, "check API_KEY"), (404, "check MODEL and BASE_URL"), (400, "")],
)
def test_fatal_status_ends_the_lane_at_once(rt: sb.Runtime, status: int, hint: str) -> None:
    with OpenAITestServer([Status(status, message="no, thank you"), GOOD]) as server:
        with pytest.raises(sb.EvolveError) as caught:
            rt.evolve(agent_for(server.base_url), "Add ten.")
        assert server.request_count == 1, "a fatal status is not retried"
    err = caught.value
    assert f"HTTP {status}: no, thank you" in str(err) and hint in str(err)
    assert "sk-fault-matrix" not in str(err)
    assert isinstance(err.__cause__, sb.AgentError)
    assert not isinstance(err.__cause__, sb.TransientAgentError)
    assert err.__cause__.status == status
    (attempt,) = err.trace.attempts
    assert attempt.outcome == "agent_error" and attempt.decision == "end"
    assert attempt.retries == () and not attempt.counted
    assert err.last_failure is None


@pytest.mark.parametrize(
    ("fault", "complaint"),
    [(Status(503), "HTTP 503"), (Drop(), "could not reach"), (Malformed(), "not valid JSON")],
    ids=["503", "drop", "malformed"],
)
def test_endpoint_down_for_good_ends_after_six_retries(
    rt: sb.Runtime, fault: ServerReply, complaint: str
) -> None:
    with OpenAITestServer([fault] * 20) as server:
        with pytest.raises(sb.EvolveError, match="unreachable after retries") as caught:
            rt.evolve(agent_for(server.base_url), "Add ten.")
        assert server.request_count == RETRIES + 1
    err = caught.value
    assert complaint in str(err)
    assert isinstance(err.__cause__, sb.TransientAgentError)
    (attempt,) = err.trace.attempts
    assert attempt.outcome == "agent_error" and attempt.decision == "end"
    assert len(attempt.retries) == RETRIES
    assert all(complaint in r for r in attempt.retries)


def test_nothing_listening_ends_after_six_retries(rt: sb.Runtime) -> None:
    port = closed_port()
    with pytest.raises(sb.EvolveError, match="unreachable after retries") as caught:
        rt.evolve(agent_for(f"http://127.0.0.1:{port}/v1"), "Add ten.")
    err = caught.value
    assert f"could not reach http://127.0.0.1:{port}/v1/chat/completions" in str(err)
    assert isinstance(err.__cause__, sb.TransientAgentError)
    (attempt,) = err.trace.attempts
    assert attempt.decision == "end" and len(attempt.retries) == RETRIES
    assert all("could not reach" in r for r in attempt.retries)


def test_the_runtime_still_works_after_every_fault(rt: sb.Runtime) -> None:
    # After the whole matrix ran against this runtime: its dispatchers and lanes still work.
    with OpenAITestServer([GOOD]) as server:
        info = rt.evolve(agent_for(server.base_url), "Add ten.")
    assert rt.active_revision == info.revision
    assert rt.fns.f(5) == 15
    assert rt.revision(0).fns.f(5) == 5
