"""Every boundary type round-trips through real native code; every wrong argument raises the
named error with the parameter, the expected Rust type and what was given."""

from __future__ import annotations

import array
from typing import Any

import numpy as np
import pytest

import symbiont as sb

INTS = {
    "i8": (-(2**7), 2**7 - 1),
    "i16": (-(2**15), 2**15 - 1),
    "i32": (-(2**31), 2**31 - 1),
    "i64": (-(2**63), 2**63 - 1),
    "isize": (-(2**63), 2**63 - 1),
    "u8": (0, 2**8 - 1),
    "u16": (0, 2**16 - 1),
    "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
    "usize": (0, 2**64 - 1),
}

SCALARS = (
    "\n".join(f"fn id_{t}(x: {t}) -> {t} {{ x }}" for t in INTS)
    + """
fn id_f32(x: f32) -> f32 { x }
fn id_f64(x: f64) -> f64 { x }
fn id_bool(x: bool) -> bool { x }
fn id_char(x: char) -> char { x }
fn next_char(x: char) -> char { char::from_u32(x as u32 + 1).unwrap_or('?') }
fn negate(x: bool) -> bool { !x }
fn greet(name: &str) -> String { format!("hello, {name}!") }
fn length(s: &str) -> usize { s.chars().count() }
fn nothing() {}
fn maybe(x: i32) -> Option<i32> { if x > 0 { Some(x * 2) } else { None } }
fn split(x: u64) -> (u32, u32, bool) { ((x >> 32) as u32, x as u32, x % 2 == 0) }
fn squares(n: u8) -> Vec<u16> { (0..n as u16).map(|i| i * i).collect() }
fn sum_f64(xs: &[f64]) -> f64 { xs.iter().sum() }
fn sum_u8(xs: &[u8]) -> u64 { xs.iter().map(|&x| x as u64).sum() }
fn sum_i32(xs: &[i32]) -> i64 { xs.iter().map(|&x| x as i64).sum() }
fn sum_f32(xs: &[f32]) -> f32 { xs.iter().sum() }
fn count_true(xs: &[bool]) -> usize { xs.iter().filter(|&&b| b).count() }
fn scale(xs: &mut [f64], k: f64) { for x in xs.iter_mut() { *x *= k; } }
fn fill_u16(xs: &mut [u16], v: u16) { for x in xs.iter_mut() { *x = v; } }
fn axpy(a: f64, x: &[f64], y: &mut [f64]) { for (yi, xi) in y.iter_mut().zip(x) { *yi += a * xi; } }
fn bump(counter: &mut usize) { *counter += 1; }
fn halve(x: &mut f32) { *x /= 2.0; }
fn flip(x: &mut bool) { *x = !*x; }
fn upper(c: &mut char) { *c = c.to_ascii_uppercase(); }
fn dec(x: &mut i8) { *x -= 1; }
"""
)


@pytest.fixture(scope="module")
def fns() -> sb.Functions:
    return sb.Runtime(SCALARS, profile="debug").fns


@pytest.mark.parametrize("t", list(INTS))
def test_integers_round_trip_at_their_limits(fns: sb.Functions, t: str) -> None:
    lo, hi = INTS[t]
    f = fns[f"id_{t}"]
    for v in (lo, hi, 0, 1, lo + 1, hi - 1):
        assert f(v) == v
    assert f(np.int8(1)) == 1  # numpy scalars go through __index__
    with pytest.raises(TypeError, match="a bool is not a number here"):
        f(True)  # the conversion policy: a flag never passes for a count


@pytest.mark.parametrize("t", list(INTS))
def test_integers_out_of_range_raise_overflow_error(fns: sb.Functions, t: str) -> None:
    lo, hi = INTS[t]
    f = fns[f"id_{t}"]
    for v in (lo - 1, hi + 1, 2**200):
        with pytest.raises(OverflowError) as info:
            f(v)
        message = str(info.value)
        assert f"id_{t}() argument 1 'x'" in message
        assert f"expects {t}" in message
        assert str(v) in message


