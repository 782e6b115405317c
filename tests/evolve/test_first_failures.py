"""The failures a new user meets first, end to end through the real OpenAI client and the local
HTTP test server: short keys, hanging endpoints, fatal errors, and what the log says."""

from __future__ import annotations

import logging

import pytest

import symbiont as sb
from symbiont.testing import Hang, OpenAITestServer, Stall, Status, Text

DECL = "fn f(x: u32) -> u32 { x }"
GOOD = "```rust\nfn f(x: u32) -> u32 { x + 10 }\n```"
OVERFLOW = Status(
    400,
    message="This model's maximum context length is 8192 tokens. However, your messages "
    "resulted in 9000 tokens.",
    error_code=None,
)


@pytest.fixture(scope="module")
def rt() -> sb.Runtime:
    return sb.Runtime(DECL, backoff=(0.01, 0.05), transient_retries=2)


def test_a_one_letter_key_does_not_hide_a_context_overflow(rt: sb.Runtime) -> None:
    # "x" occurs in "maximum" and "exceeded": masking it first broke the classification.
    with OpenAITestServer([OVERFLOW, GOOD]) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, api_key="x", model="m")
        info = rt.evolve(agent, "Add ten.", activate=False)
        sent = server.requests
    assert [a.decision for a in info.trace.attempts] == ["reset_context", "registered"]
    assert sent[1]["messages"] == sent[0]["messages"]  # restarted from the base prompt
    assert rt.revision(info.revision).fns.f(1) == 11


def test_a_one_letter_key_leaves_a_401_readable() -> None:
    with OpenAITestServer([Status(401, message="Incorrect API key provided: k.")]) as server:
        agent = sb.agent_from_env({"BASE_URL": server.base_url, "API_KEY": "k", "MODEL": "m"})
        with pytest.raises(sb.EvolveError) as info:
            sb.Runtime(DECL).evolve(agent, "Add ten.")
    message = str(info.value)
    assert "Incorrect API key provided: k." in message
    assert "check API_KEY" in message
    assert info.value.fatal


def test_a_real_key_is_still_masked_as_a_whole_token() -> None:
    key = "sk-proj-0123456789abcdef"
    echo = Status(401, message=f"Incorrect API key provided: {key}. Keys look like sk-proj-...")
    with OpenAITestServer([echo]) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, api_key=key, model="m")
        with pytest.raises(sb.EvolveError) as info:
            sb.Runtime(DECL).evolve(agent, "Add ten.")
    assert key not in str(info.value)
    assert "Incorrect API key provided: ***. Keys look like sk-proj-..." in str(info.value)


def test_an_endpoint_that_accepts_and_never_answers_is_given_up(
    rt: sb.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    # Without the header deadline each request would wait the whole 600 s request timeout.
    caplog.set_level(logging.INFO, logger="symbiont")
    with OpenAITestServer([Hang(600.0)] * 3) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, model="m", header_timeout=0.3)
        with pytest.raises(sb.EvolveError) as info:
            rt.evolve(agent, "Add ten.")
        endpoint = f"{server.base_url}/chat/completions"
        assert server.request_count == 3
    message = str(info.value)
    assert "unreachable after retries (3 requests)" in message
    assert endpoint in message
    assert "sent no response headers" in message
    assert "OpenAIAgent(header_timeout=...)" in message
    assert not info.value.fatal
    retries = [r.getMessage() for r in caplog.records if "transient failure" in r.getMessage()]
    assert len(retries) == 2 and all(r.levelno == logging.INFO for r in caplog.records
                                     if "transient failure" in r.getMessage())  # fmt: skip
    assert "retry 1/2 in" in retries[0] and "no status" in retries[0]


def test_a_stream_that_goes_silent_is_given_up_after_the_idle_timeout(rt: sb.Runtime) -> None:
    with OpenAITestServer([Stall(600.0, content="```rust\nfn f(")] * 3) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, model="m", idle_timeout=0.3)
        with pytest.raises(sb.EvolveError) as info:
            rt.evolve(agent, "Add ten.")
    assert "stopped streaming" in str(info.value)
    assert "OpenAIAgent(idle_timeout=...)" in str(info.value)


def test_a_trickling_stream_meets_the_total_deadline(rt: sb.Runtime) -> None:
    slow = Text(GOOD, chunk_chars=1, chunk_delay=0.2)  # every chunk comes well within idle
    with OpenAITestServer([slow] * 3) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, model="m", timeout=0.8)
        with pytest.raises(sb.EvolveError) as info:
            rt.evolve(agent, "Add ten.")
    assert "did not finish the reply" in str(info.value)
    assert "OpenAIAgent(timeout=...) or SYMBIONT_LLM_TIMEOUT" in str(info.value)


def test_a_silent_stream_restarts_without_the_partial_reply(rt: sb.Runtime) -> None:
    with OpenAITestServer([Stall(600.0, content="fn f("), GOOD]) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, model="m", idle_timeout=0.3)
        info = rt.evolve(agent, "Add ten.", activate=False)
    assert info.attempts == 1
    assert len(info.trace.attempts[0].retries) == 1


@pytest.mark.parametrize(
    ("status", "message"),
    [(401, "Incorrect API key"), (404, "The model 'gpt-9' does not exist")],
)
def test_fatal_agent_errors_say_so(rt: sb.Runtime, status: int, message: str) -> None:
    with OpenAITestServer([Status(status, message=message)]) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, model="m")
        with pytest.raises(sb.EvolveError) as info:
            rt.evolve(agent, "Add ten.")
    assert info.value.fatal
    assert isinstance(info.value.__cause__, sb.AgentError)


def test_running_out_of_attempts_is_not_fatal() -> None:
    with OpenAITestServer(["no code"] * 2) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, model="m")
        with pytest.raises(sb.EvolveError) as info:
            sb.Runtime(DECL, max_attempts=2).evolve(agent, "Add ten.")
    assert not info.value.fatal


def test_each_failed_attempt_is_one_info_line(
    rt: sb.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="symbiont")
    with OpenAITestServer(["I would rather not.", GOOD]) as server:
        rt.evolve(sb.OpenAIAgent(base_url=server.base_url, model="m"), "Add ten.", activate=False)
    failed = [r for r in caplog.records if "attempt 1 failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].levelno == logging.INFO
    # The kind and the one-line reason: the failure's summary.
    assert "attempt 1 failed: no code: no fenced ```rust code block" in failed[0].getMessage()
    assert "\n" not in failed[0].getMessage()
