"""Shared types across the boundary: #[repr(C)] structs as numpy records and structured arrays,
fieldless enums as IntEnum members. Every mapping runs real native code; every wrong argument
is a clear error naming the parameter, the Rust type and what was given, with nothing written."""

from __future__ import annotations

import enum
from typing import Any

import numpy as np
import pytest

import symbiont as sb
from symbiont.testing import ScriptedAgent

PRELUDE = """
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Inner { a: u8, b: i64 }

/// One bar of prices.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Candle { pub open: f64, pub close: f64, flag: bool, n: u32, arr: [f32; 3], inner: Inner }

#[repr(u8)]
#[derive(Clone, Copy)]
pub enum Side { Buy = 1, Sell }
"""

FUNCTIONS = """
fn total(c: &[Candle]) -> f64 { c.iter().map(|x| x.close).sum() }
fn bump(c: &mut [Candle]) { for x in c.iter_mut() { x.close += 1.0; x.flag = !x.flag; } }
fn one(c: &mut Candle) { c.n += 10; c.inner.b -= 1; }
fn val(c: Candle, r: &Candle) -> f64 { c.close + r.close }
fn make(x: f64) -> Candle {
    let inner = Inner { a: 7, b: -5 };
    Candle { open: x, close: -x, flag: true, n: 3, arr: [1.0, 2.0, 3.0], inner }
}
fn flip(s: Side) -> Side { match s { Side::Buy => Side::Sell, Side::Sell => Side::Buy } }
"""


@pytest.fixture(scope="module")
def rt() -> sb.Runtime:
    return sb.Runtime(PRELUDE + FUNCTIONS, profile="debug")


def retyped(dt: Any, **types: Any) -> Any:
    """``dt`` with the same names and offsets and some fields of another type."""
    return np.dtype(
        {
            "names": list(dt.names),
            "formats": [types.get(n, dt.fields[n][0]) for n in dt.names],
            "offsets": [dt.fields[n][1] for n in dt.names],
            "itemsize": dt.itemsize,
        }
    )


def candles(rt: sb.Runtime, n: int) -> Any:
    a = rt.types.Candle.zeros(n)
    a["close"] = np.arange(n, dtype=float)
    return a


def test_types_expose_the_dtype_and_build_checked_records(rt: sb.Runtime) -> None:
    Candle = rt.types.Candle
    assert Candle.dtype.names == ("open", "close", "flag", "n", "arr", "inner")
    assert Candle.dtype.itemsize == 56 and Candle.dtype.fields["inner"][1] == 40
    rec = Candle(open=1, close=2.5, flag=True, n=4, arr=[1, 2, 3], inner={"a": 1, "b": -2})
    assert rec["close"] == 2.5 and rec["inner"]["b"] == -2 and rec.dtype == Candle.dtype
    assert rec.close == 2.5 and type(rec.open) is float and rec.arr == (1.0, 2.0, 3.0)
    assert rec.inner == rt.types.Inner(a=1, b=-2)
    assert repr(rec).startswith("Candle(open=1.0, close=2.5, flag=True, n=4, arr=(1.0, 2.0, 3.0)")
    as_numpy = rec.to_numpy()
    assert as_numpy.dtype == Candle.dtype and as_numpy["inner"]["b"] == -2
    assert Candle(**{n: as_numpy[n] for n in Candle.dtype.names}) == rec
    with pytest.raises(KeyError, match="Candle has no field 'nope'"):
        rec["nope"]
    with pytest.raises(TypeError, match=r"missing field.*flag"):
        Candle(open=1.0, close=2.0)
    with pytest.raises(TypeError, match="keyword arguments only"):
        Candle(1.0)
    with pytest.raises(OverflowError, match="field 'n' expects u32"):
        Candle(open=1, close=2, flag=True, n=-1, arr=[1, 2, 3], inner={"a": 1, "b": 2})
    with pytest.raises(TypeError, match="field 'flag' expects bool"):
        Candle(open=1, close=2, flag=1, n=1, arr=[1, 2, 3], inner={"a": 1, "b": 2})
    with pytest.raises(ValueError, match=r"field 'arr' expects \[f32; 3\]"):
        Candle(open=1, close=2, flag=True, n=1, arr=[1, 2], inner={"a": 1, "b": 2})
    assert issubclass(rt.types.Side, enum.IntEnum) and rt.types.Side.Sell == 2
    with pytest.raises(AttributeError, match="declared: Inner, Candle, Side"):
        rt.types.Nope  # noqa: B018


