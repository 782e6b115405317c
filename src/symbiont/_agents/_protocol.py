"""The Agent protocol and the values that cross it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from symbiont._decl import Declarations
    from symbiont._failures import Failure

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One chat message."""

    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Token usage, summed with ``+``. ``requests`` counts the requests it covers."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            requests=self.requests + other.requests,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """What the loop asks an agent for.

    ``messages`` is the whole conversation so far, worded for a chat model. The same content
    is also given as fields, for an agent that writes its own prompt (the local base model):
    ``task`` (the user's task), ``current`` (the code being improved, None for placeholder
    bodies), ``rejected`` (the code of the last failed attempt) and ``failure`` (why it
    failed). ``declarations`` lets an agent constrain its output (the local model builds a
    grammar from it); ``seed`` asks for reproducible sampling where the backend supports it.
    ``on_tokens(tokens, per_second)``, when set, is told as the reply is written how many
    tokens it has so far (an agent that streams reports through a :class:`TokenMeter`).
    """

    messages: tuple[Message, ...]
    declarations: Declarations | None = None
    seed: int | None = None
    max_tokens: int | None = None
    task: str | None = None
    current: str | None = None
    rejected: str | None = None
    failure: Failure | None = None
    on_tokens: TokenCallback | None = field(default=None, compare=False, repr=False)


TokenCallback = Callable[[int, float], None]


class TokenMeter:
    """Counts the tokens of one reply as they arrive and reports them to a request's
    ``on_tokens``, at most every ``interval`` seconds (a fast model writes hundreds a second;
    a display needs a few), plus once more at :meth:`done` with the final count."""

    def __init__(self, callback: TokenCallback | None, interval: float = 0.1) -> None:
        self.callback = callback
        self.interval = interval
        self.tokens = 0
        self._first: float | None = None
        self._last_report = 0.0
        self._reported = -1

    def add(self, tokens: int = 1) -> None:
        now = time.monotonic()
        if self._first is None:
            self._first = now
        self.tokens += tokens
        if self.callback is not None and now - self._last_report >= self.interval:
            self._report(now)

    def done(self, tokens: int | None = None) -> None:
        """The reply is complete; ``tokens``: the count the server reported, if any."""
        if tokens is not None and tokens > self.tokens:
            self.tokens = tokens
        if self.callback is not None and self.tokens and self.tokens != self._reported:
            self._report(time.monotonic())

    def _report(self, now: float) -> None:
        assert self.callback is not None
        self._last_report = now
        self._reported = self.tokens
        seconds = now - (self._first if self._first is not None else now)
        self.callback(self.tokens, self.tokens / seconds if seconds > 0 else 0.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallRecord:
    """One tool call the model made while writing a reply.

    ``arguments`` is the JSON text the model sent, ``result`` what the model was shown (a
    result cut to size says so; an error is ``"error: ..."`` and ``error`` is True),
    ``seconds`` how long the tool ran, ``turn`` the 1-based request that asked for it.
    """

    name: str
    arguments: str
    result: str
    error: bool = False
    seconds: float = 0.0
    truncated: bool = False
    turn: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """An agent's answer. ``finish_reason`` is ``"stop"``, ``"length"`` (cut off) or ``None``.

    ``tool_calls`` lists the tools the agent ran (in order) before this final text.
    """

    text: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    model: str | None = None
    tool_calls: tuple[ToolCallRecord, ...] = ()


@runtime_checkable
class Agent(Protocol):
    """An LLM, reached any way: ``complete`` takes the conversation and returns one reply.

    Inputs: a :class:`Request` (the full conversation, the declarations, an optional seed).
    Output: a :class:`Reply` with the text and token usage (zeros when unknown). An empty or
    unusable text is *not* an error: the loop feeds it back as a failed attempt.

    Error policy (the loop depends on it):
    - :class:`~symbiont.TransientAgentError` for failures worth retrying unchanged (connection
      refused or reset, timeouts, HTTP 408/425/429/5xx, a malformed response body); set
      ``retry_after`` when the server asked for a delay. The loop retries without spending an
      attempt, with capped exponential backoff.
    - :class:`~symbiont.ContextOverflowError` when the conversation exceeds the context window:
      the loop restarts the conversation from the base prompt.
    - :class:`~symbiont.AgentError` for anything else (bad key, unknown model): the lane ends.
    Any other exception is a bug in the agent and ends the lane.

    ``name`` identifies the agent in traces and logs (never a secret).
    """

    name: str

    async def complete(self, request: Request) -> Reply: ...
