"""The OpenAI-compatible agent: any chat-completions endpoint reached with the official client.

This module owns the translation of the ``openai`` client's behaviour into the agent error
policy (see :class:`~symbiont._agents.Agent`): which HTTP statuses are worth retrying, how a
``Retry-After`` header becomes ``retry_after``, how a context-window overflow is recognised,
the phases of a streamed request and their deadlines, and that the API key never reaches a
message, a repr or a log line.

A request has three deadlines. Connecting and receiving the response headers must finish
within ``header_timeout`` (seconds: a server that accepts and never answers is given up
quickly); once the stream has started, ``idle_timeout`` bounds each silence between two
chunks (long, because a reasoning model may think for minutes before its first token); and
``timeout`` bounds the whole request, so a server trickling bytes cannot hold a lane forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import math
import re
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

from symbiont import _config
from symbiont._agents._protocol import Reply, Request, TokenMeter, ToolCallRecord, Usage
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
from symbiont._errors import AgentError, ConfigError, ContextOverflowError, TransientAgentError

if TYPE_CHECKING:
    import openai

logger = logging.getLogger("symbiont.agents")

DEFAULT_TIMEOUT = 600.0
"""Seconds one request may take. LLM replies to long prompts take minutes, not seconds."""

DEFAULT_HEADER_TIMEOUT = 30.0
"""Seconds to connect and receive the response headers (a streaming server sends them at once)."""

DEFAULT_IDLE_TIMEOUT = 300.0
"""Seconds a started stream may stay silent (a reasoning model thinks before its first token)."""

MAX_REPLY_CHARS = 16_000_000
"""Characters of text and tool-call arguments one streamed reply may hold (millions of tokens,
far above any model's output limit; a few megabytes of prose still arrive whole and become
"no code" feedback): a server that streams without end is cut off here instead of filling the
memory until the total deadline."""

REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
"""The values of ``reasoning_effort`` the OpenAI API documents."""

# Local servers (llama.cpp, vLLM, Ollama) accept any key, but the client refuses to start
# without one; this placeholder is obviously not a secret.
_PLACEHOLDER_KEY = "not-needed"

# 408 request timeout, 409 lock conflict, 425 too early, 429 rate limit: the same request may
# succeed later. Every 5xx is treated the same way.
_TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})

# Phrases servers use for "the prompt does not fit": OpenAI, Anthropic-compatible proxies,
# vLLM, llama.cpp ("exceeds the available context size"), Ollama.
_CONTEXT_OVERFLOW = re.compile(
    r"maximum context length|context_length_exceeded|context window|context length"
    r"|context size|exceed_context_size|too many tokens|prompt is too long|input is too long",
    re.IGNORECASE,
)

_MAX_SERVER_MESSAGE = 500


class OpenAIAgent:
    """An LLM behind an OpenAI-compatible chat-completions endpoint.

    ``base_url`` is the API root (``https://api.openai.com/v1``, ``http://127.0.0.1:8080/v1``);
    ``api_key`` may be ``None`` for local servers, which then receive a placeholder (the
    ``OPENAI_API_KEY`` environment variable is *not* read here: :func:`agent_from_env` reads
    ``API_KEY``). ``timeout`` bounds each request in seconds (default 10 minutes). The client
    never retries by itself: the evolve loop owns retries and backoff.

    Replies are streamed (``stream=True``, the default) so that the phases of a request have
    their own deadlines: ``header_timeout`` (default 30 s) for connecting and the response
    headers, ``idle_timeout`` (default 5 minutes) for each silence once the stream has started,
    and ``timeout`` for the whole request. With ``stream=False`` (for servers that cannot
    stream) the server is silent until the whole reply is written, so the headers get
    ``idle_timeout`` instead.

    ``tools`` are plain Python functions (sync or async) the model may call while it writes:
    each becomes an OpenAI tool definition (its JSON schema from the type hints, descriptions
    from the docstring). The agent runs the calls, feeds the results back and asks again, for
    at most ``max_tool_turns`` requests (then the model must answer); each call runs under
    ``tool_timeout`` seconds, its result is cut to ``max_tool_result_chars`` (the model is told),
    and a tool's exception reaches the model as an error message. Every call is recorded in
    the reply's ``tool_calls`` and so in the attempt's trace. See :mod:`symbiont.tools` for
    ready-made tools.

    ``reasoning_effort``, ``temperature`` and ``max_tokens`` are sent when given (a request's
    own ``max_tokens`` wins); ``extra_body`` is merged into every request body, for server
    specific options.

    Errors follow the :class:`~symbiont._agents.Agent` policy: connection failures, timeouts,
    HTTP 408/409/425/429/5xx and unusable response bodies raise
    :class:`~symbiont.TransientAgentError`; a prompt longer than the context window raises
    :class:`~symbiont.ContextOverflowError`; anything else raises :class:`~symbiont.AgentError`
    naming the status, the endpoint, the server's message and the likely fix.
    """

    name: str

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None = None,
        model: str,
        timeout: float = DEFAULT_TIMEOUT,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        stream: bool = True,
        tools: Sequence[Callable[..., Any] | Tool] = (),
        max_tool_turns: int = DEFAULT_MAX_TOOL_TURNS,
        tool_timeout: float = DEFAULT_TOOL_TIMEOUT,
        max_tool_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
        reasoning_effort: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        if not base_url or not base_url.strip():
            raise ConfigError("OpenAIAgent: base_url is empty; give the API root, e.g. .../v1")
        if not model or not model.strip():
            raise ConfigError("OpenAIAgent: model is empty; give the model name the server serves")
        for option, value in (
            ("timeout", timeout),
            ("header_timeout", header_timeout),
            ("idle_timeout", idle_timeout),
        ):
            _config.seconds(f"OpenAIAgent: {option}", value)
        if reasoning_effort is not None and reasoning_effort not in REASONING_EFFORTS:
            raise ConfigError(
                f"OpenAIAgent: unknown reasoning_effort {reasoning_effort!r}; "
                f"valid: {', '.join(REASONING_EFFORTS)}"
            )
        if max_tokens is not None and max_tokens <= 0:
            raise ConfigError(f"OpenAIAgent: max_tokens must be positive, got {max_tokens!r}")
        self.base_url = base_url.strip().rstrip("/")
        self.model = model.strip()
        self.timeout = float(timeout)
        self.header_timeout = float(header_timeout)
        self.idle_timeout = float(idle_timeout)
        self.stream = bool(stream)
        self._toolbox = ToolBox(
            tools, timeout=tool_timeout, max_result_chars=max_tool_result_chars,
            max_turns=max_tool_turns, owner="OpenAIAgent",
        )  # fmt: skip
        self.reasoning_effort = reasoning_effort
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.extra_body: dict[str, Any] = dict(extra_body) if extra_body else {}
        self.name = f"openai:{self.model}"
        # Kept private and out of __repr__; the client object holds it too.
        self._api_key = api_key if api_key else _PLACEHOLDER_KEY
        self._endpoint = f"{_redact_url(self.base_url)}/chat/completions"
        # An httpx client is bound to the event loop it first ran in. symbiont's lanes all run on
        # one background loop, but an agent may also be used directly from other loops, so the
        # client is remade when the loop changes.
        self._client: openai.AsyncOpenAI | None = None
        self._client_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None

    def __repr__(self) -> str:
        return f"OpenAIAgent(base_url={_redact_url(self.base_url)!r}, model={self.model!r})"

    def _client_for_running_loop(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is None or self._client_loop() is not loop:
            import openai

            self._client = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=self._api_key,
                timeout=self.timeout,
                max_retries=0,
            )
            self._client_loop = weakref.ref(loop)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP connections of the current client (a later request opens new ones)."""
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            await client.close()

    async def complete(self, request: Request) -> Reply:
        """Send the conversation, run the tools the model calls (if it has any), return the
        final text, the token usage of every request and the tool calls made."""
        client = self._client_for_running_loop()
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [message.to_dict() for message in request.messages],
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        max_tokens = request.max_tokens if request.max_tokens is not None else self.max_tokens
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.reasoning_effort is not None:
            kwargs["reasoning_effort"] = self.reasoning_effort
        if self.extra_body:
            kwargs["extra_body"] = dict(self.extra_body)

        started = time.monotonic()
        meter = TokenMeter(request.on_tokens)
        records: tuple[ToolCallRecord, ...] = ()
        if not self._toolbox:
            turn = await self._turn(client, kwargs, meter)
            usage = turn.usage
        else:
            tools = self._toolbox.definitions()

            async def send(messages: list[dict[str, Any]], allowed: bool) -> Turn:
                # Tools stay declared on the last turn (the conversation refers to them);
                # tool_choice="none" asks for the answer.
                choice = "auto" if allowed else "none"
                body = {**kwargs, "messages": messages, "tools": tools, "tool_choice": choice}
                return await self._turn(client, body, meter)

            loop = await run_tool_loop(send, list(kwargs["messages"]), self._toolbox)
            turn, usage, records = loop.final, loop.usage, loop.records
        meter.done(usage.completion_tokens)
        reply = Reply(
            text=turn.text,
            usage=usage,
            finish_reason=turn.finish_reason,
            model=turn.model or self.model,
            tool_calls=records,
        )
        logger.debug(
            "%s answered in %.2f s: %d prompt + %d completion tokens, finish_reason=%s",
            self.name,
            time.monotonic() - started,
            reply.usage.prompt_tokens,
            reply.usage.completion_tokens,
            reply.finish_reason,
        )
        return reply

    async def _turn(
        self, client: openai.AsyncOpenAI, kwargs: dict[str, Any], meter: TokenMeter
    ) -> Turn:
        """One request, its failures translated into the agent error policy, with the key
        masked in every message of the error and of the exceptions it chains (a server may
        echo a request back in any error body)."""
        try:
            return await self._translated(client, kwargs, meter)
        except AgentError as exc:
            seen: set[int] = set()
            link: BaseException | None = exc
            while link is not None and id(link) not in seen:
                seen.add(id(link))
                _scrubbed(link, self._api_key)
                link = link.__cause__ or link.__context__
            raise

    async def _translated(
        self, client: openai.AsyncOpenAI, kwargs: dict[str, Any], meter: TokenMeter
    ) -> Turn:
        import openai

        try:
            return await self._send(client, kwargs, meter)
        except _PhaseTimeout as exc:
            raise TransientAgentError(self._timed_out(exc.phase)) from None
        except openai.APITimeoutError as exc:
            raise TransientAgentError(self._timed_out("total")) from exc
        except openai.APIConnectionError as exc:
            raise TransientAgentError(
                f"could not reach {self._endpoint}: {self._shown(_describe_cause(exc))}"
            ) from _scrubbed(exc, self._api_key)
        except openai.APIResponseValidationError as exc:
            raise TransientAgentError(
                f"{self._endpoint} answered with a body that is not a chat completion",
                status=exc.status_code,
            ) from _scrubbed(exc, self._api_key)
        except openai.APIStatusError as exc:
            raise self._status_error(exc) from _scrubbed(exc, self._api_key)
        except openai.APIError as exc:
            # An error event inside a started stream: the server gave up mid-reply.
            raise self._stream_error(exc) from _scrubbed(exc, self._api_key)
        except ValueError as exc:
            # The client parses a JSON content type (or an event's data) without guarding it.
            raise TransientAgentError(
                f"{self._endpoint} answered with a body that is not valid JSON: {exc}"
            ) from exc
        except openai.OpenAIError as exc:
            raise AgentError(
                f"request to {self._endpoint} failed: {self._shown(str(exc))}"
            ) from _scrubbed(exc, self._api_key)

    async def _send(
        self, client: openai.AsyncOpenAI, kwargs: dict[str, Any], meter: TokenMeter
    ) -> Turn:
        """One request, its phases under their deadlines; raises :class:`_PhaseTimeout`."""
        phase = "headers"
        try:
            async with asyncio.timeout(self.timeout) as whole:
                try:
                    if not self.stream:
                        async with asyncio.timeout(self.idle_timeout):
                            completion = await client.chat.completions.create(**kwargs)
                        return self._reply_from(completion)
                    async with asyncio.timeout(self.header_timeout):
                        # create() returns once the response headers are in.
                        stream = await client.chat.completions.create(
                            **kwargs, stream=True, stream_options={"include_usage": True}
                        )
                    phase = "idle"
                    try:
                        return await self._read_stream(stream, meter)
                    finally:
                        with contextlib.suppress(Exception):
                            await stream.close()
                except TimeoutError:
                    if whole.expired():
                        raise
                    raise _PhaseTimeout(phase) from None
        except TimeoutError:
            raise _PhaseTimeout("total") from None

    async def _read_stream(self, stream: Any, meter: TokenMeter) -> Turn:
        content_type = stream.response.headers.get("content-type", "")
        if "text/event-stream" not in content_type:
            # A server that ignores "stream": one body, read under the idle deadline.
            async with asyncio.timeout(self.idle_timeout):
                raw = await stream.response.aread()
            return self._reply_from_body(raw, content_type)
        collected = _Collected()
        while True:
            async with asyncio.timeout(self.idle_timeout):
                chunk = await anext(stream, None)
            if chunk is None:
                break
            if collected.add(chunk):
                meter.add()  # a server streams about one token per content chunk
            if collected.chars > MAX_REPLY_CHARS:
                raise TransientAgentError(
                    f"{self._endpoint} streamed more than {MAX_REPLY_CHARS} characters "
                    "without ending its reply; stopped reading"
                )
        if not collected.chunks:
            raise TransientAgentError(f"{self._endpoint} answered with an empty event stream")
        return collected.turn()

    def _reply_from_body(self, raw: bytes, content_type: str) -> Turn:
        from openai.types.chat import ChatCompletion
        from pydantic import ValidationError

        text = raw.decode("utf-8", errors="replace")
        if "json" not in content_type:
            raise TransientAgentError(
                f"{self._endpoint} answered with a body that is not a chat completion "
                f"({content_type or 'no content type'}): {self._shown(text)!r}"
            )
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise TransientAgentError(
                f"{self._endpoint} answered with a body that is not valid JSON: {exc}"
            ) from exc
        try:
            completion = ChatCompletion.model_validate(data)
        except ValidationError:
            completion = data if not isinstance(data, dict) else ChatCompletion.construct(**data)
        return self._reply_from(completion)

    def _timed_out(self, phase: str) -> str:
        if phase == "headers":
            limit = self.idle_timeout if not self.stream else self.header_timeout
            setting = "idle_timeout" if not self.stream else "header_timeout"
            what = "sent no response headers"
        elif phase == "idle":
            limit, setting, what = self.idle_timeout, "idle_timeout", "stopped streaming"
        else:
            limit, setting, what = self.timeout, "timeout", "did not finish the reply"
        env = {
            "timeout": "SYMBIONT_LLM_TIMEOUT",
            "header_timeout": "SYMBIONT_HEADER_TIMEOUT",
            "idle_timeout": "SYMBIONT_IDLE_TIMEOUT",
        }[setting]
        return (
            f"{self._endpoint} timed out after {limit:g} s: it {what} "
            f"(raise OpenAIAgent({setting}=...) or {env} if the server is just slow)"
        )

    def _stream_error(self, exc: openai.APIError) -> AgentError:
        message = exc.message if isinstance(exc.message, str) else str(exc)
        if _CONTEXT_OVERFLOW.search(message):
            return ContextOverflowError(
                f"the conversation does not fit the context window of {self.model}: "
                f"{self._endpoint} reported: {self._shown(message)}"
            )
        return TransientAgentError(f"{self._endpoint} broke off the stream: {self._shown(message)}")

    def _reply_from(self, completion: object) -> Turn:
        from openai.types.chat import ChatCompletion

        # Without strict validation the client returns the raw text for a non-JSON content
        # type and an unvalidated model for JSON of the wrong shape; both are unusable.
        if not isinstance(completion, ChatCompletion):
            raise TransientAgentError(
                f"{self._endpoint} answered with a body that is not a chat completion: "
                f"{self._shown(str(completion))!r}"
            )
        try:
            choice = completion.choices[0]
            content = choice.message.content
            finish_reason = choice.finish_reason
            calls = tuple(
                ToolCallRequest(
                    id=call.id or f"call_{index}",
                    name=call.function.name,
                    arguments=call.function.arguments or "",
                )
                for index, call in enumerate(choice.message.tool_calls or ())
                if call.type == "function"
            )
        except (AttributeError, IndexError, TypeError, KeyError) as exc:
            raise TransientAgentError(
                f"{self._endpoint} answered with a chat completion without a usable choice"
            ) from exc
        if content is not None and not isinstance(content, str):
            raise TransientAgentError(
                f"{self._endpoint} answered with non-text content: {self._shown(repr(content))}"
            )
        usage = getattr(completion, "usage", None)
        prompt_tokens = _as_count(getattr(usage, "prompt_tokens", 0))
        completion_tokens = _as_count(getattr(usage, "completion_tokens", 0))
        model = getattr(completion, "model", None)
        return Turn(
            text=content or "",
            calls=calls,
            usage=Usage(
                prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, requests=1
            ),
            finish_reason=finish_reason if isinstance(finish_reason, str) else None,
            model=model if isinstance(model, str) and model else self.model,
        )

    def _status_error(self, exc: openai.APIStatusError) -> AgentError:
        status = exc.status_code
        # Classified on the server's own words: masking first could break the phrases matched
        # below (a short key hides inside ordinary words).
        raw_message = _server_message(exc)
        overflow = bool(
            _CONTEXT_OVERFLOW.search(raw_message) or _CONTEXT_OVERFLOW.search(exc.code or "")
        )
        server_message = self._shown(raw_message)
        what = f"{self._endpoint} answered HTTP {status}"
        if server_message:
            what = f"{what}: {server_message}"
        if status in _TRANSIENT_STATUSES or status >= 500:
            return TransientAgentError(
                what, status=status, retry_after=parse_retry_after(exc.response.headers)
            )
        if status in (400, 413) and overflow:
            return ContextOverflowError(
                f"the conversation does not fit the context window of {self.model}: {what}",
                status=status,
            )
        if status in (401, 403):
            return AgentError(f"{what} (check API_KEY)", status=status)
        if status == 404:
            return AgentError(f"{what} (check MODEL and BASE_URL)", status=status)
        return AgentError(what, status=status)

    def _scrub(self, text: str) -> str:
        return _redact(text, self._api_key)

    def _shown(self, text: str) -> str:
        """A server's text as a message shows it: masked first, then cut (cutting first could
        leave the start of a key that straddles the cut)."""
        return _truncate(self._scrub(text))


class _PhaseTimeout(Exception):
    """A deadline of one phase of a request passed: ``"headers"``, ``"idle"`` or ``"total"``."""

    def __init__(self, phase: str) -> None:
        super().__init__(phase)
        self.phase = phase


@dataclass(slots=True)
class _Collected:
    """The pieces of a streamed reply, joined as they arrive."""

    chunks: int = 0
    chars: int = 0
    parts: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None
    model: str | None = None
    usage: Usage = field(default_factory=Usage)

    def add(self, chunk: Any) -> bool:
        """Joins ``chunk`` in; whether it carried written text or tool-call arguments."""
        self.chunks += 1
        wrote = False
        model = getattr(chunk, "model", None)
        if isinstance(model, str) and model:
            self.model = model
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = Usage(
                prompt_tokens=_as_count(getattr(usage, "prompt_tokens", 0)),
                completion_tokens=_as_count(getattr(usage, "completion_tokens", 0)),
                requests=1,
            )
        for choice in getattr(chunk, "choices", None) or ():
            if getattr(choice, "index", 0) != 0:
                continue
            if isinstance(choice.finish_reason, str):
                self.finish_reason = choice.finish_reason
            delta = choice.delta
            if delta is None:
                continue
            if isinstance(delta.content, str):
                self.parts.append(delta.content)
                self.chars += len(delta.content)
                wrote = wrote or bool(delta.content)
            for call in delta.tool_calls or ():
                if call.index not in self.tool_calls:
                    self.chars += 100  # an endless stream of empty calls fills memory too
                slot = self.tool_calls.setdefault(
                    call.index, {"id": None, "name": "", "arguments": ""}
                )
                if call.id:
                    slot["id"] = call.id
                if call.function is not None:
                    if call.function.name:
                        slot["name"] += call.function.name
                        self.chars += len(call.function.name)
                    if call.function.arguments:
                        slot["arguments"] += call.function.arguments
                        self.chars += len(call.function.arguments)
                        wrote = True
        return wrote

    def turn(self) -> Turn:
        calls = tuple(
            ToolCallRequest(
                id=slot["id"] or f"call_{index}", name=slot["name"], arguments=slot["arguments"]
            )
            for index, slot in sorted(self.tool_calls.items())
        )
        return Turn(
            text="".join(self.parts),
            calls=calls,
            usage=self.usage if self.usage.requests else Usage(requests=1),
            finish_reason=self.finish_reason,
            model=self.model,
        )


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a response asks the client to wait, or ``None``.

    Reads ``retry-after-ms`` (milliseconds, sent by OpenAI) first, then ``Retry-After`` as
    seconds or as an HTTP date. A date in the past means "now" (0.0).
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    milliseconds = lowered.get("retry-after-ms")
    if milliseconds is not None:
        value = _finite(milliseconds)
        if value is not None:
            return max(value / 1000.0, 0.0)
    header = lowered.get("retry-after")
    if header is None:
        return None
    value = _finite(header)
    if value is not None:
        return max(value, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(header.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _finite(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _server_message(exc: openai.APIStatusError) -> str:
    """The error message the server sent, without the client's ``Error code: N -`` wrapper."""
    body = exc.body
    if isinstance(body, Mapping):
        message = body.get("message")
        if isinstance(message, str) and message:
            return message
        detail = body.get("detail") or body.get("error")
        if isinstance(detail, str) and detail:
            return detail
    if isinstance(body, str) and body.strip():
        return body.strip()
    try:
        text = exc.response.text.strip()
    except Exception:  # a streamed body that was never read
        text = ""
    return text


def _describe_cause(exc: BaseException) -> str:
    """The low-level reason of a connection error ("connection refused"), not just its class."""
    cause = exc.__cause__ or exc.__context__
    while cause is not None and cause.__cause__ is not None:
        cause = cause.__cause__
    detail = str(cause) if cause is not None and str(cause) else ""
    base = str(exc).rstrip(".")
    return f"{base} ({detail})" if detail and detail not in base else base


def _scrubbed(exc: BaseException, secret: str) -> BaseException:
    """``exc`` with the secret removed from its message, so tracebacks cannot leak it.

    Servers echo keys back (partially or not) in 401 bodies; the chained exception is printed
    with every traceback, so it is cleaned in place before it is attached as ``__cause__``.
    """
    if any(_redact(str(arg), secret) != str(arg) for arg in exc.args):
        exc.args = tuple(_redact(str(arg), secret) for arg in exc.args)
        message = getattr(exc, "message", None)
        if isinstance(message, str):
            exc.message = _redact(message, secret)  # type: ignore[attr-defined]
    return exc


# A key shorter than this is a placeholder ("x", "none", "sk-local"), not a secret: masking it
# would only mangle the words it happens to appear in.
_MIN_SECRET_CHARS = 12


def _redact(text: str, secret: str) -> str:
    """``text`` with every copy of ``secret`` replaced by ``***``, also URL-encoded ones (a
    proxy's error page may quote the request's URL or form body).

    Only keys of a plausible length are masked, so ordinary words survive a placeholder key;
    such a key is masked wherever it appears, even inside a longer token (``key%3D<key>``).
    """
    if len(secret) < _MIN_SECRET_CHARS or secret == _PLACEHOLDER_KEY:
        return text
    forms = {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), f) for f in forms}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


def _redact_url(url: str) -> str:
    """``url`` without a ``user:password@`` part."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def _truncate(text: str, limit: int = _MAX_SERVER_MESSAGE) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more chars)"


def _as_count(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