def test_structured_arrays_cross_zero_copy(rt: sb.Runtime) -> None:
    a = candles(rt, 5)
    assert rt.fns.total(a) == 10.0
    rt.fns.bump(a)
    assert a["close"].tolist() == [1, 2, 3, 4, 5] and a["flag"].all()
    assert rt.fns.total(rt.types.Candle.zeros(0)) == 0.0
    # A dtype spelled differently with the same fields, types and offsets is the same struct.
    same = retyped(rt.types.Candle.dtype)
    assert rt.fns.total(a.view(same)) == 15.0


def test_records_by_value_by_reference_and_mutable(rt: sb.Runtime) -> None:
    a = candles(rt, 3)
    rec = rt.types.Candle(open=0, close=2.5, flag=False, n=1, arr=[1, 2, 3], inner={"a": 1, "b": 2})
    assert rt.fns.val(rec, a[2]) == 4.5
    assert rt.fns.val(a[1:2], a[0]) == 1.0  # a 1-element structured array is a record too
    rt.fns.one(rec)  # a record: fields written back
    assert rec["n"] == 11 and rec["inner"]["b"] == 1
    rt.fns.one(a[1])  # a structured array's element writes through to the array
    assert a[1]["n"] == 10 and a[1]["inner"]["b"] == -1
    rt.fns.one(a[2:3])  # a 1-element array: in place
    assert a[2]["n"] == 10
    made = rt.fns.make(4.5)
    assert type(made) is rt.types.Candle
    assert (made["open"], made["close"], made["n"], made["inner"]["a"]) == (4.5, -4.5, 3, 7)
    assert made.arr == (1.0, 2.0, 3.0) and made.flag is True
    assert rt.fns.val(made, made) == -9.0  # a returned record goes straight back in
    rt.fns.one(made)
    assert made.n == 13 and made.inner.b == -6  # a record's fields are written back
    numpy_rec = made.to_numpy()
    rt.fns.one(numpy_rec)  # so are a numpy record's
    assert numpy_rec["n"] == 23


def test_enums_are_int_enums(rt: sb.Runtime) -> None:
    Side = rt.types.Side
    assert rt.fns.flip(Side.Buy) is Side.Sell
    assert rt.fns.flip(2) is Side.Buy
    with pytest.raises(ValueError, match=r"flip\(\) argument 1 's' expects Side .*got 7"):
        rt.fns.flip(7)
    with pytest.raises(TypeError, match="got bool True"):
        rt.fns.flip(True)

    class Other(enum.IntEnum):
        X = 1

    with pytest.raises(TypeError, match="expects Side"):
        rt.fns.flip(Other.X)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda rt: np.zeros(4), TypeError, "not a structured dtype"),
        (lambda rt: [1.0, 2.0], TypeError, "got list"),
        (
            lambda rt: np.zeros(2, np.dtype([("close", "f8"), ("open", "f8")])),
            TypeError,
            "field 1 is 'close', expected 'open'",
        ),
        (
            lambda rt: np.zeros(2, retyped(rt.types.Candle.dtype, close=np.float32)),
            TypeError,
            "field 'close' is float32, expected float64",
        ),
        (lambda rt: candles(rt, 6)[::2], ValueError, "non-contiguous"),
        (
            lambda rt: np.frombuffer(bytearray(56 * 2 + 1), np.uint8)[1:].view(
                rt.types.Candle.dtype
            ),
            ValueError,
            "misaligned",
        ),
    ],
)
def test_wrong_structured_arrays_are_refused_and_nothing_is_written(
    rt: sb.Runtime, make: Any, error: type[Exception], match: str
) -> None:
    bad = make(rt)
    before = np.ascontiguousarray(bad).tobytes() if isinstance(bad, np.ndarray) else None
    with pytest.raises(error, match=match) as info:
        rt.fns.bump(bad)
    assert "bump() argument 1 'c' expects &mut [Candle]" in str(info.value)
    if before is not None:
        assert np.ascontiguousarray(bad).tobytes() == before


