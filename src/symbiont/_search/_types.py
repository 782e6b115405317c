"""The values of the search layer: what evaluators return, budgets, results, progress events."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from symbiont._errors import ConfigError


@dataclass(frozen=True, slots=True)
class Score:
    """What an evaluator may return: the objective ``value``, other ``metrics`` (stored and
    shown to the LLM), and ``feedback`` text sent to the LLM with the next round's prompt."""

    value: float
    metrics: Mapping[str, float] = field(default_factory=dict)
    feedback: str | None = None


class Reject(Exception):
    """Raised by an evaluator to reject a candidate; its message is fed back to the LLM.

    An ``AssertionError`` does the same. Any *other* exception from an evaluator is a bug in
    the evaluator: the run stops with it (unless ``evaluator_errors="feedback"``).
    """

    def __init__(self, feedback: str) -> None:
        super().__init__(feedback)
        self.feedback = feedback


StopReason = Literal[
    "rounds", "attempts", "seconds", "tokens", "cost", "target", "patience", "interrupted",
    "agent",
]  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """When a search stops: at the first limit reached (None: no limit).

    - ``rounds``: rounds completed (default 10 when no limit at all is given);
    - ``attempts``: LLM requests; ``tokens``: prompt + completion tokens; ``cost``: money,
      priced from the ``prices`` table given to ``search``; ``seconds``: wall time of the run,
      summed over resumed sessions;
    - ``target``: the objective reached it (>= when maximising, <= when minimising);
    - ``patience``: this many rounds in a row without a better best.

    Request budgets (attempts, tokens, cost) are checked before every LLM request, so a round
    can end early; the rest are checked between rounds.
    """

    rounds: int | None = None
    attempts: int | None = None
    seconds: float | None = None
    tokens: int | None = None
    cost: float | None = None
    target: float | None = None
    patience: int | None = None

    def __post_init__(self) -> None:
        for name in ("rounds", "attempts", "tokens", "patience"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                raise ConfigError(f"Budget.{name} must be an int >= 1 or None, got {value!r}")
        for name in ("seconds", "cost"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not (isinstance(value, (int, float)) and value > 0)
            ):
                raise ConfigError(f"Budget.{name} must be a positive number or None, got {value!r}")
        target = self.target
        if target is not None and (
            isinstance(target, bool)
            or not isinstance(target, (int, float))
            or not math.isfinite(target)
        ):
            # A NaN target is never reached and never said so: the run went on to other limits.
            raise ConfigError(f"Budget.target must be a finite number or None, got {target!r}")

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    @property
    def unbounded(self) -> bool:
        return all(getattr(self, k) is None for k in self.__slots__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Best:
    """The best revision of a run: its number in the run (0 is the seed), the runtime
    revision it is registered as, its code, objective score, metrics and the spread of its
    repeated evaluations (None with one)."""

    revision: int
    runtime_revision: int
    code: str
    score: float
    metrics: Mapping[str, float]
    spread: float | None = None
    confirmed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    """One LLM request of the run, in order: where it ran and what came of it (``summary``:
    the failure in one line, ``feedback``: what the LLM was told about it)."""

    round: int
    lane: int
    attempt: int
    outcome: str
    failure_kind: str | None
    summary: str | None
    feedback: str | None
    revision: int | None
    tokens: int
    cost: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchRun:
    """The result of :meth:`Runtime.search`.

    ``best`` is None when no candidate (nor the seed) ever scored. ``frontier`` holds the
    non-dominated revisions over the objectives of a Pareto search (else just the best).
    ``stop_reason`` names the budget that ended the run, or ``"interrupted"``.
    """

    name: str
    store: str
    best: Best | None
    history: tuple[HistoryEntry, ...]
    frontier: tuple[Best, ...]
    stop_reason: str
    rounds: int
    attempts: int
    tokens: int
    cost: float


def finite(value: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
