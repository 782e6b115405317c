"""Dispatchers describe themselves and take keyword arguments by the declared parameter names:
through rt.fns, a pinned handle and rt.map, with errors naming the function as declared."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import symbiont as sb

DECL = """
/// Exponential moving average of `xs`.
fn ema(xs: &[f64], alpha: f64) -> f64 {
    xs.iter().fold(0.0, |a, x| a * (1.0 - alpha) + alpha * x)
}
fn scale(x: f64, k: i32) -> f64 { x * k as f64 }
fn none() -> u8 { 7 }
"""


@pytest.fixture(scope="module")
def rt() -> sb.Runtime:
    return sb.Runtime(DECL, profile="debug")


def test_signature_and_help_show_names_types_and_doc(rt: sb.Runtime) -> None:
    assert str(inspect.signature(rt.fns.ema)) == "(xs, alpha)"
    assert str(inspect.signature(rt.fns.none)) == "()"
    doc = rt.fns.ema.__doc__ or ""
    assert "Exponential moving average of `xs`." in doc
    assert "xs: &[f64] -- C-contiguous buffer of float64" in doc
    assert "alpha: f64 -- float" in doc
    assert "Returns: f64 -- float" in doc
    handle = rt.revision(0).fns
    assert str(inspect.signature(handle.scale)) == "(x, k)"
    assert "k: i32 -- int" in (handle.scale.__doc__ or "")


@pytest.mark.parametrize("pinned", [False, True])
def test_keywords_in_any_order_mixed_with_positionals(rt: sb.Runtime, pinned: bool) -> None:
    fns = rt.revision(0).fns if pinned else rt.fns
    xs = np.array([1.0, 2.0, 3.0])
    want = fns.ema(xs, 0.5)
    assert fns.ema(xs, alpha=0.5) == want
    assert fns.ema(alpha=0.5, xs=xs) == want
    assert fns.scale(k=3, x=2.0) == 6.0


@pytest.mark.parametrize("pinned", [False, True])
def test_keyword_mistakes_name_the_declared_function(rt: sb.Runtime, pinned: bool) -> None:
    fns = rt.revision(0).fns if pinned else rt.fns
    xs = np.zeros(2)
    with pytest.raises(TypeError, match=r"^ema\(\) got an unexpected keyword argument 'beta' "
                                        r"\(parameters: xs, alpha\)$"):  # fmt: skip
        fns.ema(xs, beta=1.0)
    with pytest.raises(TypeError, match=r"^ema\(\) got multiple values for argument 'xs'$"):
        fns.ema(xs, xs=xs)
    with pytest.raises(TypeError, match=r"^ema\(\) missing argument 1 'xs'"):
        fns.ema(alpha=0.5)
    with pytest.raises(TypeError, match=r"^ema\(\) takes 2 argument\(s\), got 3 positional"):
        fns.ema(xs, 0.5, 1, alpha=2)
    with pytest.raises(TypeError, match=r"^scale\(\) argument 2 'k' expects i32 \(an int\), got "
                                        r"float 1.5"):  # fmt: skip
        fns.scale(1.0, k=1.5)
    with pytest.raises(TypeError, match=r"^none\(\) got an unexpected keyword argument 'x'"):
        fns.none(x=1)


def test_map_takes_keywords_too(rt: sb.Runtime) -> None:
    x = np.array([1.0, 2.0])
    k = np.array([3, 4], dtype=np.int32)
    want = rt.map.scale(x, k)
    assert list(want) == [3.0, 8.0]
    np.testing.assert_array_equal(rt.map.scale(k=k, x=x), want)
    np.testing.assert_array_equal(rt.revision(0).map.scale(x, k=k), want)
    with pytest.raises(TypeError, match=r"scale\.map\(\) got an unexpected keyword argument 'y'"):
        rt.map.scale(x, y=k)
    with pytest.raises(TypeError, match=r"scale\.map\(\) missing argument 2 'k'"):
        rt.map.scale(x=x)
    with pytest.raises(TypeError, match=r"scale\.map\(\) got multiple values for argument 'x'"):
        rt.map.scale(x, x=x)


def test_keywords_follow_activation() -> None:
    runtime = sb.Runtime(DECL, profile="debug")
    rev = runtime.register(DECL.replace("x * k as f64", "x + k as f64"))
    runtime.activate(rev)
    assert runtime.fns.scale(k=3, x=2.0) == 5.0
    assert runtime.revision(0).fns.scale(k=3, x=2.0) == 6.0
