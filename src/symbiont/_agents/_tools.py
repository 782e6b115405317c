"""Tools the model may call while it writes a reply: plain Python functions, their JSON schemas,
and the loop that runs them.

This module owns turning a function (sync or async) into an OpenAI tool definition (the schema
from its type hints, the descriptions from its docstring), running one call under a deadline
with its result cut to size, and the tool loop shared by every agent that supports tools:
ask, run the calls the model made, feed the results back, until the model answers with text or
its turn budget is spent. A failing tool is data for the model, never an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import inspect
import json
import logging
import re
import threading
import time
import types
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from symbiont import _config, _prompts
from symbiont._agents._protocol import ToolCallRecord, Usage
from symbiont._errors import ConfigError

logger = logging.getLogger("symbiont.agents")

DEFAULT_MAX_TOOL_TURNS = 10
"""Requests in which the model may call tools before it must answer."""

DEFAULT_TOOL_TIMEOUT = 30.0
"""Seconds one tool call may run."""

DEFAULT_MAX_RESULT_CHARS = 20_000
"""Characters of one tool result the model is shown (about 5,000 tokens)."""

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Tool:
    """A Python function the model may call: ``name``, ``description`` and the JSON schema of
    its ``parameters``, as OpenAI's ``tools`` field wants them."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    function: Callable[..., Any]

    def definition(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }


def tool_from_function(function: Callable[..., Any] | Tool) -> Tool:
    """The :class:`Tool` for ``function``: its ``__name__``, its docstring's text (parameter
    lines of an ``Args:`` section or ``:param x:`` fields describe the parameters) and a JSON
    schema from its type hints (``int``, ``float``, ``str``, ``bool``, ``None``, lists, tuples,
    dicts, ``Literal``, enums, unions; a parameter without a default is required).

    Raises :class:`~symbiont.ConfigError` for what cannot be offered to a model: ``*args``,
    positional-only parameters, a name OpenAI refuses, a type without a JSON form.
    """
    if isinstance(function, Tool):
        return function
    if not callable(function):
        raise ConfigError(f"tools: {function!r} is not a function")
    name = getattr(function, "__name__", "")
    if not _NAME.match(name):
        raise ConfigError(
            f"tools: {name!r} cannot be a tool name (1-64 letters, digits, '_' or '-'); "
            "wrap the callable in a def with such a name"
        )
    try:
        signature = inspect.signature(function)
        hints = typing.get_type_hints(function)
    except (TypeError, ValueError, NameError) as exc:
        raise ConfigError(f"tools: cannot read the signature of {name!r}: {exc}") from exc
    summary, described = _parse_docstring(inspect.getdoc(function) or "")
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise ConfigError(f"tools: {name}() takes *{parameter.name}; tools need named ones")
        if parameter.kind is parameter.POSITIONAL_ONLY:
            raise ConfigError(f"tools: {name}() has positional-only {parameter.name!r}")
        hint = hints.get(parameter.name, Any)
        try:
            schema = _schema(hint)
        except TypeError as exc:
            raise ConfigError(
                f"tools: parameter {parameter.name!r} of {name}() has a type with no JSON form "
                f"({exc}); use int, float, str, bool, list, dict or Literal"
            ) from exc
        if parameter.name in described:
            schema["description"] = described[parameter.name]
        properties[parameter.name] = schema
        if parameter.default is parameter.empty:
            required.append(parameter.name)
    parameters = {"type": "object", "properties": properties, "required": required}
    return Tool(name=name, description=summary or name, parameters=parameters, function=function)


def _schema(hint: Any) -> dict[str, Any]:
    if hint is Any or hint is inspect.Parameter.empty:
        return {}
    if hint is type(None) or hint is None:
        return {"type": "null"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint is str:
        return {"type": "string"}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_schema(arg) for arg in args]}
    if hint in (list, tuple, set, frozenset) or origin in (list, set, frozenset, Sequence):
        return {"type": "array", "items": _schema(args[0]) if args else {}}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _schema(args[0])}
        items = [_schema(arg) for arg in args]
        return {"type": "array", "prefixItems": items, "minItems": len(items),
                "maxItems": len(items)}  # fmt: skip
    if hint is dict or origin in (dict, Mapping):
        return {"type": "object", "additionalProperties": _schema(args[1]) if args else {}}
    raise TypeError(repr(hint))


