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
import contextlib
import ctypes
import hashlib
import inspect
import logging
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from symbiont import _prompts
from symbiont._checks import check_failure
from symbiont._errors import ConfigError, PanicError, TimeoutError
from symbiont._failures import Failure
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


def _number(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"evaluate returned {what} = {value!r:.80}: it must be a number") from exc


def _metrics(found: Mapping[Any, Any]) -> dict[str, float]:
    # Keys become str as they are stored (JSON) and sorted in prompts: one type, never a crash
    # in the store or the prompt for a tuple or int key.
    return {str(k): _number(v, f"metric {str(k)!r}") for k, v in found.items()}


def parse(result: Any, objective: str) -> tuple[float, dict[str, float], str | None]:
    """What an evaluator returned as (objective value, metrics, feedback)."""
    if isinstance(result, Score):
        metrics = _metrics(result.metrics)
        value = _number(result.value, "Score.value")
        metrics.setdefault(objective, value)
        if result.feedback is not None and not isinstance(result.feedback, str):
            raise ConfigError(
                f"evaluate returned Score.feedback of type {type(result.feedback).__name__}: "
                "it must be a str or None"
            )
        feedback = None if result.feedback is None else _prompts.clipped(result.feedback)
        return value, metrics, feedback
    if isinstance(result, Mapping):
        metrics = _metrics(result)
        if objective not in metrics:
            raise ConfigError(
                f"evaluate returned metrics {sorted(metrics)} without the objective "
                f"{objective!r}: name one with search(objective=...)"
            )
        return metrics[objective], metrics, None
    if isinstance(result, (int, float)) and not isinstance(result, bool):
        value = _number(result, "the score")
        return value, {objective: value}, None
    raise ConfigError(
        "evaluate must return a number, a dict of metrics or symbiont.Score, "
        f"got {type(result).__name__}"
    )


class RemoteEvaluate:
    """The user's evaluator as an isolation worker calls it: ``(fns, maps) -> Score``, under
    the evaluation deadline, its result read in the worker (so a result that is not a score is
    the evaluator's ``ConfigError`` there, as in process). Pickled by reference to this module,
    with the user's function inside it by value (cloudpickle)."""

    def __init__(self, fn: Evaluate, *, objective: str, timeout: float | None, map: bool) -> None:
        self.fn = fn
        self.objective = objective
        self.timeout = timeout
        self.map = map

    def __call__(self, fns: Any, maps: Any) -> Score:
        args: tuple[Any, ...] = (fns, maps) if self.map else (fns,)
        try:
            with _Alarm(self.timeout):
                result = self.fn(*args)
                if inspect.isawaitable(result):
                    result = asyncio.run(result)  # type: ignore[arg-type]
        except _Deadline:
            raise TimeoutError(
                f"the evaluation did not finish within {self.timeout:g} s (evaluate_timeout)"
            ) from None
        value, metrics, feedback = parse(result, self.objective)
        return Score(value, metrics, feedback)


class _Alarm:
    """Past ``seconds``, a Python loop in the evaluator is stopped by :class:`_Deadline` (a
    worker runs the evaluator on its main thread, where signals are delivered; native calls
    stop at their own deadline). Elsewhere, or without a deadline, it does nothing."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.armed = False

    def __enter__(self) -> None:
        import signal

        if self.seconds is None or threading.current_thread() is not threading.main_thread():
            return

        def expired(signum: int, frame: object) -> None:
            raise _Deadline  # not an Exception: a broad `except Exception` cannot swallow it

        self.previous = signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        self.armed = True

    def __exit__(self, *exc: object) -> None:
        import signal

        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteResult:
    """One evaluation an isolation worker ran, as the search reads it: a score (with metrics
    and feedback), the candidate's ``failure`` (rejected, panic, timeout, crash), or the
    evaluator's own ``error`` as (type name, message, formatted traceback). ``node`` and
    ``worker`` say where it ran, when known."""

    score: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    feedback: str | None = None
    failure: Failure | None = None
    error: tuple[str, str, str] | None = None
    node: str | None = None
    worker: int | None = None
    seconds: float = 0.0  # the driver's wait for it: transport and queueing included


Send = Callable[[RemoteEvaluate], Awaitable[RemoteResult]]
"""Runs one repeat of the evaluator in an isolation worker, on the candidate under check."""


class WorkerTraceback(Exception):
    """The traceback of an evaluator's exception as the isolation worker formatted it; the
    cause of the exception the search re-raises."""

    def __str__(self) -> str:
        return "\n" + str(self.args[0]).rstrip()


def remote_error(error: tuple[str, str, str], node: str | None) -> BaseException:
    """The evaluator's exception from a worker, rebuilt: the same built-in type with the same
    message (another type: a RuntimeError naming it), caused by the worker's traceback."""
    name, message, text = error
    cls = getattr(builtins, name, None)
    rebuilt: BaseException | None = None
    if isinstance(cls, type) and issubclass(cls, Exception):
        with contextlib.suppress(Exception):
            rebuilt = cls(message)
    if rebuilt is None:
        rebuilt = RuntimeError(f"the evaluator raised {name}: {message}")
    rebuilt.add_note(f"raised by the evaluator in an isolation worker (node {node or '?'})")
    rebuilt.__cause__ = WorkerTraceback(text)
    return rebuilt


