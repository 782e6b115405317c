"""The constrained-generation loop of one lane.

attempt -> agent reply -> extract -> validate -> build -> load -> check -> register.

Budgets (docs/architecture.md, section 2): ``attempts`` replies per lane; transient transport
failures retried with capped exponential backoff without spending an attempt
(``transient_retries``); a context-window overflow restarts the conversation from the base
prompt (``context_resets``); a model that sends again the exact code it was just rejected for
is restarted with a note not to repeat it; any other agent error ends the lane at once.

Edit replies: when edits are on and the prompt showed current code, a reply made of
SEARCH/REPLACE blocks is applied to that code (:func:`symbiont._validate.code_from_edits`)
before validation; edits that do not apply are an ``edit_failed`` failure like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from symbiont._agents import Agent, Message, Reply, Request, Usage
from symbiont._decl import Declarations
from symbiont._decl._syntax import normalise_source
from symbiont._errors import AgentError, ContextOverflowError, EvolveError, TransientAgentError
from symbiont._events import Event, OnEvent
from symbiont._evolve._trace import (
    AttemptTrace,
    Decision,
    EvolveInfo,
    Outcome,
    StageTimings,
    Trace,
)
from symbiont._failures import Failure
from symbiont._prompts import (
    SYSTEM,
    base_prompt,
    correction,
    repeat_note,
    reply_too_long,
)
from symbiont._validate import (
    Candidate,
    Policy,
    Rejection,
    code_from_edits,
    validate,
    validate_code,
)

log = logging.getLogger("symbiont.evolve")


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The budgets of one lane. ``request_timeout`` is an outer deadline around each agent
    request (agents enforce their own, normally shorter, transport timeout)."""

    attempts: int = 10
    transient_retries: int = 6
    context_resets: int = 3
    backoff_initial: float = 0.5
    backoff_cap: float = 30.0
    request_timeout: float = 900.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Registered:
    """The candidate became (or matched) a revision."""

    revision: int
    new: bool
    score: float | None
    timings: StageTimings


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """The candidate failed after validation (build, load or check)."""

    failure: Failure
    timings: StageTimings


class CandidateSink(Protocol):
    """Where validated candidates go: the runtime builds, loads, checks and registers them.

    ``try_candidate`` returns :class:`Registered` or :class:`Rejected`; it raises only for a
    broken setup (which ends the lane and reaches the caller).
    """

    async def try_candidate(
        self, candidate: Candidate, *, lane: int, attempt: int
    ) -> Registered | Rejected: ...


# A server's Retry-After is honoured up to this many seconds; beyond it, retrying is pointless
# within one lane and the delay is capped.
MAX_RETRY_AFTER = 120.0


def _backoff(limits: Limits, retry: int, exc: TransientAgentError) -> float:
    delay = min(limits.backoff_cap, limits.backoff_initial * (2.0**retry))
    if exc.retry_after is not None:
        delay = max(delay, min(exc.retry_after, MAX_RETRY_AFTER))
    # A little jitter keeps concurrent lanes that hit the same 429 from retrying in lockstep.
    return max(0.0, delay * (1.0 + 0.1 * random.random()))


async def _request(
    agent: Agent, request: Request, limits: Limits, gate: asyncio.Semaphore, retries: list[str]
) -> Reply:
    for retry in range(limits.transient_retries + 1):
        try:
            async with gate:
                try:
                    return await asyncio.wait_for(agent.complete(request), limits.request_timeout)
                except TimeoutError as exc:
                    if isinstance(exc, AgentError):
                        raise
                    raise TransientAgentError(
                        f"no reply within {limits.request_timeout:g} s"
                    ) from exc
        except TransientAgentError as exc:
            if retry == limits.transient_retries:
                raise
            retries.append(str(exc))
            delay = _backoff(limits, retry, exc)
            status = f"HTTP {exc.status}" if exc.status is not None else "no status"
            log.info("agent %r: transient failure (%s), retry %d/%d in %.1f s: %s",
                     agent.name, status, retry + 1, limits.transient_retries, delay,
                     _one_line(str(exc)))  # fmt: skip
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


# Replies longer than this are not parsed (a runaway model can send megabytes; parsing them would
# stall every lane on the loop) and are shortened in the conversation sent back.
MAX_REPLY_CHARS = 200_000
_HISTORY_CHARS = 4_000


