"""OpenAIAgent against the real OpenAITestServer, over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import socket
import subprocess
import sys
import threading
import time

import pytest

from symbiont._agents import Agent, Message, OpenAIAgent, Reply, Request, Usage
from symbiont._agents._openai import parse_retry_after
from symbiont._errors import AgentError, ConfigError, ContextOverflowError, TransientAgentError
from symbiont.testing import Drop, Hang, Malformed, OpenAITestServer, Status, Text

SECRET = "sk-test-SECRET-0123456789"

CONVERSATION = Request(
    messages=(
        Message(role="system", content="You write Rust."),
        Message(role="user", content="Implement step."),
        Message(role="assistant", content="fn step() {}"),
        Message(role="user", content="It does not compile."),
    ),
    seed=7,
    max_tokens=64,
)


def complete(agent: OpenAIAgent, request: Request = CONVERSATION) -> Reply:
    return asyncio.run(agent.complete(request))


def failure(agent: OpenAIAgent, request: Request = CONVERSATION) -> AgentError:
    with pytest.raises(AgentError) as info:
        complete(agent, request)
    return info.value


def agent_for(server: OpenAITestServer, **options: object) -> OpenAIAgent:
    kwargs: dict[str, object] = {"model": "test-model", "api_key": SECRET, "timeout": 5.0}
    kwargs.update(options)
    return OpenAIAgent(base_url=server.base_url, **kwargs)  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- successful replies ---------------------------------------------------------------------


def test_reply_carries_text_usage_and_what_was_sent() -> None:
    script = [Text("fn step() { }", prompt_tokens=11, completion_tokens=5)]
    with OpenAITestServer(script) as server:
        agent = agent_for(server, reasoning_effort="low", temperature=0.25, extra_body={"top_k": 5})
        reply = complete(agent)
        body = server.requests[0]
        headers = server.request_headers[0]

    assert reply == Reply(
        text="fn step() { }",
        usage=Usage(prompt_tokens=11, completion_tokens=5, requests=1),
        finish_reason="stop",
        model="test-model",
    )
    assert body["model"] == "test-model"
    assert body["messages"] == [m.to_dict() for m in CONVERSATION.messages]
    assert body["seed"] == 7
    assert body["max_tokens"] == 64
    assert body["reasoning_effort"] == "low"
    assert body["temperature"] == 0.25
    assert body["top_k"] == 5
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert headers["authorization"] == f"Bearer {SECRET}"


def test_optional_fields_are_not_sent_when_not_given() -> None:
    request = Request(messages=(Message(role="user", content="hi"),))
    with OpenAITestServer(["hello"]) as server:
        reply = complete(OpenAIAgent(base_url=server.base_url, model="m"), request)
        body = server.requests[0]
        headers = server.request_headers[0]

    assert reply.text == "hello"
    assert set(body) == {"model", "messages", "stream", "stream_options"}
    # Local servers need no key; the client still sends one, visibly not a secret.
    assert headers["authorization"] == "Bearer not-needed"


def test_agent_max_tokens_is_the_default_and_the_request_wins() -> None:
    without = Request(messages=(Message(role="user", content="hi"),))
    with OpenAITestServer(["a", "b"]) as server:
        agent = agent_for(server, max_tokens=100)
        complete(agent, without)
        complete(agent, CONVERSATION)
        sent = [body["max_tokens"] for body in server.requests]
    assert sent == [100, 64]


def test_usage_counts_come_from_the_server() -> None:
    with OpenAITestServer(["three word reply"]) as server:
        reply = complete(agent_for(server))
    prompt_words = sum(len(m.content.split()) for m in CONVERSATION.messages)
    assert reply.usage == Usage(prompt_tokens=prompt_words, completion_tokens=3, requests=1)


def test_finish_reason_length_is_reported() -> None:
    with OpenAITestServer([Text("fn step() {", finish_reason="length")]) as server:
        reply = complete(agent_for(server))
    assert (reply.text, reply.finish_reason) == ("fn step() {", "length")


@pytest.mark.parametrize("content", ["", None])
def test_empty_content_is_an_empty_reply_not_an_error(content: str | None) -> None:
    with OpenAITestServer([Text(content)]) as server:
        reply = complete(agent_for(server))
    assert reply.text == ""
    assert reply.usage.requests == 1


def test_one_agent_serves_several_event_loops() -> None:
    # The synchronous API may run each evolve in its own event loop.
    with OpenAITestServer(["first", "second"]) as server:
        agent = agent_for(server)
        assert complete(agent).text == "first"
        assert complete(agent).text == "second"


def test_concurrent_requests_overlap() -> None:
    async def four(agent: OpenAIAgent) -> list[Reply]:
        return await asyncio.gather(*(agent.complete(CONVERSATION) for _ in range(4)))

    lock = threading.Lock()
    state = {"in_flight": 0, "peak": 0}

    def slow(body: dict[str, object]) -> str:
        with lock:
            state["in_flight"] += 1
            state["peak"] = max(state["peak"], state["in_flight"])
        time.sleep(0.3)
        with lock:
            state["in_flight"] -= 1
        return f"reply {len(str(body))}"

    with OpenAITestServer([slow] * 4) as server:
        replies = asyncio.run(four(agent_for(server)))
        count = server.request_count

    assert len(replies) == 4 and all(r.text.startswith("reply ") for r in replies)
    assert count == 4
    assert state["peak"] == 4, "the four requests were not in flight together"


# -- transient failures ---------------------------------------------------------------------


@pytest.mark.parametrize("code", [408, 409, 425, 429, 500, 502, 503, 504])
def test_retryable_statuses_are_transient(code: int) -> None:
    with OpenAITestServer([Status(code, message="try later")]) as server:
        error = failure(agent_for(server))
    assert isinstance(error, TransientAgentError)
    assert error.status == code
    assert str(code) in str(error)
    assert "try later" in str(error)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "0"}, 0.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({}, None),
    ],
)
def test_retry_after_is_parsed(headers: dict[str, str], expected: float | None) -> None:
    with OpenAITestServer([Status(429, headers=headers)]) as server:
        error = failure(agent_for(server))
    assert isinstance(error, TransientAgentError)
    assert error.status == 429
    assert error.retry_after == expected


def test_retry_after_as_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    with OpenAITestServer([Status(503, headers={"Retry-After": when})]) as server:
        error = failure(agent_for(server))
    assert isinstance(error, TransientAgentError)
    assert error.retry_after is not None
    assert 25.0 < error.retry_after <= 31.0


def test_parse_retry_after_edge_cases() -> None:
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    assert parse_retry_after({"Retry-After": past}) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({"Retry-After": "-5"}) == 0.0
    assert parse_retry_after({"retry-after-ms": "nan", "Retry-After": "2"}) == 2.0


def test_connection_refused_is_transient() -> None:
    agent = OpenAIAgent(base_url=f"http://127.0.0.1:{closed_port()}/v1", model="m", timeout=5)
    error = failure(agent)
    assert isinstance(error, TransientAgentError)
    assert error.status is None
    assert "could not reach" in str(error)


def test_paused_server_refuses_then_serves_again() -> None:
    with OpenAITestServer(["after the pause", "after the timed pause"]) as server:
        agent = agent_for(server)
        server.pause()
        assert isinstance(failure(agent), TransientAgentError)
        server.resume()
        assert complete(agent).text == "after the pause"

        server.pause(0.3)
        assert isinstance(failure(agent), TransientAgentError)
        assert server.wait_until_serving(5.0)
        assert complete(agent).text == "after the timed pause"
        # Refused connections never reached the script.
        assert server.request_count == 2


def test_hang_past_the_deadline_is_transient() -> None:
    with OpenAITestServer([Hang(10.0)]) as server:
        started = time.monotonic()
        error = failure(agent_for(server, timeout=0.5))
        elapsed = time.monotonic() - started
    assert isinstance(error, TransientAgentError)
    assert "timed out after 0.5 s" in str(error)
    assert "OpenAIAgent(timeout=...) or SYMBIONT_LLM_TIMEOUT" in str(error)
    assert elapsed < 5.0


def test_dropped_connection_is_transient() -> None:
    with OpenAITestServer([Drop()]) as server:
        error = failure(agent_for(server))
    assert isinstance(error, TransientAgentError)
    assert error.status is None


@pytest.mark.parametrize(
    "item",
    [
        Malformed(),
        Malformed('{"choices": "nope"'),
        Malformed('{"unrelated": 1}'),
        Malformed('{"object": "chat.completion", "choices": []}'),
        Malformed("<html>bad gateway</html>", content_type="text/html"),
        Malformed(""),
    ],
    ids=["not-json", "truncated", "wrong-shape", "no-choices", "html", "empty"],
)
def test_unusable_body_is_transient(item: Malformed) -> None:
    with OpenAITestServer([item]) as server:
        error = failure(agent_for(server))
    assert isinstance(error, TransientAgentError)


# -- context overflow and fatal errors ------------------------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        Status(
            400,
            message="This model's maximum context length is 8192 tokens. However, your "
            "messages resulted in 9000 tokens.",
            error_code="context_length_exceeded",
        ),
        Status(400, message="bad request", error_code="context_length_exceeded"),
        Status(
            400,
            message="the request exceeds the available context size, try increasing it",
            error_type="exceed_context_size_error",
        ),
        Status(413, message="prompt is too long: 210000 tokens > 200000 maximum"),
    ],
    ids=["openai", "code-only", "llama.cpp", "413"],
)
def test_context_window_overflow(item: Status) -> None:
    with OpenAITestServer([item]) as server:
        error = failure(agent_for(server))
    assert isinstance(error, ContextOverflowError)
    assert error.status == item.code


def test_other_bad_request_is_fatal() -> None:
    with OpenAITestServer([Status(400, message="temperature must be <= 2")]) as server:
        error = failure(agent_for(server))
    assert type(error) is AgentError
    assert error.status == 400
    assert "temperature must be <= 2" in str(error)


@pytest.mark.parametrize("code", [401, 403])
def test_auth_failure_is_fatal_and_never_shows_the_key(
    code: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Servers echo the key they rejected; it must not travel further.
    echo = Status(code, message=f"Incorrect API key provided: {SECRET}.")
    caplog.set_level(logging.DEBUG)
    with OpenAITestServer([echo]) as server:
        agent = agent_for(server)
        error = failure(agent)
        endpoint = f"{server.base_url}/chat/completions"

    assert type(error) is AgentError
    assert error.status == code
    message = str(error)
    assert f"HTTP {code}" in message
    assert endpoint in message
    assert "Incorrect API key provided" in message
    assert "check API_KEY" in message
    assert SECRET not in message
    assert SECRET not in repr(error)
    assert error.__cause__ is not None
    assert SECRET not in str(error.__cause__)
    assert SECRET not in repr(agent)
    assert all(SECRET not in record.getMessage() for record in caplog.records)


def test_not_found_names_the_fix() -> None:
    with OpenAITestServer([Status(404, message="model 'gpt-9' does not exist")]) as server:
        error = failure(agent_for(server))
    assert type(error) is AgentError
    assert error.status == 404
    assert "model 'gpt-9' does not exist" in str(error)
    assert "check MODEL and BASE_URL" in str(error)


def test_other_client_error_is_fatal_with_status() -> None:
    with OpenAITestServer([Status(422, message="unprocessable")]) as server:
        error = failure(agent_for(server))
    assert type(error) is AgentError
    assert error.status == 422


# -- configuration ----------------------------------------------------------------------


def test_name_and_repr_hold_no_secret() -> None:
    agent = OpenAIAgent(
        base_url="https://user:hunter2@llm.example/v1/", api_key=SECRET, model="gpt-x"
    )
    assert isinstance(agent, Agent)
    assert agent.name == "openai:gpt-x"
    assert agent.timeout == 600.0
    text = repr(agent)
    assert "gpt-x" in text
    assert "llm.example/v1" in text
    assert SECRET not in text
    assert "hunter2" not in text


@pytest.mark.parametrize(
    "options",
    [
        {"model": ""},
        {"base_url": " "},
        {"timeout": 0},
        {"timeout": float("nan")},
        {"reasoning_effort": "extreme"},
        {"max_tokens": 0},
    ],
)
def test_invalid_options_raise_config_error(options: dict[str, object]) -> None:
    kwargs: dict[str, object] = {"base_url": "http://127.0.0.1:9/v1", "model": "m"}
    kwargs.update(options)
    with pytest.raises(ConfigError):
        OpenAIAgent(**kwargs)  # type: ignore[arg-type]


def test_import_does_not_load_openai() -> None:
    code = (
        "import sys, symbiont._agents, symbiont.testing\n"
        "assert 'openai' not in sys.modules, 'openai imported eagerly'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
