"""Running the user's evaluator on a candidate: repeats, deadline, result parsing, error policy.

The policy (documented on ``Runtime.search``): a candidate is rejected by ``AssertionError`` or
:class:`Reject`, or by symbiont's own candidate errors (panic, timeout, crash); any other
exception is the evaluator's bug and stops the run with the user's traceback, unless
``evaluator_errors="feedback"`` turns it into feedback for the LLM.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import ctypes
import hashlib
import inspect
import logging
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from symbiont._errors import ConfigError, PanicError, TimeoutError
from symbiont._search._types import Reject, Score, finite

log = logging.getLogger("symbiont.search")

Evaluate = Callable[..., Any]


class EvaluatorBug(BaseException):
    """Carries an exception the evaluator raised out through the lane machinery, which treats
    every ``Exception`` from a check as the candidate's failure. Never seen by users: the
    search re-raises ``error``."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(repr(error))
        self.error = error


class _Deadline(BaseException):
    """Injected into an evaluator thread past its deadline (a BaseException so that a broad
    ``except Exception`` in the evaluator does not swallow it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Measured:
    """A candidate's evaluation: the median objective over the repeats, median metrics, the
    spread (max - min) of the objective, the last feedback, and one row per repeat."""

    score: float
    metrics: dict[str, float]
    spread: float | None
    feedback: str | None
    rows: list[dict[str, Any]] = field(default_factory=list)


def wants_map(fn: Evaluate) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2


def source_hash(fn: Evaluate) -> str:
    """A hash of the evaluator's source (its bytecode and constants when the source is not
    available), so that a resumed run notices a changed evaluator."""
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        text = repr((code.co_code, code.co_consts)) if code is not None else repr(fn)
    return hashlib.sha256(text.encode()).hexdigest()


async def _in_thread(fn: Evaluate, args: tuple[Any, ...], timeout: float | None) -> Any:
    """Runs ``fn(*args)`` in its own thread; past ``timeout`` the thread gets an exception
    injected (which stops a Python loop; native calls stop at their own deadline)."""
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def target() -> None:
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                result = asyncio.run(result)  # type: ignore[arg-type]
            outcome: tuple[bool, Any] = (True, result)
        except BaseException as exc:
            outcome = (False, exc)
        if not future.done():
            if outcome[0]:
                future.set_result(outcome[1])
            else:
                future.set_exception(outcome[1])

    thread = threading.Thread(target=target, name="symbiont-evaluate", daemon=True)
    thread.start()
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
    except builtins.TimeoutError as exc:
        if isinstance(exc, TimeoutError):  # symbiont's: raised by the evaluation itself
            raise
        ident = thread.ident
        if ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(ident), ctypes.py_object(_Deadline)
            )
        await asyncio.to_thread(thread.join, 2.0)
        raise TimeoutError(
            f"the evaluation did not finish within {timeout:g} s (evaluate_timeout)"
        ) from None


class Evaluator:
    """The user's ``evaluate`` with the search's settings around it."""

    def __init__(
        self,
        fn: Evaluate,
        *,
        objective: str,
        timeout: float | None,
        errors: str,
    ) -> None:
        if not callable(fn):
            raise ConfigError(f"evaluate must be callable (fns) -> score, got {fn!r}")
        if errors not in ("raise", "feedback"):
            raise ConfigError(f"evaluator_errors must be 'raise' or 'feedback', got {errors!r}")
        self.fn = fn
        self.objective = objective
        self.timeout = timeout
        self.errors = errors
        self.map = wants_map(fn)

    def _parse(self, result: Any) -> tuple[float, dict[str, float], str | None]:
        if isinstance(result, Score):
            metrics = {k: float(v) for k, v in result.metrics.items()}
            metrics.setdefault(self.objective, float(result.value))
            return float(result.value), metrics, result.feedback
        if isinstance(result, Mapping):
            if self.objective not in result:
                raise ConfigError(
                    f"evaluate returned metrics {sorted(result)} without the objective "
                    f"{self.objective!r}: name one with search(objective=...)"
                )
            metrics = {str(k): float(v) for k, v in result.items()}
            return metrics[self.objective], metrics, None
        if isinstance(result, (int, float)) and not isinstance(result, bool):
            return float(result), {self.objective: float(result)}, None
        raise ConfigError(
            "evaluate must return a number, a dict of metrics or symbiont.Score, "
            f"got {type(result).__name__}"
        )

    async def measure(
        self,
        fns: Any,
        maps: Any,
        *,
        repeats: int,
        purpose: str,
        round: int,
        lane: int | None,
        rows: list[dict[str, Any]],
    ) -> Measured:
        """Evaluates ``repeats`` times; raises AssertionError (rejected), PanicError or
        TimeoutError (the candidate's failures) or :class:`EvaluatorBug`. Every evaluation
        run is appended to ``rows``, failed ones included."""
        args: tuple[Any, ...] = (fns, maps) if self.map else (fns,)
        scores: list[float] = []
        metrics: list[dict[str, float]] = []
        feedback: str | None = None
        for repeat in range(repeats):
            row: dict[str, Any] = {
                "round": round,
                "lane": lane,
                "repeat": repeat,
                "purpose": purpose,
            }
            started = time.perf_counter()
            try:
                result = await _in_thread(self.fn, args, self.timeout)
                value, found, feedback = self._parse(result)
            except (AssertionError, Reject) as exc:
                text = exc.feedback if isinstance(exc, Reject) else (str(exc) or "rejected")
                rows.append(
                    {
                        **row,
                        "seconds": time.perf_counter() - started,
                        "outcome": "rejected",
                        "feedback": text,
                    }
                )
                raise AssertionError(text) from None
            except (PanicError, TimeoutError) as exc:
                kind = "panic" if isinstance(exc, PanicError) else "timeout"
                rows.append(
                    {
                        **row,
                        "seconds": time.perf_counter() - started,
                        "outcome": kind,
                        "feedback": str(exc),
                    }
                )
                raise
            except ConfigError as exc:
                raise EvaluatorBug(exc) from exc
            except Exception as exc:
                rows.append(
                    {
                        **row,
                        "seconds": time.perf_counter() - started,
                        "outcome": "error",
                        "feedback": f"{type(exc).__name__}: {exc}",
                    }
                )
                if self.errors == "feedback":
                    raise AssertionError(f"{type(exc).__name__}: {exc}") from None
                raise EvaluatorBug(exc) from exc
            if not finite(value):
                rows.append(
                    {
                        **row,
                        "seconds": time.perf_counter() - started,
                        "outcome": "rejected",
                        "feedback": f"score is {value}",
                    }
                )
                raise AssertionError(f"the evaluator's score is {value}, not a finite number")
            rows.append(
                {
                    **row,
                    "seconds": time.perf_counter() - started,
                    "outcome": "scored",
                    "score": value,
                    "metrics": found,
                    "feedback": feedback,
                }
            )
            scores.append(value)
            metrics.append(found)
        keys = set().union(*metrics)
        median = {k: float(statistics.median(m[k] for m in metrics if k in m)) for k in keys}
        score = float(statistics.median(scores))
        median[self.objective] = score
        spread = max(scores) - min(scores) if len(scores) > 1 else None
        return Measured(score=score, metrics=median, spread=spread, feedback=feedback)
