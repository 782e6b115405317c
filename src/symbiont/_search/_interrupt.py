"""Running a search from synchronous code so that Ctrl-C stops it cleanly.

The first Ctrl-C cancels the search task: the round in flight ends as interrupted and the run's
state is written (the store is consistent at every commit anyway). The caller waits for that,
then gets the KeyboardInterrupt; a second Ctrl-C while waiting returns at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from symbiont._evolve import background_loop, in_background

T = TypeVar("T")

# How long the first Ctrl-C waits for the search to record the interruption.
_CLEANUP_SECONDS = 30.0


def run_interruptible(coro: Coroutine[Any, Any, T]) -> T:
    if in_background():
        coro.close()
        raise RuntimeError(
            "a synchronous symbiont call was made from inside symbiont's own event loop: "
            "use asearch there"
        )
    finished = threading.Event()

    async def wrapper() -> T:
        try:
            return await coro
        finally:
            finished.set()

    future = asyncio.run_coroutine_threadsafe(wrapper(), background_loop())
    try:
        return future.result()
    except KeyboardInterrupt:
        future.cancel()
        finished.wait(_CLEANUP_SECONDS)  # a second Ctrl-C interrupts this wait
        raise
