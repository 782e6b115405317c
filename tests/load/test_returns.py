"""Vec returns as numpy arrays, Option arguments and returns, tuples of them, and rows of fixed
size (&[[f64; 3]]), through the dispatcher, a pinned handle, an evolve round and a worker."""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
import pytest

import symbiont as sb
from symbiont.testing import ScriptedAgent

PRELUDE = """
#[repr(C)]
#[derive(Clone, Copy)]
pub struct P { x: f64, n: u8 }

#[repr(u8)]
#[derive(Clone, Copy)]
pub enum Side { Buy = 1, Sell }
"""

FUNCTIONS = """
fn ramp(n: usize) -> Vec<f64> { (0..n).map(|i| i as f64).collect() }
fn evens(n: usize) -> Vec<bool> { (0..n).map(|i| i % 2 == 0).collect() }
fn letters() -> Vec<char> { vec!['a', 'b'] }
fn points(n: usize) -> Vec<P> { (0..n).map(|i| P { x: i as f64, n: (i % 250) as u8 }).collect() }
fn double(x: Option<f64>) -> Option<f64> { x.map(|v| v * 2.0) }
fn pick(s: Option<Side>, p: Option<P>, k: Option<u8>) -> (Option<Side>, Option<P>, Vec<i32>) {
    (s, p, vec![k.map(|k| k as i32).unwrap_or(-1)])
}
fn norms(r: &[[f64; 3]]) -> Vec<f64> {
    r.iter().map(|v| (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()).collect()
}
fn twice(r: &mut [[f32; 2]]) { for v in r.iter_mut() { v[1] = 2.0 * v[0]; } }
"""

DECL = PRELUDE + FUNCTIONS


@pytest.fixture(scope="module")
def rt() -> sb.Runtime:
    return sb.Runtime(DECL, profile="debug")


@pytest.fixture(params=["dispatcher", "handle"])
def fns(rt: sb.Runtime, request: Any) -> sb.Functions:
    return rt.fns if request.param == "dispatcher" else rt.revision(0).fns


@pytest.mark.parametrize("n", [0, 10, 1_000_000])
def test_vec_of_numbers_is_a_writable_numpy_array(fns: sb.Functions, n: int) -> None:
    a = fns.ramp(n)
    assert isinstance(a, np.ndarray) and a.dtype == np.float64 and a.shape == (n,)
    assert a.flags.writeable and a.flags.c_contiguous
    np.testing.assert_array_equal(a, np.arange(n, dtype=np.float64))
    if n:
        a[0] = 5.0
        assert a[0] == 5.0
    assert fns.evens(3).tolist() == [True, False, True]
    assert fns.letters() == ["a", "b"]


@pytest.mark.parametrize("n", [3, 100_000])
def test_vec_of_structs_is_a_structured_array(rt: sb.Runtime, fns: sb.Functions, n: int) -> None:
    a = fns.points(n)
    assert a.dtype == rt.types.P.dtype and a.shape == (n,)
    assert a["x"][-1] == n - 1 and a["n"][-1] == (n - 1) % 250
    assert fns.pick(None, a[1], None)[1]["x"] == 1.0


def test_options_in_and_out(rt: sb.Runtime, fns: sb.Functions) -> None:
    assert fns.double(None) is None
    assert fns.double(2.5) == 5.0
    assert fns.double(x=3) == 6.0
    p = rt.types.P(x=1.5, n=2)
    side, got, ks = fns.pick(rt.types.Side.Sell, p, 7)
    assert side is rt.types.Side.Sell and got["x"] == 1.5 and got["n"] == 2
    assert ks.dtype == np.int32 and ks.tolist() == [7]
    assert fns.pick(None, None, None)[:2] == (None, None)
    with pytest.raises(TypeError, match=r"double\(\) argument 1 'x' \(None or a value\) "
                                        r"expects f64 \(a float\), got str 'a'"):  # fmt: skip
        fns.double("a")
    with pytest.raises(ValueError, match=r"pick\(\) argument 1 's' .* got 7, which is not a val"):
        fns.pick(7, None, None)
    with pytest.raises(OverflowError, match=r"argument 3 'k' .* expects u8 \(0..=255\), got 300"):
        fns.pick(None, None, 300)
    with pytest.raises(TypeError, match=r"argument 2 'p' .* expects P: a P record"):
        fns.pick(None, 1.0, None)


