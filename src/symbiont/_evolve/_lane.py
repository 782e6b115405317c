"""The constrained-generation loop of one lane.

attempt -> agent reply -> extract -> validate -> build -> load -> check -> register.

Budgets (DESIGN.md section 6): ``attempts`` replies per lane; transient transport failures
retried with capped exponential backoff without spending an attempt (``transient_retries``);
a context-window overflow restarts the conversation from the base prompt (``context_resets``);
a model that sends again the exact code it was just rejected for is restarted with a note not
to repeat it; any other agent error ends the lane at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from symbiont._errors import AgentError, ContextOverflowError, EvolveError, TransientAgentError
from symbiont._agents import Agent, Message, Reply, Request, Usage
from symbiont._decl import Declarations
from symbiont._decl._syntax import normalise_source
from symbiont._evolve._prompts import base_messages, correction, repeat_note
from symbiont._evolve._trace import (
    AttemptTrace,
    Decision,
    EvolveInfo,
    Failure,
    StageTimings,
    Trace,
)
from symbiont._validate import Candidate, Policy, Rejection, validate

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


@dataclass(slots=True)
class _LaneState:
    lane: int
    traces: list[AttemptTrace] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    timings: StageTimings = field(default_factory=StageTimings)
    attempts: int = 0
    last_failure: Failure | None = None

    def trace(self) -> Trace:
        return Trace(lane=self.lane, attempts=tuple(self.traces))


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
            log.debug("transient agent failure (%s); retry %d in %.2f s", exc, retry + 1, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


# Replies longer than this are not parsed (a runaway model can send megabytes; parsing them would
# stall every lane on the loop) and are shortened in the conversation sent back.
MAX_REPLY_CHARS = 200_000
_HISTORY_CHARS = 4_000


def _validate(text: str, decls: Declarations, policy: Policy) -> Candidate | Rejection:
    if len(text) <= MAX_REPLY_CHARS:
        return validate(text, decls, policy)
    signatures = "\n".join(f.signature for f in decls.functions)
    return Rejection(
        kind="no_code",
        message=(
            f"Your reply is {len(text):,} characters long; replies longer than "
            f"{MAX_REPLY_CHARS:,} are not read. Send only the code: one ```rust block defining "
            f"these functions:\n\n```rust\n{signatures}\n```"
        ),
    )


def _for_history(text: str) -> str:
    if len(text) <= MAX_REPLY_CHARS:
        return text
    return f"{text[:_HISTORY_CHARS]}\n[... {len(text) - _HISTORY_CHARS:,} more characters omitted]"


def _as_failure(r: Rejection) -> Failure:
    first = r.message.strip().splitlines()[0] if r.message.strip() else r.kind
    return Failure(kind=r.kind, feedback=r.message, summary=first, line=r.line)


async def run_lane(
    *,
    lane: int,
    agent: Agent,
    prompt: str,
    decls: Declarations,
    policy: Policy,
    sink: CandidateSink,
    limits: Limits,
    gate: asyncio.Semaphore,
    seed: int | None = None,
    on_attempt: Callable[[AttemptTrace], None] | None = None,
) -> EvolveInfo:
    """Runs one lane to a registered revision, or raises :class:`EvolveError` with its trace.

    ``on_attempt``, when given, receives each attempt's trace as soon as it is recorded (the
    search layer commits it to its store before the lane goes on).
    """
    state = _LaneState(lane=lane)
    base = base_messages(prompt)
    messages = list(base)
    context_resets = 0
    last_rejected_code: str | None = None

    def end(message: str, cause: BaseException | None = None) -> EvolveError:
        err = EvolveError(
            f"lane {lane}: {message}", trace=state.trace(), last_failure=state.last_failure,
            lane=lane,
        )  # fmt: skip
        err.__cause__ = cause
        return err

    def record(
        *,
        sent: tuple[Message, ...],
        reply: Reply | None,
        timings: StageTimings,
        outcome: str,
        failure: Failure | None,
        decision: Decision,
        revision: int | None,
        retries: list[str],
        started: float,
        counted: bool = True,
    ) -> None:
        state.timings = state.timings + timings
        state.traces.append(
            AttemptTrace(
                lane=lane,
                attempt=state.attempts if counted else state.attempts + 1,
                counted=counted,
                messages=sent,
                reply=reply.text if reply else None,
                finish_reason=reply.finish_reason if reply else None,
                usage=reply.usage if reply else Usage(),
                timings=timings,
                outcome=outcome,  # type: ignore[arg-type]
                failure=failure,
                decision=decision,
                revision=revision,
                retries=tuple(retries),
                started=started,
            )
        )
        if on_attempt is not None:
            on_attempt(state.traces[-1])

    while state.attempts < limits.attempts:
        sent = tuple(messages)
        request = Request(messages=sent, declarations=decls, seed=seed)
        retries: list[str] = []
        started = time.time()
        t0 = time.perf_counter()
        try:
            reply = await _request(agent, request, limits, gate, retries)
        except ContextOverflowError as exc:
            llm = StageTimings(llm=time.perf_counter() - t0)
            if context_resets >= limits.context_resets:
                record(sent=sent, reply=None, timings=llm, outcome="context_overflow",
                       failure=None, decision="end", revision=None, retries=retries,
                       started=started, counted=False)  # fmt: skip
                raise end(
                    f"the conversation overflowed the model's context window "
                    f"{context_resets + 1} times: {exc}",
                    exc,
                ) from exc
            context_resets += 1
            record(sent=sent, reply=None, timings=llm, outcome="context_overflow", failure=None,
                   decision="reset_context", revision=None, retries=retries, started=started,
                   counted=False)  # fmt: skip
            log.info("lane %d: context window overflow, restarting from the base prompt", lane)
            messages = list(base)
            continue
        except AgentError as exc:
            llm = StageTimings(llm=time.perf_counter() - t0)
            record(sent=sent, reply=None, timings=llm, outcome="agent_error", failure=None,
                   decision="end", revision=None, retries=retries, started=started,
                   counted=False)  # fmt: skip
            what = "unreachable after retries" if isinstance(exc, TransientAgentError) else "failed"
            raise end(f"the agent {agent.name!r} {what}: {exc}", exc) from exc
        except Exception as exc:
            raise end(f"the agent {agent.name!r} raised {type(exc).__name__}: {exc}", exc) from exc
        llm_seconds = time.perf_counter() - t0
        state.attempts += 1
        state.usage = state.usage + reply.usage

        t1 = time.perf_counter()
        checked = _validate(reply.text, decls, policy)
        validate_seconds = time.perf_counter() - t1
        timings = StageTimings(llm=llm_seconds, validate=validate_seconds)
        code = checked.code
        normalised = (
            checked.normalised
            if isinstance(checked, Candidate)
            else (normalise_source(code) if code else None)
        )

        if normalised is not None and normalised == last_rejected_code and state.last_failure:
            failure = Failure(
                kind="repeat",
                feedback=state.last_failure.feedback,
                summary=f"repeated rejected code ({state.last_failure.summary})",
            )
            record(sent=sent, reply=reply, timings=timings, outcome="failed", failure=failure,
                   decision="reset_repeat", revision=None, retries=retries,
                   started=started)  # fmt: skip
            log.info("lane %d attempt %d: the model repeated rejected code; restarting",
                     lane, state.attempts)  # fmt: skip
            messages = list(base)
            messages[-1] = Message(
                role="user", content=base[-1].content + repeat_note(state.last_failure)
            )
            last_rejected_code = None
            continue

        if isinstance(checked, Rejection):
            failure = _as_failure(checked)
        else:
            outcome = await sink.try_candidate(checked, lane=lane, attempt=state.attempts)
            timings = timings + outcome.timings
            if isinstance(outcome, Registered):
                record(sent=sent, reply=reply, timings=timings, outcome="registered",
                       failure=None, decision="registered", revision=outcome.revision,
                       retries=retries, started=started)  # fmt: skip
                score = "" if outcome.score is None else f" score={outcome.score:.4g}"
                log.info(
                    "revision %d lane %d attempt %d %s in %.2f s%s",
                    outcome.revision, lane, state.attempts,
                    "compiled" if outcome.new else "matched an existing revision",
                    timings.build, score,
                )  # fmt: skip
                return EvolveInfo(
                    revision=outcome.revision,
                    lane=lane,
                    attempts=state.attempts,
                    new=outcome.new,
                    usage=state.usage,
                    timings=state.timings,
                    trace=state.trace(),
                    score=outcome.score,
                )
            failure = outcome.failure

        state.last_failure = failure
        last_rejected_code = normalised
        final = state.attempts >= limits.attempts
        record(sent=sent, reply=reply, timings=timings, outcome="failed", failure=failure,
               decision="end" if final else "retry", revision=None, retries=retries,
               started=started)  # fmt: skip
        log.debug("lane %d attempt %d failed: %s", lane, state.attempts, failure.summary)
        messages = [
            *messages,
            Message(role="assistant", content=_for_history(reply.text)),
            Message(
                role="user",
                content=correction(
                    failure,
                    attempt=state.attempts,
                    max_attempts=limits.attempts,
                    cut_off=reply.finish_reason == "length",
                ),
            ),
        ]

    last = state.last_failure.summary if state.last_failure else "none"
    raise end(f"no revision after {state.attempts} attempts; last failure: {last}")
