"""sb.measure: warm-up, samples long enough for the clock, median and spread of a native call."""

from __future__ import annotations

import numpy as np

import symbiont as sb

DECL = """
/// Sums the slice.
fn total(xs: &[f64]) -> f64 { xs.iter().sum() }

/// Sorts the slice in place.
fn sort(xs: &mut [f64]) { xs.sort_by(|a, b| a.partial_cmp(b).unwrap()); }
"""


def test_measure_times_a_native_call() -> None:
    rt = sb.Runtime(DECL, profile="debug")
    xs = np.arange(10_000, dtype=np.float64)
    t = sb.measure(rt.fns.total, xs, repeats=5, warmup=1, min_sample=0.002)
    assert len(t.samples) == 5 and t.calls >= 1
    assert t.low <= t.median <= t.high and t.spread >= 0
    assert t.rate(len(xs)) == len(xs) / t.median
    assert (t.advice is None) == (t.spread <= 0.10)


def test_setup_runs_before_every_call_of_an_in_place_sort() -> None:
    rt = sb.Runtime(DECL, profile="debug")
    rng = np.random.default_rng(0)
    xs = np.empty(1000)
    refills = []

    def refill() -> None:
        refills.append(1)
        xs[:] = rng.random(1000)

    t = sb.measure(rt.fns.sort, xs, repeats=4, warmup=2, setup=refill)
    assert t.calls == 1 and len(refills) == 6  # two warm-up calls and four samples
    assert np.all(np.diff(xs) >= 0)


def test_bad_arguments_are_named() -> None:
    import pytest

    with pytest.raises(sb.ConfigError, match="repeats"):
        sb.measure(len, "x", repeats=0)