def test_rows_of_fixed_size(fns: sb.Functions) -> None:
    r = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]])
    assert fns.norms(r).tolist() == [5.0, 2.0]
    assert fns.norms(np.zeros((0, 3))).shape == (0,)
    m = np.ones((3, 2), np.float32)
    fns.twice(m)
    assert m[:, 1].tolist() == [2.0, 2.0, 2.0]


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (np.ones((4, 2)), ValueError, r"got numpy.ndarray of dtype float64 and shape \(4, 2\)"),
        (np.ones((4, 3), np.float32), TypeError, r"of dtype float32 and shape \(4, 3\)"),
        (np.ones((3, 4))[:, :3], ValueError, r"non-contiguous .* np.ascontiguousarray"),
        (np.ones(6), ValueError, r"shape \(6,\)"),
        ([[1.0, 2.0, 3.0]], TypeError, r"got list"),
    ],
)
def test_wrong_rows_are_refused_naming_the_parameter(
    fns: sb.Functions, bad: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=r"^norms\(\) argument 1 'r' expects &\[\[f64; 3\]\]: a "
                                    r"C-contiguous array of float64 with shape \(n, 3\), .*"
                                    + message):  # fmt: skip
        fns.norms(bad)


def test_wrong_mutable_rows_write_nothing(fns: sb.Functions) -> None:
    wrong = np.ones((3, 2))  # float64, not f32
    with pytest.raises(TypeError, match=r"twice\(\) argument 1 'r' expects &mut \[\[f32; 2\]\]"):
        fns.twice(wrong)
    read_only = np.ones((3, 2), np.float32)
    read_only.flags.writeable = False
    with pytest.raises(TypeError, match="got a read-only"):
        fns.twice(read_only)
    assert (wrong == 1).all() and (read_only == 1).all()


def test_a_large_vec_keeps_its_library_until_the_array_dies() -> None:
    from symbiont._load import reap

    def mapped(path: str) -> bool:
        with open("/proc/self/maps") as maps:
            return any(line.rstrip().endswith(path) for line in maps)

    runtime = sb.Runtime("fn big(n: usize) -> Vec<u8> { vec![7; n] }", profile="debug")
    path = str(runtime.revisions[0].library)
    a = runtime.fns.big(1 << 20)
    assert type(a.base).__name__ == "_Owned"  # the array views the Vec's own buffer
    del runtime
    gc.collect()
    reap()
    assert mapped(path), "the array's buffer is freed by the library's code"
    assert int(a.sum()) == 7 << 20
    del a
    gc.collect()
    reap()
    assert not mapped(path)


def test_an_evolve_round_and_a_worker_return_arrays_and_options() -> None:
    runtime = sb.Runtime(DECL, profile="debug", isolation="process")

    def check(fns: sb.Functions) -> float:
        rows = np.array([[3.0, 4.0, 0.0]])
        a = fns.ramp(1_000)
        side, p, ks = fns.pick(1, fns.points(2)[1], None)
        assert isinstance(a, np.ndarray) and ks.tolist() == [-1] and p["x"] == 1.0
        assert fns.pick(k=3, p=None, s=None)[2].tolist() == [3], "keywords work in a worker"
        return float(a[-1] + fns.norms(r=rows)[0] + int(side) + (fns.double(None) is None))

    reply = "```rust\n" + FUNCTIONS.replace("i as f64).collect", "2.0 * i as f64).collect") + "```"
    info = runtime.evolve(ScriptedAgent([reply]), "double the ramp", check=check)
    assert info.score == 2 * 999.0 + 5.0 + 1 + 1
