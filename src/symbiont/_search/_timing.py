"""Measuring speed honestly inside an evaluator: warm-up, repeated samples, median and spread.

One timing of a fast native call is noise (frequency scaling, a neighbour's burst, the first
call paging the library in): the same code can measure 57 and 146 Melem/s in two checks. A
:class:`Timing` is the median of several samples, each long enough for the clock, after a
warm-up, with the spread so that an evaluator (and the store) can tell a real gain from noise.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from symbiont._errors import ConfigError

# Above this spread (relative to the median) a timing says how to get a steadier one.
NOISY = 0.10


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """Seconds per call: ``median`` over the samples, ``low``/``high`` the extreme samples,
    ``spread`` = (high - low) / median, ``calls`` per sample, every sample in ``samples``.
    ``advice`` is a sentence on getting a steadier measurement when the spread is large."""

    median: float
    low: float
    high: float
    spread: float
    calls: int
    samples: tuple[float, ...]

    @property
    def advice(self) -> str | None:
        if self.spread <= NOISY:
            return None
        return (
            f"the samples spread over {self.spread:.0%} of the median: the machine is noisy. "
            "Raise repeats, keep other work off the machine, or pin the process to one core "
            "(Linux: taskset -c 2 python ...; os.sched_setaffinity(0, {2}) in the script)."
        )

    def rate(self, items: float) -> float:
        """Items per second, for a call that processes ``items`` items."""
        return items / self.median if self.median > 0 else float("inf")


def measure(
    fn: Callable[..., Any],
    *args: Any,
    repeats: int = 7,
    warmup: int = 2,
    min_sample: float = 0.01,
    setup: Callable[[], Any] | None = None,
) -> Timing:
    """Times ``fn(*args)``: ``warmup`` untimed calls, then ``repeats`` samples of as many calls
    as fill ``min_sample`` seconds (found once, doubling), with the garbage collector paused.

    ``setup()``, when given, runs untimed before every call (e.g. refilling an array that the
    call sorts in place); each sample is then one call. Returns seconds per call.
    """
    if not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(f"repeats must be an int >= 1, got {repeats!r}")
    if not isinstance(warmup, int) or warmup < 0:
        raise ConfigError(f"warmup must be an int >= 0, got {warmup!r}")
    for _ in range(warmup):
        if setup is not None:
            setup()
        fn(*args)
    calls = 1
    if setup is None:
        while True:
            started = time.perf_counter()
            for _ in range(calls):
                fn(*args)
            if time.perf_counter() - started >= min_sample or calls >= 1 << 24:
                break
            calls *= 2
    samples: list[float] = []
    enabled = gc.isenabled()
    gc.disable()  # a collection landing in one sample would be charged to the candidate
    try:
        for _ in range(repeats):
            if setup is not None:
                setup()
            started = time.perf_counter()
            for _ in range(calls):
                fn(*args)
            samples.append((time.perf_counter() - started) / calls)
    finally:
        if enabled:
            gc.enable()
    median = statistics.median(samples)
    low, high = min(samples), max(samples)
    spread = (high - low) / median if median > 0 else 0.0
    return Timing(
        median=median, low=low, high=high, spread=spread, calls=calls, samples=tuple(samples)
    )