@dataclass(slots=True)
class RemoteCheck:
    """The check of a candidate when the runtime evaluates in isolation workers: the runtime
    builds the candidate, then calls ``run(send)``, which evaluates it ``repeats`` times, each
    repeat a worker task, all in flight at once (the engine bounds them), read in order. It
    answers the median score or the candidate's :class:`Failure`, and raises
    :class:`EvaluatorBug`; ``measured`` receives the :class:`Measured`."""

    evaluator: Evaluator
    repeats: int
    purpose: str
    round: int
    lane: int | None
    rows: list[dict[str, Any]]
    measured: list[Measured]
    started: Callable[[], None] | None = None

    async def run(self, send: Send, code: str) -> float | Failure:
        if self.started is not None:
            self.started()
        outcome = await self.evaluator.measure_remote(
            send, code, repeats=self.repeats, purpose=self.purpose, round=self.round,
            lane=self.lane, rows=self.rows,
        )  # fmt: skip
        if isinstance(outcome, Failure):
            return outcome
        self.measured.append(outcome)
        return outcome.score


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
        return parse(result, self.objective)

    def remote(self) -> RemoteEvaluate:
        """The evaluator as an isolation worker runs it (one repeat per task)."""
        return RemoteEvaluate(self.fn, objective=self.objective, timeout=self.timeout,
                              map=self.map)  # fmt: skip

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
                text = _prompts.clipped(str(text))
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
                        "feedback": _prompts.clipped(str(exc)),
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
        return self._summarise(scores, metrics, feedback)

    def _summarise(
        self, scores: list[float], metrics: list[dict[str, float]], feedback: str | None
    ) -> Measured:
        keys = set().union(*metrics)
        median = {k: float(statistics.median(m[k] for m in metrics if k in m)) for k in keys}
        score = float(statistics.median(scores))
        median[self.objective] = score
        spread = max(scores) - min(scores) if len(scores) > 1 else None
        return Measured(score=score, metrics=median, spread=spread, feedback=feedback)

    async def measure_remote(
        self,
        send: Send,
        code: str,
        *,
        repeats: int,
        purpose: str,
        round: int,
        lane: int | None,
        rows: list[dict[str, Any]],
    ) -> Measured | Failure:
        """:meth:`measure` with each repeat run by an isolation worker (``send``): the same
        rules and rows (with the node and worker of each), the candidate's failure answered
        rather than raised (the worker's record, with the panic's line in ``code``). The
        repeats are in flight together; they are read in order, and the first failure cancels
        the ones still running."""
        payload = self.remote()
        tasks = [asyncio.ensure_future(send(payload)) for _ in range(repeats)]
        scores: list[float] = []
        metrics: list[dict[str, float]] = []
        feedback: str | None = None
        try:
            for repeat, task in enumerate(tasks):
                r = await task
                row: dict[str, Any] = {
                    "round": round, "lane": lane, "repeat": repeat, "purpose": purpose,
                    "seconds": r.seconds, "node": r.node, "worker": r.worker,
                }  # fmt: skip
                if r.error is not None:
                    name, message, _ = r.error
                    rows.append({**row, "outcome": "error", "feedback": f"{name}: {message}"})
                    # A result that is not a score is always the evaluator's to fix.
                    if self.errors == "feedback" and name != "ConfigError":
                        return check_failure(AssertionError(f"{name}: {message}"), code)
                    raise EvaluatorBug(remote_error(r.error, r.node))
                if r.failure is not None:
                    f = r.failure
                    kind = "rejected" if f.kind == "check_failed" else f.kind
                    text = f.message if kind == "rejected" else f.summary
                    rows.append({**row, "outcome": kind, "feedback": _prompts.clipped(text)})
                    return f
                value = r.score
                if value is None or not finite(value):
                    rows.append({**row, "outcome": "rejected", "feedback": f"score is {value}"})
                    return check_failure(
                        AssertionError(f"the evaluator's score is {value}, not a finite number"),
                        code,
                    )
                found = {str(k): float(v) for k, v in r.metrics.items()}
                feedback = r.feedback
                rows.append({**row, "outcome": "scored", "score": value, "metrics": found,
                             "feedback": feedback})  # fmt: skip
                scores.append(value)
                metrics.append(found)
        finally:
            for task in tasks:
                task.cancel()
            # Collected, so an error of a repeat nobody reads is not logged as unretrieved.
            await asyncio.gather(*tasks, return_exceptions=True)
        return self._summarise(scores, metrics, feedback)
