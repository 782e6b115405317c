"""Test doubles for code that talks to LLMs: symbiont's own tests and its users' tests.

- :class:`ScriptedAgent`: an in-process :class:`~symbiont._agents.Agent` replaying a script of
  replies, exceptions, callables and :class:`ToolCall` s (run against the tools it is given),
  recording every request.
- :class:`OpenAITestServer`: a real HTTP server on 127.0.0.1 speaking the OpenAI
  chat-completions protocol, answering from a script of :class:`Text`, :class:`Status`,
  :class:`Malformed`, :class:`Drop`, :class:`Hang` and :class:`Stall` items (or plain strings,
  or callables), streaming the answer as server-sent events when the client asks for a stream,
  so tests exercise a real client over a real socket, faults and tool calls included
  (``Text(None, tool_calls=(ToolCall("probe", {"n": 3}),))``).

Example::

    from symbiont._agents import OpenAIAgent
    from symbiont.testing import OpenAITestServer, Status

    with OpenAITestServer([Status(503), "fn answer() -> u32 { 42 }"]) as server:
        agent = OpenAIAgent(base_url=server.base_url, model="test")
        ...  # first request: TransientAgentError(status=503); second: the reply
"""

from __future__ import annotations

from symbiont.testing._scripted import ScriptedAgent, ScriptedItem
from symbiont.testing._server import (
    Drop,
    Hang,
    Malformed,
    OpenAITestServer,
    ServerItem,
    ServerReply,
    Stall,
    Status,
    Text,
    ToolCall,
    rough_token_count,
)

__all__ = [
    "Drop",
    "Hang",
    "Malformed",
    "OpenAITestServer",
    "ScriptedAgent",
    "ScriptedItem",
    "ServerItem",
    "ServerReply",
    "Stall",
    "Status",
    "Text",
    "ToolCall",
    "rough_token_count",
]