@pytest.mark.parametrize("bad", [1.0, "3", None, [1], b"1"])
def test_integer_parameter_rejects_non_integers(fns: sb.Functions, bad: Any) -> None:
    with pytest.raises(TypeError) as info:
        fns.id_u32(bad)
    message = str(info.value)
    assert "id_u32() argument 1 'x' expects u32" in message
    assert type(bad).__name__ in message


def test_floats(fns: sb.Functions) -> None:
    assert fns.id_f64(1.25) == 1.25
    assert fns.id_f64(3) == 3.0  # ints convert exactly like Python's float()
    assert fns.id_f64(np.float32(0.5)) == 0.5
    assert np.isnan(fns.id_f64(float("nan")))
    assert fns.id_f64(float("inf")) == float("inf")
    assert fns.id_f32(0.1) == pytest.approx(0.1, rel=1e-7)
    assert fns.id_f32(float("inf")) == float("inf")
    with pytest.raises(OverflowError, match="f32"):
        fns.id_f32(1e300)
    with pytest.raises(OverflowError, match="too large"):
        fns.id_f64(10**400)
    with pytest.raises(
        TypeError, match=r"id_f64\(\) argument 1 'x' expects f64 \(a float\), got str"
    ):
        fns.id_f64("1.5")


def test_bool_and_char(fns: sb.Functions) -> None:
    assert fns.negate(True) is False
    assert fns.negate(False) is True
    assert fns.id_bool(np.bool_(True)) is True
    with pytest.raises(TypeError, match=r"expects bool \(True or False\), got int 1"):
        fns.id_bool(1)
    assert fns.id_char("é") == "é"
    assert fns.next_char("a") == "b"
    assert fns.id_char("😀") == "😀"
    with pytest.raises(TypeError, match="length 2"):
        fns.id_char("ab")
    with pytest.raises(TypeError, match="length 0"):
        fns.id_char("")
    with pytest.raises(ValueError, match="surrogate"):
        fns.id_char("\ud800")
    with pytest.raises(TypeError, match=r"expects char \(a 1-character str\), got int"):
        fns.id_char(65)


def test_str_and_string(fns: sb.Functions) -> None:
    assert fns.greet("wörld") == "hello, wörld!"
    assert fns.length("naïve 😀") == 7
    assert fns.greet("") == "hello, !"

    class Name(str):
        pass

    assert fns.greet(Name("sub")) == "hello, sub!"
    with pytest.raises(ValueError, match="lone surrogate"):
        fns.greet("bad\udc80")
    with pytest.raises(
        TypeError, match=r"greet\(\) argument 1 'name' expects &str \(a str\), got bytes"
    ):
        fns.greet(b"bytes")


def test_compound_returns(fns: sb.Functions) -> None:
    assert fns.nothing() is None
    assert fns.maybe(4) == 8
    assert fns.maybe(-1) is None
    assert fns.split((7 << 32) | 10) == (7, 10, True)
    squares = fns.squares(5)
    assert isinstance(squares, np.ndarray) and squares.dtype == np.uint16
    assert squares.tolist() == [0, 1, 4, 9, 16]
    assert fns.squares(0).shape == (0,)


def test_read_only_slices_from_every_buffer_kind(fns: sb.Functions) -> None:
    assert fns.sum_f64(np.array([1.5, 2.5])) == 4.0
    assert fns.sum_f64(array.array("d", [1.0, 2.0, 3.0])) == 6.0
    assert fns.sum_f64(memoryview(np.arange(4.0))) == 6.0
    assert fns.sum_f64(np.array([], dtype=np.float64)) == 0.0
    assert fns.sum_u8(b"\x01\x02\x03") == 6
    assert fns.sum_u8(bytearray(b"\xff\xff")) == 510
    assert fns.sum_u8(np.frombuffer(b"\x05", dtype=np.uint8)) == 5
    assert fns.sum_i32(np.array([-1, 2, -3], dtype=np.int32)) == -2
    assert fns.sum_i32(array.array("i", [5, 6])) == 11
    assert fns.sum_f32(np.ones(10, dtype=np.float32)) == 10.0
    assert fns.count_true(np.array([True, False, True])) == 2
    strided = np.arange(10.0)[::2]
    with pytest.raises(ValueError, match="non-contiguous"):
        fns.sum_f64(strided)
    assert fns.sum_f64(np.ascontiguousarray(strided)) == 20.0


