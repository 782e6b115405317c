"""Ready-made tools for agents that call tools while they write code.

Give them to an agent that supports tools (:class:`~symbiont.OpenAIAgent`, or
:class:`~symbiont.testing.ScriptedAgent` in tests)::

    import symbiont as sb

    rt = sb.Runtime(DECLARATIONS)
    agent = sb.OpenAIAgent(base_url=..., model=..., tools=[
        sb.tools.call(rt),              # run the active revision on arguments of its choice
        sb.tools.try_code(rt, check),   # compile and check a draft before answering
    ])
    rt.evolve(agent, "Make it faster.", check=check)

Every call lands in the attempt's trace (``AttemptTrace.tool_calls``) and counts against the
agent's ``max_tool_turns``. Plain Python functions are tools too: pass them as they are.
"""

from __future__ import annotations

import array
import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from symbiont import _config, _prompts
from symbiont._agents import Tool

if TYPE_CHECKING:
    from symbiont._decl._types import RustType
    from symbiont._runtime import Runtime

__all__ = ["Tool", "call", "try_code"]

DEFAULT_CALL_TIMEOUT = 1.0
"""Seconds one native call made by :func:`call` may run before it is stopped."""

# array.array type codes of the slice element types a model can fill from a JSON list.
_TYPECODES = {
    "i8": "b", "u8": "B", "i16": "h", "u16": "H", "i32": "i", "u32": "I",
    "i64": "q", "u64": "Q", "isize": "q", "usize": "Q", "f32": "f", "f64": "d",
}  # fmt: skip


def call(rt: Runtime, *, timeout: float = DEFAULT_CALL_TIMEOUT) -> Tool:
    """A tool that calls the runtime's active revision: ``call_function(function, arguments)``.

    The model names a declared function and gives its arguments as a JSON list (slices as
    lists, ``&mut`` scalars as their initial value). It gets back the return value and the
    final value of every ``&mut`` argument, as JSON. Each call stops after ``timeout`` seconds
    (a :class:`~symbiont.TimeoutError` the model reads as the tool's error); a panic reaches
    the model the same way.
    """
    _config.seconds("tools.call: timeout", timeout)
    functions = {f.name: f for f in rt.declarations.functions}
    fns = rt.with_timeout(timeout)

    def call_function(function: str, arguments: list[Any]) -> str:
        decl = functions.get(function)
        if decl is None:
            raise ValueError(f"no function {function!r}; declared: {', '.join(functions)}")
        if not isinstance(arguments, list) or len(arguments) != len(decl.params):
            raise ValueError(f"{decl.signature} takes {len(decl.params)} argument(s) in a list")
        values = [
            _to_native(p.type, v, p.name) for p, v in zip(decl.params, arguments, strict=True)
        ]
        result = getattr(fns, function)(*values)
        answer: dict[str, Any] = {"result": _to_json(result)}
        changed = {
            p.name: _to_json(v)
            for p, v in zip(decl.params, values, strict=True)
            if p.type.kind == "mut_ref" or (p.type.kind == "slice" and p.type.mutable)
        }
        if changed:
            answer["arguments_after"] = changed
        return json.dumps(answer)

    signatures = "\n".join(f"  {f.signature}" for f in rt.declarations.functions)
    return Tool(
        name="call_function",
        description=_prompts.call_tool_description(signatures, timeout),
        parameters={
            "type": "object",
            "properties": {
                "function": {"enum": list(functions), "description": _prompts.CALL_TOOL_FUNCTION},
                "arguments": {"type": "array", "description": _prompts.CALL_TOOL_ARGUMENTS},
            },
            "required": ["function", "arguments"],
        },
        function=call_function,
    )


def try_code(rt: Runtime, check: Callable[..., Any] | None = None) -> Tool:
    """A tool that compiles and checks a draft without registering it: ``try_code(code)``.

    The draft goes through exactly what a candidate reply goes through (extraction, validation,
    the build limits, the isolation of the check, the check's call deadlines) and the model
    reads the same feedback a failed candidate would give, or that the draft passes (with its
    score). Nothing is registered or activated; the final answer is still the reply.
    """
    from symbiont._evolve import Rejected, run_async
    from symbiont._validate import Rejection, validate

    async def try_draft(code: str) -> str:
        checked = validate(code, rt.declarations, rt.policy)
        if isinstance(checked, Rejection):
            return _prompts.draft_failed(checked.failure())
        outcome = await run_async(rt._draft(checked, check=check))
        if isinstance(outcome, Rejected):
            return _prompts.draft_failed(outcome.failure)
        return _prompts.draft_passed(outcome.score, check is not None)

    try_draft.__name__ = "try_code"
    return Tool(
        name="try_code",
        description=_prompts.TRY_CODE_TOOL,
        parameters={
            "type": "object",
            "properties": {"code": {"type": "string", "description": _prompts.TRY_CODE_CODE}},
            "required": ["code"],
        },
        function=try_draft,
    )


def _to_native(rust: RustType, value: Any, name: str) -> Any:
    from symbiont._load import Cell

    if rust.kind == "slice" and rust.elem is not None:
        if not isinstance(value, list):
            raise ValueError(f"argument {name!r} ({rust.rust}) must be a JSON list")
        code = _TYPECODES.get(rust.elem.name)
        if code is None:
            raise ValueError(f"argument {name!r}: slices of {rust.elem.rust} are not supported")
        return array.array(code, value)
    if rust.kind == "mut_ref" and rust.elem is not None:
        return Cell(value, rust.elem.name)
    return value


def _to_json(value: Any) -> Any:
    from symbiont._load import Cell

    if isinstance(value, Cell):
        return _to_json(value.value)
    if isinstance(value, array.array):
        return value.tolist()
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value