_ARGS_HEADER = re.compile(r"^(Args|Arguments|Parameters):\s*$")
_ARG_LINE = re.compile(r"^\s+(\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)$")
_PARAM_FIELD = re.compile(r"^:param\s+(?:[\w\[\], ]+\s+)?(\w+):\s*(.+)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The description (the text before any parameter section) and each parameter's line."""
    summary: list[str] = []
    params: dict[str, str] = {}
    in_args = False
    for line in doc.splitlines():
        field_match = _PARAM_FIELD.match(line.strip())
        if field_match:
            params[field_match.group(1)] = field_match.group(2).strip()
            continue
        if _ARGS_HEADER.match(line.strip()):
            in_args = True
            continue
        if in_args:
            arg = _ARG_LINE.match(line)
            if arg:
                params[arg.group(1)] = arg.group(2).strip()
                continue
            if line.strip() and not line.startswith((" ", "\t")):
                in_args = False
            else:
                continue
        if not line.startswith(":") and not params:
            summary.append(line)
    return "\n".join(summary).strip(), params


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallRequest:
    """A call as the model sent it: ``arguments`` is its JSON text."""

    id: str
    name: str
    arguments: str


class ToolBox:
    """The tools of one agent, with the limits every call runs under.

    ``timeout`` bounds each call (an async tool is cancelled; a sync tool runs in a daemon
    thread of its own, which Python cannot stop: it is abandoned and its result discarded);
    ``max_result_chars`` cuts each result, telling the model so.
    """

    def __init__(
        self,
        tools: Sequence[Callable[..., Any] | Tool],
        *,
        timeout: float = DEFAULT_TOOL_TIMEOUT,
        max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
        max_turns: int = DEFAULT_MAX_TOOL_TURNS,
        owner: str = "agent",
    ) -> None:
        if isinstance(tools, Mapping) or callable(tools):
            raise ConfigError(f"{owner}: tools must be a list of functions")
        _config.seconds(f"{owner}: tool_timeout", timeout)
        _config.count(f"{owner}: max_tool_turns", max_turns)
        _config.count(f"{owner}: max_tool_result_chars", max_result_chars)
        self.tools: dict[str, Tool] = {}
        for function in tools:
            tool = tool_from_function(function)
            if tool.name in self.tools:
                raise ConfigError(f"{owner}: two tools are named {tool.name!r}")
            self.tools[tool.name] = tool
        self.timeout = float(timeout)
        self.max_result_chars = max_result_chars
        self.max_turns = max_turns

    def __bool__(self) -> bool:
        return bool(self.tools)

    def definitions(self) -> list[dict[str, Any]]:
        return [tool.definition() for tool in self.tools.values()]

    async def run(self, call: ToolCallRequest, *, turn: int) -> ToolCallRecord:
        """Runs one call; every failure becomes an error text for the model."""
        started = time.perf_counter()
        error = True
        truncated = False
        tool = self.tools.get(call.name)
        if tool is None:
            text = _prompts.tool_unknown(call.name, sorted(self.tools))
        else:
            try:
                arguments = json.loads(call.arguments) if call.arguments.strip() else {}
                if not isinstance(arguments, dict):
                    raise ValueError("they must be a JSON object")
                inspect.signature(tool.function).bind(**arguments)
            except (ValueError, TypeError, RecursionError) as exc:  # RecursionError: too nested
                text = _prompts.tool_bad_arguments(call.name, str(exc))
            else:
                text, error = await self._call(tool, arguments)
        if len(text) > self.max_result_chars:
            text = text[: self.max_result_chars] + _prompts.tool_result_cut(
                self.max_result_chars, len(text)
            )
            truncated = True
        seconds = time.perf_counter() - started
        logger.info(
            "tool %s(%s) %s in %.2f s%s", call.name, _short(call.arguments),
            "failed" if error else "answered", seconds, " (result cut)" if truncated else "",
        )  # fmt: skip
        return ToolCallRecord(
            name=call.name, arguments=call.arguments, result=text, error=error,
            seconds=seconds, truncated=truncated, turn=turn,
        )  # fmt: skip

    async def _call(self, tool: Tool, arguments: dict[str, Any]) -> tuple[str, bool]:
        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                if inspect.iscoroutinefunction(tool.function):
                    result = await tool.function(**arguments)
                else:
                    result = await _in_daemon_thread(tool.function, arguments)
                    if inspect.isawaitable(result):
                        result = await result
        except TimeoutError as exc:
            if deadline.expired():
                return _prompts.tool_timed_out(tool.name, self.timeout), True
            # The tool's own deadline (a native call stopped by symbiont, say): its error.
            return _prompts.tool_error(tool.name, f"{type(exc).__name__}: {exc}"), True
        except Exception as exc:
            return _prompts.tool_error(tool.name, f"{type(exc).__name__}: {exc}"), True
        try:
            return _as_text(result), False
        except Exception as exc:  # a result whose repr raises, a dataclass asdict cannot copy
            return _prompts.tool_error(tool.name, f"its result cannot be shown: {exc!r}"), True


async def _in_daemon_thread(function: Callable[..., Any], arguments: dict[str, Any]) -> Any:
    """Runs a sync tool in a thread of its own: one that outlives its deadline is abandoned,
    and as a daemon it cannot keep the interpreter (or ``asyncio.run``'s executor shutdown)
    waiting for it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(outcome: Any, error: Exception | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(outcome)

    def run() -> None:
        try:
            outcome = function(**arguments)
        except Exception as exc:  # handed to the awaiting task, which reports it
            with contextlib.suppress(RuntimeError):  # the loop may be gone
                loop.call_soon_threadsafe(settle, None, exc)
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, outcome, None)

    threading.Thread(target=run, name=f"symbiont-tool:{function.__name__}", daemon=True).start()
    return await future


def _as_text(result: object) -> str:
    if isinstance(result, str):
        return result
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        result = dataclasses.asdict(result)
    try:
        return json.dumps(result, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(result)


def _short(text: str, limit: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else f"{line[: limit - 3]}..."


@dataclass(frozen=True, slots=True, kw_only=True)
class Turn:
    """One answer of the model inside the tool loop."""

    text: str
    calls: tuple[ToolCallRequest, ...] = ()
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    model: str | None = None


Send = Callable[[list[dict[str, Any]], bool], Awaitable[Turn]]
"""Sends the conversation (OpenAI message dicts); the flag is True when tools may be called."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopResult:
    final: Turn
    usage: Usage
    records: tuple[ToolCallRecord, ...]


async def run_tool_loop(send: Send, messages: list[dict[str, Any]], toolbox: ToolBox) -> LoopResult:
    """Asks, runs the calls the model makes and feeds their results back, until the model
    answers without calls. After ``toolbox.max_turns`` requests with calls, one last request
    forbids tools; calls the model still makes then are answered with an error, unrun."""
    usage = Usage()
    records: list[ToolCallRecord] = []
    conversation = list(messages)
    turn = 0
    while True:
        turn += 1
        allowed = turn <= toolbox.max_turns
        answer = await send(conversation, allowed)
        usage = usage + answer.usage
        if not answer.calls or not allowed:
            if answer.calls:
                for call in answer.calls:
                    records.append(ToolCallRecord(
                        name=call.name, arguments=call.arguments,
                        result=_prompts.tool_budget_spent(toolbox.max_turns), error=True,
                        turn=turn,
                    ))  # fmt: skip
                logger.info("the model still called tools after %d turns; its calls were not run",
                            toolbox.max_turns)  # fmt: skip
            return LoopResult(final=answer, usage=usage, records=tuple(records))
        conversation.append({
            "role": "assistant",
            "content": answer.text or None,
            "tool_calls": [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments}}
                for c in answer.calls
            ],
        })  # fmt: skip
        for call in answer.calls:
            record = await toolbox.run(call, turn=turn)
            records.append(record)
            conversation.append({"role": "tool", "tool_call_id": call.id, "content": record.result})
