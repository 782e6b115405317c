"""A hostile or careless endpoint: the API key never reaches an error message or the exceptions
it chains, whatever form the endpoint echoes it in, and a reply without end is cut off (the
real client against the local test server)."""

from __future__ import annotations

import asyncio
import traceback
import urllib.parse

import pytest

import symbiont as sb
from symbiont._agents import Message, Request
from symbiont.testing import Malformed, OpenAITestServer, ServerReply, Status

KEY = "sk-live+abc/def=0123456789"
ENCODED = urllib.parse.quote(KEY, safe="")

ECHOES: list[ServerReply] = [
    Malformed(f"<html>Authorization: Bearer {KEY}</html>", content_type="text/html"),
    Status(401, message=f"bad key for /v1?key={ENCODED}"),
    Status(401, message=f"bad form body key%3D{KEY}"),
    Status(400, message=f"token:{KEY}x"),
    Malformed(
        f"upstream /v1?api_key={urllib.parse.quote_plus(KEY)}",
        status=502,
        content_type="text/plain",
    ),
    # The key straddles the point where long messages are cut.
    Status(400, message="y" * 490 + KEY + "z" * 100),
    Malformed("w" * 495 + KEY, content_type="text/html"),
]


@pytest.mark.parametrize("echo", ECHOES, ids=range(len(ECHOES)))
def test_an_echoed_key_is_masked_in_every_form(echo: ServerReply) -> None:
    request = Request(messages=(Message(role="user", content="hi"),))
    with OpenAITestServer([echo]) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, api_key=KEY, model="m")
        with pytest.raises(sb.AgentError) as info:
            asyncio.run(agent.complete(request))
    shown = "".join(traceback.format_exception(info.value))
    for form in (KEY, ENCODED, KEY[:8], ENCODED[:8]):
        assert form not in shown, shown[-600:]
    assert "***" in str(info.value)


def test_a_reply_that_never_ends_is_cut_off_before_it_fills_the_memory() -> None:
    from symbiont._agents._openai import MAX_REPLY_CHARS

    request = Request(messages=(Message(role="user", content="hi"),))
    with OpenAITestServer(["a" * (MAX_REPLY_CHARS + 1)]) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, model="m")
        with pytest.raises(sb.TransientAgentError, match="without ending its reply"):
            asyncio.run(agent.complete(request))
