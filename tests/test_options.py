"""Runtime options: one frozen value, validated once, the same through keywords or Options."""

from __future__ import annotations

import dataclasses
import math

import pytest

import symbiont as sb

DECL = "fn f(x: u64) -> u64 { x + 1 }"

DEADLINES = [n for n in sb.Options.names() if n.endswith("timeout")]


def test_the_deadlines_are_the_ones_documented() -> None:
    assert DEADLINES == ["build_timeout", "llm_timeout", "timeout", "check_timeout",
                         "isolation_timeout"]  # fmt: skip


@pytest.mark.parametrize("name", DEADLINES)
@pytest.mark.parametrize("value", [0, -1.5, math.nan, math.inf, True, "10"])
def test_every_deadline_is_checked_the_same_way(name: str, value: object) -> None:
    with pytest.raises(sb.ConfigError, match=rf"^{name} must be a positive number of seconds"):
        sb.Options.create(**{name: value})


def test_backoff_names_the_element_at_fault() -> None:
    with pytest.raises(sb.ConfigError, match=r"backoff\[1\] must be a positive number"):
        sb.Options(backoff=(0.5, 0))
    with pytest.raises(sb.ConfigError, match=r"backoff must be \(first, longest\)"):
        sb.Options(backoff=(1.0,))  # type: ignore[arg-type]


def test_values_are_normalised_and_frozen() -> None:
    opts = sb.Options(rustc_flags=["-C", "target-cpu=native"], cache_dir="~/x", backoff=[1, 2])  # type: ignore[arg-type]
    assert opts.rustc_flags == ("-C", "target-cpu=native")
    assert opts.backoff == (1.0, 2.0)
    assert str(opts.cache_dir) == "~/x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.profile = "debug"  # type: ignore[misc]
    assert opts.changed() == {
        "cache_dir": opts.cache_dir,
        "rustc_flags": ("-C", "target-cpu=native"),
        "backoff": (1.0, 2.0),
    }


def test_replace_validates_and_rejects_unknown_names() -> None:
    base = sb.Options(max_attempts=3)
    assert base.replace(profile="debug").max_attempts == 3
    with pytest.raises(sb.ConfigError, match="max_attempts must be an int >= 1"):
        base.replace(max_attempts=0)
    with pytest.raises(sb.ConfigError, match=r"unknown Runtime option\(s\) attempts; valid: "):
        base.replace(attempts=3)


def test_keywords_override_an_options_value() -> None:
    rt = sb.Runtime(DECL, options=sb.Options(profile="debug", max_attempts=2), max_attempts=4)
    assert rt.options.profile == "debug"
    assert rt.options.max_attempts == 4
    assert rt.limits.attempts == 4
    assert rt.fns.f(41) == 42
    # The debug profile really reached rustc: overflow checks panic instead of wrapping.
    with pytest.raises(sb.PanicError, match="overflow"):
        rt.fns.f(2**64 - 1)


def test_options_must_be_an_options_value() -> None:
    with pytest.raises(sb.ConfigError, match=r"options must be a symbiont\.Options"):
        sb.Runtime(DECL, options={"profile": "debug"})  # type: ignore[arg-type]
