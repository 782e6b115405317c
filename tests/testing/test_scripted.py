"""ScriptedAgent: replies, exceptions and callables in script order."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from symbiont._agents import Agent, Message, Reply, Request, Usage
from symbiont._errors import AgentError, TransientAgentError
from symbiont.testing import ScriptedAgent


def ask(text: str) -> Request:
    return Request(
        messages=(Message(role="system", content="be brief"), Message(role="user", content=text))
    )


def complete(agent: ScriptedAgent, request: Request) -> Reply:
    return asyncio.run(agent.complete(request))


def test_replies_in_order_with_rough_usage() -> None:
    agent = ScriptedAgent(["first reply", "second"])
    assert isinstance(agent, Agent)
    assert agent.name == "scripted"
    first = complete(agent, ask("one two three"))
    second = complete(agent, ask("four"))
    assert first == Reply(
        text="first reply",
        usage=Usage(prompt_tokens=5, completion_tokens=2, requests=1),
        finish_reason="stop",
    )
    assert second.text == "second"
    assert second.usage.prompt_tokens == 3


def test_fixed_usage_and_name() -> None:
    usage = Usage(prompt_tokens=100, completion_tokens=10, requests=1)
    agent = ScriptedAgent(["x"], name="fake-gpt", usage=usage)
    assert agent.name == "fake-gpt"
    assert complete(agent, ask("q")).usage == usage


def test_exceptions_are_raised_and_the_script_continues() -> None:
    busy = TransientAgentError("busy", status=503, retry_after=1.0)
    agent = ScriptedAgent([busy, "after the retry"])
    with pytest.raises(TransientAgentError) as info:
        complete(agent, ask("q"))
    assert info.value is busy
    assert complete(agent, ask("q")).text == "after the retry"


def test_callables_see_the_request() -> None:
    def echo_last(request: Request) -> str:
        return request.messages[-1].content.upper()

    def full_reply(request: Request) -> Reply:
        return Reply(text="cut", finish_reason="length", usage=Usage(requests=1), model="x")

    async def slow(request: Request) -> str:
        await asyncio.sleep(0.01)
        return f"seed={request.seed}"

    agent = ScriptedAgent([echo_last, full_reply, slow])
    assert complete(agent, ask("shout")).text == "SHOUT"
    assert complete(agent, ask("q")) == Reply(
        text="cut", finish_reason="length", usage=Usage(requests=1), model="x"
    )
    seeded = Request(messages=(Message(role="user", content="q"),), seed=5)
    assert complete(agent, seeded).text == "seed=5"


def test_callable_returning_something_else_is_a_type_error() -> None:
    agent = ScriptedAgent([lambda request: 42])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="str or Reply"):
        complete(agent, ask("q"))


def test_exhaustion_is_an_agent_error_and_requests_are_recorded() -> None:
    agent = ScriptedAgent(["a", TransientAgentError("x")])
    requests = [ask("one"), ask("two"), ask("three")]
    complete(agent, requests[0])
    with pytest.raises(TransientAgentError):
        complete(agent, requests[1])
    with pytest.raises(AgentError, match="script exhausted after 2 replies"):
        complete(agent, requests[2])
    assert agent.requests == requests


def test_endless_scripts() -> None:
    agent = ScriptedAgent(itertools.repeat("again"))
    assert [complete(agent, ask("q")).text for _ in range(5)] == ["again"] * 5


def test_concurrent_calls_each_take_their_own_item() -> None:
    async def delayed(request: Request) -> str:
        await asyncio.sleep(0.05)
        return "slow"

    agent = ScriptedAgent([delayed, "a", "b", "c"])

    async def four() -> list[Reply]:
        return await asyncio.gather(*(agent.complete(ask(str(i))) for i in range(4)))

    replies = asyncio.run(four())
    assert [r.text for r in replies] == ["slow", "a", "b", "c"]
    assert [r.messages[-1].content for r in agent.requests] == ["0", "1", "2", "3"]