def test_invalid_bool_bytes_and_read_only_arrays_are_refused(rt: sb.Runtime) -> None:
    a = candles(rt, 2)
    raw = a.view(np.uint8).reshape(2, -1)
    raw[1, rt.types.Candle.dtype.fields["flag"][1]] = 7
    with pytest.raises(ValueError, match="not a valid bool"):
        rt.fns.total(a)
    b = candles(rt, 2)
    b.flags.writeable = False
    with pytest.raises(TypeError, match="read-only"):
        rt.fns.bump(b)
    assert rt.fns.total(b) == 1.0  # reading it is fine


def test_single_record_parameters_refuse_arrays_of_several(rt: sb.Runtime) -> None:
    with pytest.raises(TypeError, match="a single record"):
        rt.fns.val(candles(rt, 2), candles(rt, 1))
    with pytest.raises(TypeError, match=r"val\(\) argument 2 'r' expects &Candle"):
        rt.fns.val(candles(rt, 1), {"close": 1.0})


def test_a_pinned_handle_and_an_evolved_revision_take_records(rt: sb.Runtime) -> None:
    runtime = sb.Runtime(PRELUDE + FUNCTIONS, profile="debug")
    pinned = runtime.revision(0).fns
    reply = "```rust\n" + FUNCTIONS.replace("x.close).sum()", "x.close * 2.0).sum()") + "```"

    def check(fns: sb.Functions) -> float:
        a = candles(runtime, 4)
        assert fns.total(a) == 12.0, "total must double"
        return float(fns.make(1.0)["open"])

    info = runtime.evolve(ScriptedAgent([reply]), "double the total", check=check)
    assert info.score == 1.0
    a = candles(runtime, 3)
    assert runtime.fns.total(a) == 6.0 and pinned.total(a) == 3.0


def test_a_candidate_whose_struct_layout_differs_does_not_build() -> None:
    runtime = sb.Runtime(PRELUDE + FUNCTIONS, profile="debug")
    redefined = FUNCTIONS + (
        "\n#[derive(Clone, Copy)]\npub struct Inner { b: i64, a: u8 }\n"  # not #[repr(C)]
    )
    with pytest.raises(sb.CandidateError, match=r"Inner\.\w+` is not at the declared offset"):
        runtime.register(redefined)
    retyped = (
        FUNCTIONS + "\n#[repr(C)]\n#[derive(Clone, Copy)]\npub struct Inner { a: u8, b: u64 }\n"
    )
    with pytest.raises(sb.CandidateError, match="mismatched types"):
        runtime.register(retyped)


def test_records_and_structured_arrays_survive_the_trip_to_a_worker() -> None:
    runtime = sb.Runtime(PRELUDE + FUNCTIONS, profile="debug", isolation="process")
    a = candles(runtime, 4)
    rec = runtime.types.Candle(
        open=1, close=2, flag=True, n=0, arr=[0, 0, 0], inner={"a": 0, "b": 0}
    )
    numpy_rec = rec.to_numpy()

    def check(fns: sb.Functions) -> float:
        assert fns.total(a) == 6.0, "the array arrived"
        made = fns.make(3.0)
        fns.one(a[1:2])
        assert a[1]["n"] == 10, "the array was written"
        # The record arrived as an instance of a copy of the class: read and written back
        # through numpy, not natively, but alike.
        fns.one(rec)
        assert rec.n == 10 and rec.inner.b == -1
        # An unpickled numpy record drops writes to its fields: refused, not lost silently.
        with pytest.raises(TypeError, match="does not keep writes"):
            fns.one(numpy_rec)
        return float(fns.val(rec, made) + fns.flip(1))

    reply = "```rust\n" + FUNCTIONS + "```"
    info = runtime.evolve(ScriptedAgent([reply]), "same again", check=check)
    assert info.score == 2.0 + -3.0 + 2


