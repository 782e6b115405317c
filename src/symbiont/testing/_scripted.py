"""The scripted agent: an in-process :class:`~symbiont._agents.Agent` that replays a script."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TypeAlias

from symbiont._agents._protocol import Reply, Request, Usage
from symbiont._errors import AgentError
from symbiont.testing._server import rough_token_count

ScriptedResult: TypeAlias = str | Reply
ScriptedItem: TypeAlias = (
    str
    | BaseException
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
    ) -> None:
        self.name = name
        self.usage = usage
        self.requests: list[Request] = []
        self._script: Iterator[ScriptedItem] = iter(script)
        self._consumed = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ScriptedAgent(name={self.name!r}, {self._consumed} items consumed)"

    async def complete(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            item = next(self._script, None)
            if item is None:
                consumed = self._consumed
            else:
                self._consumed += 1
        if item is None:
            raise AgentError(f"scripted agent: script exhausted after {consumed} replies")
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, str):
            return self._reply(request, item)
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
