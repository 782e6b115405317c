"""Vectorised calls: numpy broadcasting, dtype checks, threads, panics and deadlines."""

from __future__ import annotations

import numpy as np
import pytest

import symbiont as sb

DECL = """
fn affine(x: f64) -> f64 { x * 2.0 + 1.0 }
fn add(a: i32, b: i64) -> i64 { a as i64 + b }
fn is_big(x: u16, limit: u16) -> bool { x > limit }
fn collatz(n: u64) -> u32 {
    let mut n = n;
    let mut steps = 0;
    while n > 1 { n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 }; steps += 1; }
    steps
}
fn boom(x: f64) -> f64 { if x > 5.0 { panic!("x = {x} is too big") } x }
fn spin(x: u64) -> u64 { let mut v = x; loop { v = v.wrapping_mul(3); if v == 7 { return v } } }
fn text(n: u8) -> String { n.to_string() }
fn flag(b: bool) -> u8 { b as u8 }
"""


@pytest.fixture(scope="module")
def rt() -> sb.Runtime:
    return sb.Runtime(DECL)


def test_matches_the_scalar_function_elementwise(rt: sb.Runtime) -> None:
    xs = np.linspace(-5, 5, 1001)
    assert np.array_equal(rt.map.affine(xs), np.array([rt.fns.affine(x) for x in xs]))
    ns = np.arange(1, 2000, dtype=np.uint64)
    assert rt.map.collatz(ns).tolist() == [rt.fns.collatz(int(n)) for n in ns]
    assert rt.map.collatz(ns).dtype == np.uint32


def test_broadcasting_like_numpy(rt: sb.Runtime) -> None:
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    b = np.array([[100], [200]], dtype=np.int64)
    assert rt.map.add(a, b).tolist() == [[100, 101, 102], [203, 204, 205]]
    assert rt.map.add(a, 10).tolist() == (a + 10).tolist()  # a Python scalar broadcasts
    assert rt.map.add(np.int32(1), np.arange(3)).tolist() == [1, 2, 3]
    assert rt.map.is_big(np.array([1, 9], dtype=np.uint16), 5).tolist() == [False, True]
    with pytest.raises(ValueError, match="do not broadcast"):
        rt.map.add(np.zeros(3, dtype=np.int32), np.zeros(4, dtype=np.int64))
    assert rt.map.affine(np.zeros((0, 3))).shape == (0, 3)


def test_out_array_and_dtype_checks(rt: sb.Runtime) -> None:
    xs = np.arange(4.0)
    out = np.empty(4)
    assert rt.map.affine(xs, out=out) is out
    assert out.tolist() == [1.0, 3.0, 5.0, 7.0]
    with pytest.raises(TypeError, match=r"out= must be an ndarray of float64 with shape \(4,\)"):
        rt.map.affine(xs, out=np.empty(4, dtype=np.float32))
    with pytest.raises(TypeError, match="argument 1 'a' expects an array of int32"):
        rt.map.add(np.arange(3.0), 1)
    with pytest.raises(OverflowError, match="'a' expects i32"):
        rt.map.add([2**40], 1)
    with pytest.raises(TypeError, match=r"takes 2 array\(s\)"):
        rt.map.add(np.arange(3, dtype=np.int32))
    assert rt.map.affine([0, 1, 2]).tolist() == [1.0, 3.0, 5.0]  # a list is converted


def test_only_numeric_scalar_functions_are_vectorised(rt: sb.Runtime) -> None:
    assert set(rt.map) == {"affine", "add", "is_big", "collatz", "boom", "spin"}
    with pytest.raises(AttributeError, match="text has no vectorised form"):
        _ = rt.map.text
    with pytest.raises(AttributeError, match="flag has no vectorised form"):
        _ = rt.map.flag


def test_threads_give_the_same_result(rt: sb.Runtime) -> None:
    ns = np.arange(1, 200_001, dtype=np.uint64)
    one = rt.map.collatz(ns)
    assert np.array_equal(rt.map.collatz(ns, threads=2), one)
    assert np.array_equal(rt.map.collatz(ns, threads=0), one)
    assert np.array_equal(rt.map.collatz(ns[:3], threads=8), one[:3])


@pytest.mark.parametrize("threads", [1, 2])
def test_panics_and_deadlines_behave_as_in_a_single_call(rt: sb.Runtime, threads: int) -> None:
    with pytest.raises(sb.PanicError, match="is too big") as info:
        rt.map.boom(np.arange(10.0), threads=threads)
    line = next(i for i, text in enumerate(rt.code(0).splitlines(), 1) if "too big" in text)
    assert info.value.line == line and info.value.file == "candidate.rs"
    with pytest.raises(sb.TimeoutError, match=r"deadline of 0\.2 s"):
        rt.map.spin(np.arange(10, dtype=np.uint64), threads=threads, timeout=0.2)
    assert rt.map.affine(np.ones(3)).tolist() == [3.0, 3.0, 3.0]


def test_map_follows_activation_and_handles_pin(rt: sb.Runtime) -> None:
    runtime = sb.Runtime("fn f(x: f64) -> f64 { x }")
    n = runtime.register("fn f(x: f64) -> f64 { -x }")
    pinned = runtime.revision(n).map.f
    assert runtime.map.f(np.ones(2)).tolist() == [1.0, 1.0]
    runtime.activate(n)
    assert runtime.map.f(np.ones(2)).tolist() == [-1.0, -1.0]
    runtime.activate(0)
    assert pinned(np.ones(2)).tolist() == [-1.0, -1.0]


def test_a_check_taking_two_arguments_gets_the_vectorised_functions() -> None:
    from symbiont.testing import ScriptedAgent

    runtime = sb.Runtime("fn f(x: f64) -> f64 { x }")

    def check(fns: sb.Functions, vec: object) -> float:
        xs = np.arange(100.0)
        ys = vec.f(xs)  # type: ignore[attr-defined]
        assert np.array_equal(ys, 2 * xs), "f must double"
        return float(fns.f(1.0))

    info = runtime.evolve(ScriptedAgent(["```rust\nfn f(x: f64) -> f64 { 2.0 * x }\n```"]), "x2",
                          check=check)  # fmt: skip
    assert info.score == 2.0


def test_threaded_maps_leave_nothing_mapped_once_unloaded() -> None:
    import gc

    from symbiont._load import reap

    def mapped(paths: set[str]) -> set[str]:
        with open("/proc/self/maps") as maps:
            return {line.split()[-1] for line in maps if line.rstrip().endswith(".so")} & paths

    rt = sb.Runtime("fn f(x: f64) -> f64 { x }", max_loaded=1)
    numbers = [rt.register(f"fn f(x: f64) -> f64 {{ x + {k}.0 }}") for k in range(1, 5)]
    paths = {str(rt.revisions[n].library) for n in numbers}
    for n in numbers:
        assert rt.revision(n).map.f(np.zeros(1000), threads=2)[0] == float(numbers.index(n) + 1)
    for n in numbers:
        rt.unload(n)
    gc.collect()
    reap()
    assert mapped(paths) == set()


def test_out_may_alias_an_input(rt: sb.Runtime) -> None:
    xs = np.arange(5.0)
    assert rt.map.affine(xs, out=xs) is xs
    assert xs.tolist() == [1.0, 3.0, 5.0, 7.0, 9.0]