def test_unsupported_shared_types_are_refused_at_declaration_time() -> None:
    with pytest.raises(sb.DeclarationError, match=r"must be #\[repr\(C\)\]"):
        sb.evolvable("struct P { x: f64 }\nfn f(p: &P) -> f64;")
    with pytest.raises(sb.DeclarationError, match="field `name`: field type `String`"):
        sb.evolvable("#[repr(C)] struct P { name: String }\nfn f(p: &[P]);")
    with pytest.raises(sb.DeclarationError, match="field `dtype`: the name is taken on the"):
        sb.evolvable("#[repr(C)] struct P { dtype: u8 }\nfn f(p: P);")
    with pytest.raises(sb.DeclarationError, match="integer representation"):
        sb.evolvable("enum E { A, B }\nfn f(e: E);")
    with pytest.raises(sb.DeclarationError, match="variants with data"):
        sb.evolvable("#[repr(u8)] enum E { A, B { x: f64 } }\nfn f(e: E);")
    with pytest.raises(sb.DeclarationError, match="variants with data"):
        sb.evolvable("enum E { A, B { x: f64 } }\n#[repr(C)] struct S { e: E }\nfn f(s: &S);")
    with pytest.raises(sb.DeclarationError, match="`Vec` returns must hold a scalar type or"):
        sb.evolvable("#[repr(u8)] enum E { A }\nfn f() -> Vec<E>;")
    with pytest.raises(sb.DeclarationError, match="row length of `\\[f64; N\\]`"):
        sb.evolvable("const N: usize = 3;\nfn f(r: &[[f64; N]]);")
    with pytest.raises(sb.DeclarationError, match="`Option` parameters must hold"):
        sb.evolvable("fn f(r: Option<&str>);")


def test_the_buffer_format_python_expects_is_numpys(rt: sb.Runtime) -> None:
    padded = sb.evolvable(
        "#[repr(C)] struct P { x: f64, n: u8 }\n"  # 7 bytes of trailing padding
        "#[repr(C)] struct Q { p: P, y: u8, ps: [P; 2], z: u16 }\n"
        "fn f(q: &[Q], p: &[P]);"
    )
    structs = (*rt.declarations.structs, *padded.structs)
    assert len(structs) == 4
    for s in structs:
        from symbiont._load._records import dtype_of

        exported = memoryview(np.zeros(1, dtype_of(s))).format
        assert exported == s.buffer_format, s.name


def test_structs_with_trailing_padding_cross() -> None:
    runtime = sb.Runtime(
        "#[repr(C)] #[derive(Clone, Copy)] pub struct P { x: f64, n: u8 }\n"
        "fn get(p: P) -> u8 { p.n }\nfn make(n: u8) -> P { P { x: 0.5, n } }",
        profile="debug",
    )
    p = runtime.fns.make(9)
    assert runtime.fns.get(p) == 9 and p["x"] == 0.5


def test_records_whose_fields_were_reassigned_are_checked_at_the_call(rt: sb.Runtime) -> None:
    rec = rt.fns.make(1.0)
    rec.close = np.float64(2.0)  # not an exact float: converted on the slow path, same value
    assert rt.fns.val(rec, rec) == 4.0
    rec.n = "seven"
    before = (rec.open, rec.close, rec.inner)
    with pytest.raises(TypeError, match=r"one\(\) argument 1 'c' field 'n' expects u32 \(an int\)"
                                        r", got str 'seven'"):  # fmt: skip
        rt.fns.one(rec)
    assert (rec.open, rec.close, rec.inner, rec.n) == (*before, "seven"), "nothing written"
    rec.n = True
    with pytest.raises(TypeError, match=r"field 'n' expects u32 .*a bool is not a number"):
        rt.fns.val(rec, rec)


def test_record_classes_are_shared_by_revisions_and_handles(rt: sb.Runtime) -> None:
    runtime = sb.Runtime(PRELUDE + FUNCTIONS, profile="debug")
    made = runtime.revision(0).fns.make(2.0)
    assert type(made) is runtime.types.Candle is rt.types.Candle
    assert rt.fns.val(made, made) == -4.0
