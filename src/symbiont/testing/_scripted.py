"""The scripted agent: an in-process :class:`~symbiont._agents.Agent` that replays a script."""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, TypeAlias

from symbiont._agents._protocol import Reply, Request, TokenMeter, Usage
from symbiont._agents._tools import (
    DEFAULT_MAX_RESULT_CHARS,
    DEFAULT_MAX_TOOL_TURNS,
    DEFAULT_TOOL_TIMEOUT,
    Tool,
    ToolBox,
    ToolCallRequest,
    Turn,
    run_tool_loop,
)
from symbiont._errors import AgentError
from symbiont.testing._server import ToolCall, rough_token_count

ScriptedResult: TypeAlias = str | Reply
ScriptedItem: TypeAlias = (
    str
    | BaseException
    | ToolCall
    | Sequence[ToolCall]
    | Callable[[Request], ScriptedResult]
    | Callable[[Request], Awaitable[ScriptedResult]]
)
"""One step of a :class:`ScriptedAgent` script."""


class ScriptedAgent:
    """An agent that answers from a script, for tests of anything built on agents.

    Each :meth:`complete` consumes the next item of ``script`` (any iterable, also an endless
    generator):

    - a ``str``: the reply text, with ``finish_reason="stop"`` and ``usage`` (default: rough
      word counts of the conversation and of the reply, one request);
    - an exception instance: raised, e.g. ``TransientAgentError("busy", status=503)``;
    - a callable: called with the :class:`~symbiont._agents.Request` (it may be ``async``); it
      returns the text (treated like a ``str`` item) or a complete
      :class:`~symbiont._agents.Reply`.

    - a :class:`~symbiont.testing.ToolCall` (or a list of them), with ``tools`` given: the
      model calls those tools; the agent runs them as :class:`~symbiont.OpenAIAgent` does
      (same limits, same error messages) and takes the next item as the model's next turn.
      The reply's ``tool_calls`` records them; :attr:`tool_messages` holds the conversations
      sent back after each tool turn (OpenAI message dicts, tool results included).

    The reply's completion tokens are reported to the request's ``on_tokens`` (the progress
    events a display draws); with ``token_delay`` the reply is written one word-token at a
    time that many seconds apart, as a model that streams would.

    Every request is recorded in :attr:`requests`, in call order, including the one that finds
    the script exhausted (which raises :class:`~symbiont.AgentError`). Items are taken under a
    lock, so concurrent lanes each get their own item.
    """

    name: str

    def __init__(
        self,
        script: Iterable[ScriptedItem],
        *,
        name: str = "scripted",
        usage: Usage | None = None,
        tools: Sequence[Callable[..., Any] | Tool] = (),
        max_tool_turns: int = DEFAULT_MAX_TOOL_TURNS,
        tool_timeout: float = DEFAULT_TOOL_TIMEOUT,
        max_tool_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
        token_delay: float = 0.0,
    ) -> None:
        self.name = name
        self.token_delay = token_delay
        self.usage = usage
        self._toolbox = ToolBox(
            tools, timeout=tool_timeout, max_result_chars=max_tool_result_chars,
            max_turns=max_tool_turns, owner="ScriptedAgent",
        )  # fmt: skip
        self.tool_messages: list[list[dict[str, Any]]] = []
        self.requests: list[Request] = []
        self._script: Iterator[ScriptedItem] = iter(script)
        self._consumed = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ScriptedAgent(name={self.name!r}, {self._consumed} items consumed)"

    async def complete(self, request: Request) -> Reply:
        if not self._toolbox:
            return await self._complete(request)
        requests = 0

        async def send(messages: list[dict[str, Any]], allowed: bool) -> Turn:
            nonlocal requests
            requests += 1
            if requests > 1:
                self.tool_messages.append(list(messages))
            item = self._take(request)
            if isinstance(item, ToolCall) or (
                isinstance(item, Sequence) and not isinstance(item, str) and item
                and all(isinstance(c, ToolCall) for c in item)
            ):  # fmt: skip
                calls = (item,) if isinstance(item, ToolCall) else tuple(item)
                return Turn(
                    text="",
                    calls=tuple(
                        _request_for(call, f"call_{requests}_{i}") for i, call in enumerate(calls)
                    ),
                    usage=Usage(requests=1),
                    finish_reason="tool_calls",
                )
            reply = await self._answer(request, item)
            return Turn(text=reply.text, usage=reply.usage, finish_reason=reply.finish_reason,
                        model=reply.model)  # fmt: skip

        loop = await run_tool_loop(send, [m.to_dict() for m in request.messages], self._toolbox)
        return Reply(
            text=loop.final.text,
            usage=loop.usage,
            finish_reason=loop.final.finish_reason,
            model=loop.final.model,
            tool_calls=loop.records,
        )

    def _take(self, request: Request) -> ScriptedItem:
        with self._lock:
            self.requests.append(request)
            item = next(self._script, None)
            if item is None:
                consumed = self._consumed
            else:
                self._consumed += 1
        if item is None:
            raise AgentError(f"scripted agent: script exhausted after {consumed} replies")
        return item

    async def _complete(self, request: Request) -> Reply:
        return await self._answer(request, self._take(request))

    async def _answer(self, request: Request, item: ScriptedItem) -> Reply:
        reply = await self._scripted(request, item)
        meter = TokenMeter(request.on_tokens)
        if self.token_delay > 0:
            for _ in range(reply.usage.completion_tokens):
                await asyncio.sleep(self.token_delay)
                meter.add()
        meter.done(reply.usage.completion_tokens)
        return reply

    async def _scripted(self, request: Request, item: ScriptedItem) -> Reply:
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, str):
            return self._reply(request, item)
        if isinstance(item, ToolCall) or not callable(item):
            raise TypeError(
                "scripted agent: a ToolCall item needs tools: ScriptedAgent(..., tools=[...])"
            )
        result = item(request)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, Reply):
            return result
        if isinstance(result, str):
            return self._reply(request, result)
        raise TypeError(
            f"scripted agent: a callable item must return str or Reply, got {type(result).__name__}"
        )

    def _reply(self, request: Request, text: str) -> Reply:
        usage = self.usage or Usage(
            prompt_tokens=sum(rough_token_count(m.content) for m in request.messages),
            completion_tokens=rough_token_count(text),
            requests=1,
        )
        return Reply(text=text, usage=usage, finish_reason="stop")


def _request_for(call: ToolCall, default_id: str) -> ToolCallRequest:
    arguments = (
        call.arguments if isinstance(call.arguments, str) else json.dumps(dict(call.arguments))
    )
    return ToolCallRequest(id=call.id or default_id, name=call.name, arguments=arguments)
