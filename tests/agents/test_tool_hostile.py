"""A hostile model or an odd tool result never breaks the tool loop: each case below once
escaped from ``complete()`` as a raw exception (real client, real local test server)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import symbiont as sb
from symbiont._agents import Message, Request
from symbiont.testing import OpenAITestServer, Text, ToolCall

REQUEST = Request(messages=(Message(role="user", content="Use the tools."),))


class NoRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@dataclasses.dataclass
class WithLock:
    lock: object


def unshowable() -> dict[str, object]:
    """A result whose repr raises."""
    return {"x": NoRepr()}


def uncopyable() -> WithLock:
    """A dataclass that dataclasses.asdict cannot copy."""
    return WithLock(threading.Lock())


def echo(x: list[int]) -> str:
    """Echoes.

    Args:
        x: anything
    """
    return f"{len(x)} items"


def run(call: ToolCall) -> sb.Reply:
    with OpenAITestServer([Text(None, tool_calls=(call,)), "done"]) as server:
        agent = sb.OpenAIAgent(
            base_url=server.base_url, model="m", tools=[unshowable, uncopyable, echo]
        )
        return asyncio.run(agent.complete(REQUEST))


def test_a_result_that_cannot_be_shown_is_a_tool_error() -> None:
    for name, why in (("unshowable", "no repr"), ("uncopyable", "cannot pickle")):
        reply = run(ToolCall(name, {}))
        assert reply.text == "done"
        (record,) = reply.tool_calls
        assert (
            record.error and "its result cannot be shown" in record.result and why in record.result
        )


def test_arguments_nested_beyond_the_parser_are_invalid_arguments() -> None:
    deep = '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    reply = run(ToolCall("echo", deep))
    assert reply.text == "done"
    (record,) = reply.tool_calls
    assert record.error and "the arguments for 'echo' are invalid" in record.result