def test_mutable_slices_write_in_place_without_copy(fns: sb.Functions) -> None:
    a = np.array([1.0, 2.0, 3.0])
    fns.scale(a, 2.0)
    assert a.tolist() == [2.0, 4.0, 6.0]
    view = a[1:]  # a contiguous view: writes land in the parent array
    fns.scale(view, 10.0)
    assert a.tolist() == [2.0, 40.0, 60.0]
    arr = array.array("d", [1.0])
    fns.scale(arr, 3.0)
    assert arr[0] == 3.0
    u = np.zeros(4, dtype=np.uint16)
    fns.fill_u16(u, 65535)
    assert u.tolist() == [65535] * 4
    ba = bytearray(4)
    with pytest.raises(TypeError, match="uint16"):
        fns.fill_u16(ba, 1)
    y = np.ones(3)
    fns.axpy(2.0, np.array([1.0, 2.0, 3.0]), y)
    assert y.tolist() == [3.0, 5.0, 7.0]


@pytest.mark.parametrize(
    ("call", "error", "fragments"),
    [
        (
            lambda f: f.sum_f64([1.0, 2.0]),
            TypeError,
            ["sum_f64() argument 1 'xs'", "&[f64]", "got list"],
        ),
        (lambda f: f.sum_f64(np.arange(3)), TypeError, ["&[f64]", "dtype int64", "format 'l'"]),
        (lambda f: f.sum_f64(np.arange(3.0, dtype=">f8")), TypeError, ["&[f64]", "format '>d'"]),
        (lambda f: f.sum_i32(np.arange(3, dtype=np.int64)), TypeError, ["&[i32]", "int64"]),
        (lambda f: f.sum_i32(np.arange(3, dtype=np.uint32)), TypeError, ["&[i32]", "uint32"]),
        (lambda f: f.scale(b"\x00" * 8, 1.0), TypeError, ["scale() argument 1 'xs'", "&mut [f64]"]),
        (
            lambda f: f.scale(np.arange(3.0).view().setflags(write=False) or np.zeros(0), 1.0),
            None,
            [],
        ),
        (lambda f: f.scale(np.arange(12.0).reshape(3, 4).T, 1.0), ValueError, ["non-contiguous"]),
        (lambda f: f.scale(np.zeros(2), "2"), TypeError, ["scale() argument 2 'k' expects f64"]),
        (lambda f: f.sum_u8("abc"), TypeError, ["&[u8]", "got str"]),
    ],
)
def test_wrong_buffers(
    fns: sb.Functions, call: Any, error: type[Exception] | None, fragments: list[str]
) -> None:
    if error is None:
        call(fns)  # a writable empty array is fine
        return
    with pytest.raises(error) as info:
        call(fns)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_read_only_array_for_mutable_slice(fns: sb.Functions) -> None:
    a = np.arange(3.0)
    a.setflags(write=False)
    with pytest.raises(TypeError, match="read-only"):
        fns.scale(a, 2.0)
    assert fns.sum_f64(a) == 3.0  # fine for a shared slice


def test_aliasing_a_mutable_slice_is_refused(fns: sb.Functions) -> None:
    y = np.ones(4)
    with pytest.raises(ValueError, match="share memory"):
        fns.axpy(1.0, y, y)
    with pytest.raises(ValueError, match="'x' and 'y'"):
        fns.axpy(1.0, y[1:], y[:3])
    fns.axpy(1.0, y[:2].copy(), y[2:])  # disjoint halves are fine
    assert y.tolist() == [1.0, 1.0, 2.0, 2.0]