def _validate(
    text: str, decls: Declarations, policy: Policy, edit_base: str | None = None
) -> Candidate | Rejection:
    """``text`` validated; with an ``edit_base``, edit blocks in it are applied to it first."""
    if len(text) <= MAX_REPLY_CHARS:
        edited = code_from_edits(text, edit_base)
        if edited is not None:
            return edited if isinstance(edited, Rejection) else validate_code(edited, decls, policy)
        return validate(text, decls, policy)
    return Rejection(
        kind="no_code",
        message="",
        error=reply_too_long(len(text), MAX_REPLY_CHARS),
        expected="\n".join(f.signature for f in decls.functions),
    )


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else f"{line[: limit - 3]}..."


def _for_history(text: str) -> str:
    if len(text) <= MAX_REPLY_CHARS:
        return text
    return f"{text[:_HISTORY_CHARS]}\n[... {len(text) - _HISTORY_CHARS:,} more characters omitted]"


@dataclass(slots=True)
class _Attempt:
    """One request of a lane, as it goes: what was sent, when, the retries, the reply."""

    sent: tuple[Message, ...]
    started: float  # wall clock, for the trace
    retries: list[str] = field(default_factory=list)
    reply: Reply | None = None
    llm_seconds: float = 0.0


class Lane:
    """One lane: asks the agent, judges the reply, records the attempt, until a candidate
    registers (:meth:`run` returns its :class:`EvolveInfo`) or the budget is spent (raises
    :class:`EvolveError` with the trace).

    The conversation grows by one reply and one correction per failed attempt; it restarts from
    the base prompt after a context overflow or when the model repeats rejected code.

    ``current`` is the code of the parent revision as the prompt shows it (what
    :func:`symbiont._prompts.shown_current` returned: None when there is nothing to show);
    with ``edits`` and current code, the prompt offers SEARCH/REPLACE edits against exactly
    that code and replies may use them. ``prompt``, when given, is the first user message as
    built by the caller (a search round's, which explains edits itself), instead of the base
    prompt built from ``task``.
    ``functions`` names the declared functions the model writes when ``decls`` holds only
    those. ``on_attempt`` receives each attempt's trace as soon as it is recorded (the search
    commits it to its store before the lane goes on). ``on_event`` receives the lane's
    progress events (:class:`~symbiont.Event`): the ``llm`` and ``validate`` stages and
    ``tokens`` as the model writes (on the event loop's thread, whatever thread the agent
    writes from).
    """

    def __init__(
        self,
        *,
        lane: int,
        agent: Agent,
        task: str,
        decls: Declarations,
        current: str | None = None,
        revision: int | None = None,
        policy: Policy,
        sink: CandidateSink,
        limits: Limits,
        gate: asyncio.Semaphore,
        seed: int | None = None,
        edits: bool = False,
        prompt: str | None = None,
        functions: Sequence[str] | None = None,
        on_attempt: Callable[[AttemptTrace], None] | None = None,
        on_event: OnEvent | None = None,
    ) -> None:
        self.number = lane
        self.agent = agent
        self.decls = decls
        self.policy = policy
        self.sink = sink
        self.limits = limits
        self.gate = gate
        self.seed = seed
        self.task = task
        self.current = current
        self.on_attempt = on_attempt
        self.on_event = on_event
        # What edits apply to: the current code exactly as the prompt shows it.
        self.edit_base = current if edits and current else None
        if prompt is None:
            prompt = base_prompt(task, signatures=decls.signatures_text, prelude=decls.prelude,
                                 current=current, revision=revision, names=decls.names,
                                 edits=self.edit_base is not None,
                                 functions=functions)  # fmt: skip
        self.base = [Message(role="system", content=SYSTEM), Message(role="user", content=prompt)]
        self.messages = list(self.base)
        self.traces: list[AttemptTrace] = []
        self.usage = Usage()
        self.timings = StageTimings()
        self.attempts = 0
        self.context_resets = 0
        self.last_failure: Failure | None = None
        self.last_rejected: str | None = None  # normalised code of the last rejected reply
        self.last_code: str | None = None  # and its code as extracted

    async def run(self) -> EvolveInfo:
        while self.attempts < self.limits.attempts:
            attempt = _Attempt(sent=tuple(self.messages), started=time.time())
            if not await self._ask(attempt):
                continue  # the conversation was restarted
            info = await self._judge(attempt)
            if info is not None:
                return info
        last = self.last_failure.summary if self.last_failure else "none"
        raise self._end(f"no revision after {self.attempts} attempts; last failure: {last}")

    # ------------------------------------------------------------------ events

    def _emit(self, kind: str, **data: Any) -> None:
        if self.on_event is None:
            return
        event = Event(kind=kind, lane=self.number, data=data, time=time.time())  # type: ignore[arg-type]
        try:
            self.on_event(event)
        except Exception:
            log.exception("the on_event callback raised; the lane goes on")

    def _stage(self, stage: str, outcome: str | None = None) -> None:
        if outcome is None:
            self._emit("stage", stage=stage, state="started")
        else:
            self._emit("stage", stage=stage, state="ended", outcome=outcome)

    def _token_reporter(self) -> Callable[[int, float], None] | None:
        """The request's ``on_tokens``: a tokens event, moved to the loop's thread when the
        agent writes from another (the local model decodes in a worker thread)."""
        if self.on_event is None:
            return None
        loop = asyncio.get_running_loop()
        home = threading.get_ident()

        def report(tokens: int, per_second: float) -> None:
            if threading.get_ident() == home:
                self._emit("tokens", tokens=tokens, per_second=per_second)
            else:
                # A display must never stop a model from writing: a loop that closed meanwhile
                # (the process is ending) just misses the count.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(
                        lambda: self._emit("tokens", tokens=tokens, per_second=per_second)
                    )

        return report

    # ------------------------------------------------------------------ ask

    async def _ask(self, attempt: _Attempt) -> bool:
        """Gets the agent's reply into ``attempt``; False when a context overflow restarted the
        conversation instead. Any other agent failure ends the lane."""
        restarted = len(attempt.sent) == len(self.base)
        request = Request(
            messages=attempt.sent,
            declarations=self.decls,
            seed=self.seed,
            task=self.task,
            current=self.current,
            rejected=None if restarted else self.last_code,
            failure=None if restarted else self.last_failure,
            on_tokens=self._token_reporter(),
        )
        t0 = time.perf_counter()
        try:
            reply = await self._request(request, attempt)
        except ContextOverflowError as exc:
            llm = StageTimings(llm=time.perf_counter() - t0)
            final = self.context_resets >= self.limits.context_resets
            self._record(attempt, llm, "context_overflow", "end" if final else "reset_context",
                         counted=False)  # fmt: skip
            if final:
                raise self._end(
                    f"the conversation overflowed the model's context window "
                    f"{self.context_resets + 1} times: {exc}",
                    exc,
                ) from exc
            self.context_resets += 1
            log.info("lane %d: context window overflow, restarting from the base prompt",
                     self.number)  # fmt: skip
            self.messages = list(self.base)
            return False
        except AgentError as exc:
            llm = StageTimings(llm=time.perf_counter() - t0)
            self._record(attempt, llm, "agent_error", "end", counted=False)
            what = (
                f"unreachable after retries ({len(attempt.retries) + 1} requests)"
                if isinstance(exc, TransientAgentError)
                else "failed"
            )
            raise self._end(f"the agent {self.agent.name!r} {what}: {exc}", exc) from exc
        except Exception as exc:
            raise self._end(
                f"the agent {self.agent.name!r} raised {type(exc).__name__}: {exc}", exc
            ) from exc
        self.attempts += 1
        self.usage = self.usage + reply.usage
        attempt.reply = reply
        attempt.llm_seconds = time.perf_counter() - t0
        return True

    async def _request(self, request: Request, attempt: _Attempt) -> Reply:
        self._stage("llm")
        outcome = "failed"
        try:
            reply = await _request(self.agent, request, self.limits, self.gate, attempt.retries)
            outcome = "ok"
            return reply
        finally:
            self._stage("llm", outcome)

    # ------------------------------------------------------------------ judge

    async def _judge(self, attempt: _Attempt) -> EvolveInfo | None:
        """Validates the reply and hands a valid candidate to the sink; the lane's result when
        it registered, else None after setting up the next attempt."""
        assert attempt.reply is not None
        t1 = time.perf_counter()
        self._stage("validate")
        checked = _validate(attempt.reply.text, self.decls, self.policy, self.edit_base)
        self._stage("validate", "ok" if isinstance(checked, Candidate) else checked.kind)
        timings = StageTimings(llm=attempt.llm_seconds, validate=time.perf_counter() - t1)
        if isinstance(checked, Candidate):
            normalised: str | None = checked.normalised
        else:
            normalised = normalise_source(checked.code) if checked.code else None

        if normalised is not None and normalised == self.last_rejected and self.last_failure:
            self._restart_after_repeat(attempt, timings)
            return None

        if isinstance(checked, Rejection):
            failure = checked.failure()
        else:
            outcome = await self.sink.try_candidate(checked, lane=self.number,
                                                    attempt=self.attempts)  # fmt: skip
            timings = timings + outcome.timings
            if isinstance(outcome, Registered):
                return self._registered(attempt, timings, outcome)
            failure = outcome.failure
        self._failed(attempt, timings, failure, normalised, checked.code)
        return None

    def _restart_after_repeat(self, attempt: _Attempt, timings: StageTimings) -> None:
        assert self.last_failure is not None
        failure = Failure(kind="repeat", message=self.last_failure.summary)
        self._record(attempt, timings, "failed", "reset_repeat", failure=failure)
        log.info("lane %d attempt %d: the model repeated rejected code; restarting",
                 self.number, self.attempts)  # fmt: skip
        self.messages = [
            *self.base[:-1],
            Message(role="user", content=self.base[-1].content + repeat_note(self.last_failure)),
        ]
        self.last_rejected = None

    def _registered(
        self, attempt: _Attempt, timings: StageTimings, outcome: Registered
    ) -> EvolveInfo:
        self._record(attempt, timings, "registered", "registered", revision=outcome.revision)
        score = "" if outcome.score is None else f" score={outcome.score:.4g}"
        log.info(
            "revision %d lane %d attempt %d %s in %.2f s%s",
            outcome.revision, self.number, self.attempts,
            "compiled" if outcome.new else "matched an existing revision",
            timings.build, score,
        )  # fmt: skip
        return EvolveInfo(
            revision=outcome.revision,
            lane=self.number,
            attempts=self.attempts,
            new=outcome.new,
            usage=self.usage,
            timings=self.timings,
            trace=self.trace(),
            score=outcome.score,
        )

    def _failed(
        self,
        attempt: _Attempt,
        timings: StageTimings,
        failure: Failure,
        normalised: str | None,
        code: str | None,
    ) -> None:
        assert attempt.reply is not None
        self.last_failure = failure
        self.last_rejected = normalised
        self.last_code = code
        final = self.attempts >= self.limits.attempts
        self._record(attempt, timings, "failed", "end" if final else "retry", failure=failure)
        log.info("lane %d attempt %d failed: %s", self.number, self.attempts, failure.summary)
        self.messages = [
            *self.messages,
            Message(role="assistant", content=_for_history(attempt.reply.text)),
            Message(
                role="user",
                content=correction(
                    failure,
                    attempt=self.attempts,
                    max_attempts=self.limits.attempts,
                    cut_off=attempt.reply.finish_reason == "length",
                    edits=self.edit_base is not None,
                ),
            ),
        ]

    # ------------------------------------------------------------------ record

    def trace(self) -> Trace:
        return Trace(lane=self.number, attempts=tuple(self.traces))

    def _record(
        self,
        attempt: _Attempt,
        timings: StageTimings,
        outcome: Outcome,
        decision: Decision,
        *,
        failure: Failure | None = None,
        revision: int | None = None,
        counted: bool = True,
    ) -> None:
        """Appends ``attempt`` to the trace; ``counted`` is False for a request that spent no
        attempt (its number is then the attempt it was made for)."""
        reply = attempt.reply
        self.timings = self.timings + timings
        self.traces.append(
            AttemptTrace(
                lane=self.number,
                attempt=self.attempts if counted else self.attempts + 1,
                counted=counted,
                messages=attempt.sent,
                reply=reply.text if reply else None,
                finish_reason=reply.finish_reason if reply else None,
                usage=reply.usage if reply else Usage(),
                timings=timings,
                outcome=outcome,
                failure=failure,
                decision=decision,
                revision=revision,
                retries=tuple(attempt.retries),
                started=attempt.started,
                tool_calls=reply.tool_calls if reply else (),
            )
        )
        if self.on_attempt is not None:
            self.on_attempt(self.traces[-1])

    def _end(self, message: str, cause: BaseException | None = None) -> EvolveError:
        err = EvolveError(
            f"lane {self.number}: {message}", trace=self.trace(),
            last_failure=self.last_failure, lane=self.number,
        )  # fmt: skip
        err.__cause__ = cause
        return err


async def run_lane(**kwargs: Any) -> EvolveInfo:
    """Runs one :class:`Lane` (same keywords) to a registered revision, or raises
    :class:`EvolveError` with its trace."""
    return await Lane(**kwargs).run()
