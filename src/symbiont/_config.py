"""Checked configuration values: the one place that decides what a valid number of seconds, a
count or a choice is, and how the :class:`~symbiont.ConfigError` about it reads.

Every layer that takes a deadline or a budget from a user checks it here, so "a positive number
of seconds" means the same thing (finite, above zero, not a bool) everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from symbiont._errors import ConfigError


def seconds(name: str, value: object) -> float:
    """``value`` as seconds, or :class:`ConfigError` naming ``name``."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value > 0):  # type: ignore[arg-type,operator]
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def optional_seconds(name: str, value: object) -> float | None:
    """Like :func:`seconds`, with ``None`` meaning no deadline."""
    if value is None:
        return None
    try:
        return seconds(name, value)
    except ConfigError:
        raise ConfigError(
            f"{name} must be a positive number of seconds or None, got {value!r}"
        ) from None


def count(name: str, value: object, *, low: int = 1) -> int:
    """``value`` as an int of at least ``low``, or :class:`ConfigError` naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def optional_count(name: str, value: object, *, low: int = 1) -> int | None:
    """Like :func:`count`, with ``None`` meaning unbounded."""
    return None if value is None else count(name, value, low=low)


def choice(name: str, value: object, valid: Iterable[object]) -> object:
    """``value`` when it is one of ``valid``, else :class:`ConfigError` listing them."""
    options = tuple(valid)
    if value not in options:
        listed = ", ".join(repr(v) for v in options)
        raise ConfigError(f"unknown {name} {value!r}; valid: {listed}")
    return value
