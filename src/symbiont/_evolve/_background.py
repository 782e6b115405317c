"""One background event loop per process, where every lane, build and LLM request runs.

The synchronous API submits coroutines to it and waits, which also works from inside a running
event loop (Jupyter); the async API awaits them from the caller's loop. Keeping all lanes on one
loop lets agents hold loop-bound HTTP clients and lets a runtime-wide semaphore cap requests.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    """The process-wide background loop, started on first use (a daemon thread)."""
    global _loop, _thread
    with _lock:
        if _loop is not None and _thread is not None and _thread.is_alive():
            return _loop
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        thread = threading.Thread(target=run, name="symbiont-loop", daemon=True)
        thread.start()
        ready.wait()
        _loop, _thread = loop, thread
        return loop


def in_background() -> bool:
    try:
        return asyncio.get_running_loop() is _loop
    except RuntimeError:
        return False


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Runs ``coro`` on the background loop and waits for it from this (any) thread."""
    if in_background():
        coro.close()
        raise RuntimeError(
            "a synchronous symbiont call was made from inside symbiont's own event loop "
            "(from a check or an agent?): use the async variant (aevolve) there"
        )
    future = asyncio.run_coroutine_threadsafe(coro, background_loop())
    try:
        return future.result()
    except (KeyboardInterrupt, concurrent.futures.CancelledError):
        future.cancel()
        raise


async def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Awaits ``coro`` on the background loop from the caller's loop."""
    if in_background():
        return await coro
    future = asyncio.run_coroutine_threadsafe(coro, background_loop())
    return await asyncio.wrap_future(future)
