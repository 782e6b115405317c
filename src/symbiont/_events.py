"""Progress events: the one value every layer that reports progress emits.

It sits at the bottom of the layers so that a lane, the runtime and the search all emit the
same :class:`Event` without any of them importing a layer above its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

EventKind = Literal[
    "run_started", "round_started", "stage", "tokens", "attempt", "revision", "round_ended",
    "run_ended",
]  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """A progress event, given to the ``on_event`` callback of ``search``, ``evolve`` and
    ``evolve_batch``.

    Kinds and their ``data``:
    - ``run_started``: ``name``, ``resumed``, ``budget`` (``evolve``: ``what`` and ``name``,
      ``evolve`` or ``evolve_batch``);
    - ``round_started``: ``lanes`` (how many run this round);
    - ``stage`` (per lane): ``stage`` in ``llm | validate | build | check | evaluate``
      (``check``: the ``check`` of ``evolve``; ``evaluate``: a search's evaluator),
      ``state`` in ``started | ended``, and for ended ones ``outcome`` (``ok``, ``failed``,
      ``passed``, ``scored`` or the failure kind);
    - ``tokens`` (per lane, while the model writes, at most about 10 a second): ``tokens``
      written so far in this request, ``per_second`` since its first token;
    - ``attempt``: ``outcome``, ``tokens`` (this request), plus the run totals ``tokens``,
      ``cost``, ``attempts`` under ``totals``;
    - ``revision``: ``revision``, ``score``, ``metrics`` (a new scored revision);
    - ``round_ended``: ``best`` (score or None), ``best_revision``, ``totals``, ``elapsed``,
      ``budget`` (the limit nearest to ending the run, as ``{"name", "used", "limit"}``);
    - ``run_ended``: ``stop_reason`` (a budget's name, ``interrupted``, or ``agent`` when a
      fatal agent error stopped the run; ``evolve``: ``registered`` or ``failed``), ``best``.
    The callback runs on symbiont's event loop thread: keep it short, never block.
    """

    kind: EventKind
    round: int | None = None
    lane: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    time: float = 0.0


OnEvent = Callable[[Event], None]
