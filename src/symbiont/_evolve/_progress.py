"""The progress events of ``evolve`` and ``evolve_batch`` outside the lane: the run's start and
end, and the build and check stages around the runtime's handling of a candidate."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from symbiont._errors import ConfigError
from symbiont._events import Event, OnEvent
from symbiont._evolve._lane import Registered, Rejected

log = logging.getLogger("symbiont.evolve")


class Emit:
    """Builds and sends the progress events of ``evolve`` and ``evolve_batch``."""

    def __init__(self, callback: OnEvent) -> None:
        self.callback = callback

    def __call__(self, kind: str, *, lane: int | None = None, **data: Any) -> None:
        self.lane_event(Event(kind=kind, lane=lane, data=data, time=time.time()))  # type: ignore[arg-type]

    def lane_event(self, event: Event) -> None:
        try:
            self.callback(event)
        except Exception:
            log.exception("the on_event callback raised; the evolution goes on")


def emitter(on_event: OnEvent | None) -> Emit:
    if on_event is not None and not callable(on_event):
        raise ConfigError("on_event must be a callable (Event) -> None")
    return Emit(on_event if on_event is not None else (lambda event: None))


async def staged(
    emit: Emit,
    lane: int,
    checked: bool,
    trying: Callable[[Callable[[], None]], Awaitable[Registered | Rejected]],
) -> Registered | Rejected:
    """``trying(on_built)`` with the build and check stages reported around it."""
    stage = "build"

    def built() -> None:
        nonlocal stage
        emit("stage", lane=lane, stage="build", state="ended", outcome="ok")
        stage = "check"
        emit("stage", lane=lane, stage="check", state="started")

    emit("stage", lane=lane, stage="build", state="started")
    outcome = await trying(built)
    if isinstance(outcome, Rejected):
        emit("stage", lane=lane, stage=stage, state="ended", outcome=outcome.failure.kind)
    elif stage == "check":
        emit("stage", lane=lane, stage="check", state="ended",
             outcome="passed" if checked else "loaded")  # fmt: skip
    return outcome
