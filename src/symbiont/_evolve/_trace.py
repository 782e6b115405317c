"""Traces of evolution lanes and their results: every attempt, exportable as JSONL."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from symbiont._agents import Message, ToolCallRecord, Usage
from symbiont._failures import Failure

Decision = Literal["registered", "retry", "reset_repeat", "reset_context", "end"]
Outcome = Literal["registered", "failed", "context_overflow", "agent_error"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StageTimings:
    """Seconds spent per stage (summed when a lane's attempts are combined)."""

    llm: float = 0.0
    validate: float = 0.0
    build: float = 0.0
    load: float = 0.0
    check: float = 0.0

    def __add__(self, other: StageTimings) -> StageTimings:
        return StageTimings(
            llm=self.llm + other.llm,
            validate=self.validate + other.validate,
            build=self.build + other.build,
            load=self.load + other.load,
            check=self.check + other.check,
        )

    @property
    def total(self) -> float:
        return self.llm + self.validate + self.build + self.load + self.check


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptTrace:
    """One request of a lane and what came of it.

    ``attempt`` is the 1-based attempt number; a request that ended in a context overflow
    spends no attempt (``counted`` is False). ``messages`` is the conversation sent, ``reply``
    the text received (None when the request failed), ``retries`` the transient failures retried
    before the reply, ``decision`` what the loop did next, ``tool_calls`` every tool the model
    called while writing the reply (name, arguments, result, seconds).
    """

    lane: int
    attempt: int
    counted: bool
    messages: tuple[Message, ...]
    reply: str | None
    finish_reason: str | None
    usage: Usage
    timings: StageTimings
    outcome: Outcome
    failure: Failure | None
    decision: Decision
    revision: int | None
    retries: tuple[str, ...] = ()
    started: float = 0.0
    tool_calls: tuple[ToolCallRecord, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["usage"]["total_tokens"] = self.usage.total_tokens
        if self.failure is not None:
            d["failure"]["summary"] = self.failure.summary
            d["failure"]["feedback"] = self.failure.feedback
        crash = self.failure.crash if self.failure else None
        if crash is not None:
            d["failure"]["crash"] = {
                "message": str(crash),
                "signal": crash.signal,
                "exit_code": crash.exit_code,
                "stderr": crash.stderr,
            }
        return d


@dataclass(frozen=True, slots=True, kw_only=True)
class Trace:
    """Every attempt of one lane, in order."""

    lane: int
    attempts: tuple[AttemptTrace, ...] = field(default_factory=tuple)

    def to_jsonl(self) -> str:
        """One JSON object per attempt, one per line."""
        return "".join(json.dumps(a.to_dict(), ensure_ascii=False) + "\n" for a in self.attempts)

    def write_jsonl(self, path: str | Path, *, append: bool = False) -> None:
        with open(path, "a" if append else "w", encoding="utf-8") as fh:
            fh.write(self.to_jsonl())

    def __len__(self) -> int:
        return len(self.attempts)


@dataclass(frozen=True, slots=True, kw_only=True)
class EvolveInfo:
    """A lane that registered a revision.

    ``revision`` is its number (an existing one when the code matched a registered revision:
    ``new`` is then False); ``attempts`` counts the attempts spent; ``usage`` sums the tokens of
    every request of the lane; ``timings`` sums the stages; ``score`` is what the check returned.
    """

    revision: int
    lane: int
    attempts: int
    new: bool
    usage: Usage
    timings: StageTimings
    trace: Trace
    score: float | None = None
