"""The search layer: many rounds of lanes toward a score, with strategies, budgets, prompts
built from the run's history, and every step in the store so a run resumes exactly.

Talks to the runtime through the :class:`Host` protocol and to lanes through ``_evolve``; the
words of a round's prompt come from ``_prompts`` (:func:`symbiont._prompts.default_prompt`).
"""

from symbiont._events import Event
from symbiont._search._evaluate import EvaluatorBug, RemoteCheck, RemoteResult
from symbiont._search._interrupt import run_interruptible
from symbiont._search._loop import Host, Prices, Settings, search
from symbiont._search._strategy import (
    Archive,
    Entry,
    HillClimb,
    Islands,
    Lanes,
    LaneSpec,
    Pareto,
    Strategy,
)
from symbiont._search._timing import Timing, measure
from symbiont._search._types import Best, Budget, HistoryEntry, Reject, Score, SearchRun

__all__ = [
    "Archive",
    "Best",
    "Budget",
    "Entry",
    "EvaluatorBug",
    "Event",
    "HillClimb",
    "HistoryEntry",
    "Host",
    "Islands",
    "LaneSpec",
    "Lanes",
    "Pareto",
    "Prices",
    "Reject",
    "RemoteCheck",
    "RemoteResult",
    "Score",
    "SearchRun",
    "Settings",
    "Strategy",
    "Timing",
    "measure",
    "run_interruptible",
    "search",
]
