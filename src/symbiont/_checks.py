"""Running a user's check on a candidate, and what a failed check becomes.

Shared by the runtime (checks in this process, on a thread) and the isolation worker (checks in
a worker process, in its main thread), so neither imports the other.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from symbiont import _prompts
from symbiont._decl import SourceMap
from symbiont._decl._syntax import excerpt
from symbiont._errors import PanicError, TimeoutError
from symbiont._failures import Failure
from symbiont._load import Functions, Maps

Check = Callable[..., "float | Awaitable[float | None] | None"]
"""A candidate check: called with the candidate's functions (and, if it takes a second
argument, their vectorised forms); returns an optional score, or raises to reject the candidate
(the exception's message is fed back to the LLM)."""

CANDIDATE_FILE = "candidate.rs"


def check_failure(exc: BaseException, code: str, compiled: str | None = None) -> Failure:
    """A failed check as a failure record about ``code``.

    ``compiled`` is the layout the library was built from when it differs (the cache reuses a
    library for code with the same tokens): panic locations are moved to the same token in
    ``code``, so the LLM is shown its own lines.
    """
    if isinstance(exc, PanicError):
        if exc.file == CANDIDATE_FILE and exc.line:
            line, column = exc.line, exc.column
            if compiled is not None and compiled != code and column:
                layouts = SourceMap.between_layouts(compiled, code)
                moved = layouts.written_position(line, column) if layouts else None
                if moved is not None:
                    line, column = moved
                    exc.line, exc.column = line, column
            return Failure(
                kind="panic",
                message=_prompts.clipped(exc.message),
                function=exc.function,
                line=line,
                column=column,
                excerpt=excerpt(code, line, column or 1),
            )
        where = f" (in {exc.file})" if exc.file else ""
        return Failure(
            kind="panic", message=_prompts.clipped(f"{exc.message}{where}"), function=exc.function
        )
    if isinstance(exc, TimeoutError):
        first, _, rest = str(exc).partition("\n")
        return Failure(kind="timeout", message=first, details=rest)
    text = _prompts.clipped(str(exc).strip()) or type(exc).__name__
    if not isinstance(exc, AssertionError):
        text = f"{type(exc).__name__}: {text}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    message = lines[0]
    if message.endswith(":") and len(lines) > 1:  # "3 cases fail:" says nothing on its own
        message = f"{message} {lines[1]}"
    return Failure(kind="check_failed", message=message, details=text if len(lines) > 1 else "")


def _wants_map(check: Check) -> bool:
    try:
        params = inspect.signature(check).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2


async def run_check(check: Check, fns: Functions, maps: Maps) -> float | None:
    """Runs a check off the event loop (native code holds the GIL, HTTP must keep flowing).
    A check taking two arguments also receives the vectorised functions."""
    args: tuple[Any, ...] = (fns, maps) if _wants_map(check) else (fns,)
    if inspect.iscoroutinefunction(check):
        result = await check(*args)
    else:
        result = await asyncio.to_thread(check, *args)
        if inspect.isawaitable(result):
            result = await result
    return _score(result)


def run_check_sync(check: Check, fns: Functions, maps: Maps) -> float | None:
    """The same, in the calling thread (isolation workers have no event loop)."""
    return _score(run_check_raw(check, fns, maps))


def run_check_raw(check: Check, fns: Functions, maps: Maps) -> object:
    """What ``check`` returned, awaited, not yet read as a score (a worker asked for an
    evaluation reads metrics and feedback from it)."""
    args: tuple[Any, ...] = (fns, maps) if _wants_map(check) else (fns,)
    result = check(*args)
    if inspect.isawaitable(result):
        result = asyncio.run(result)  # type: ignore[arg-type]
    return result


def _score(result: object) -> float | None:
    if result is False:
        raise AssertionError("the check returned False")
    if result is None or result is True:
        return None
    if isinstance(result, (int, float)):
        return float(result)
    raise TypeError(f"a check must return a number or None, got {type(result).__name__}")