def test_mut_scalars_through_cell_and_buffer(fns: sb.Functions) -> None:
    c = sb.Cell(41, "usize")
    fns.bump(c)
    assert c.value == 42
    untyped = sb.Cell(0)
    fns.bump(untyped)
    assert untyped.value == 1
    h = sb.Cell(3.0, "f32")
    fns.halve(h)
    assert h.value == 1.5
    b = sb.Cell(False, "bool")
    fns.flip(b)
    assert b.value is True
    ch = sb.Cell("q", "char")
    fns.upper(ch)
    assert ch.value == "Q"
    arr = np.array([7], dtype=np.uint64)
    fns.bump(arr)
    assert arr[0] == 8
    arr8 = np.array([-128], dtype=np.int8)
    with pytest.raises(sb.PanicError, match="overflow"):
        fns.dec(arr8)  # debug profile: overflow checks on
    assert arr8[0] == -128


def test_mut_scalar_errors(fns: sb.Functions) -> None:
    with pytest.raises(
        TypeError, match=r"bump\(\) argument 1 'counter' expects &mut usize.*got int 5"
    ):
        fns.bump(5)
    with pytest.raises(TypeError, match="got a Cell of u32"):
        fns.bump(sb.Cell(1, "u32"))
    with pytest.raises(OverflowError, match="Cell's value"):
        fns.bump(sb.Cell(-1))
    with pytest.raises(TypeError, match=r"Cell's value.*expects usize"):
        fns.bump(sb.Cell("x"))
    with pytest.raises(ValueError, match=r"2 elements"):
        fns.bump(np.zeros(2, dtype=np.uint64))
    with pytest.raises(TypeError, match="uint64"):
        fns.bump(np.zeros(1, dtype=np.int64))
    with pytest.raises(ValueError, match="Cell type"):
        sb.Cell(0, "String")


def test_cell_keeps_value_when_call_panics() -> None:
    rt = sb.Runtime('fn f(x: &mut u8) { *x = 9; panic!("no"); }')
    c = sb.Cell(1, "u8")
    with pytest.raises(sb.PanicError, match="no"):
        rt.fns.f(c)
    assert c.value == 1


def test_arity_and_keywords(fns: sb.Functions) -> None:
    with pytest.raises(TypeError, match=r"axpy\(\) takes 3 arguments \(fn axpy"):
        fns.axpy(1.0)
    with pytest.raises(TypeError, match="got 2"):
        fns.nothing(1, 2)
    with pytest.raises(TypeError, match=r"^id_u8\(\) got an unexpected keyword argument 'y'"):
        fns.id_u8(y=1)
    assert fns.id_u8(x=7) == 7


def test_dispatchers_are_real_builtins_with_signatures(fns: sb.Functions) -> None:
    import inspect
    import types

    assert type(fns.axpy) is types.BuiltinFunctionType
    assert fns.axpy.__name__ == "axpy"
    assert str(inspect.signature(fns.axpy)) == "(a, x, y)"
    doc = fns.axpy.__doc__ or ""
    assert "fn axpy(a: f64, x: &[f64], y: &mut [f64])" in doc
    assert "y: &mut [f64] -- C-contiguous writable buffer of float64" in doc
    assert "a: f64 -- float" in doc


def test_bool_buffers_must_hold_only_zeros_and_ones(fns: sb.Functions) -> None:
    bad = np.frombuffer(b"\x00\x01\x02", dtype=np.bool_)
    with pytest.raises(ValueError, match="byte other than 0 or 1"):
        fns.count_true(bad)
    assert fns.count_true(np.frombuffer(b"\x00\x01\x01", dtype=np.bool_)) == 2
