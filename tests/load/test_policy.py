"""One conversion policy for rt.fns and rt.map (README, "One conversion policy"):

- a scalar parameter takes an int for integer types (range-checked, never a float), a float or
  an int for float types; numpy scalars count as the Python numbers they hold; a bool is never
  a number;
- a slice parameter takes a buffer of exactly its element type, zero copy: never converted;
- rt.map converts Python numbers, lists and tuples under the scalar rules, and takes numpy
  arrays (and other buffers) of exactly the parameter's dtype: it never changes a dtype.
"""

from __future__ import annotations

import array
from typing import Any

import numpy as np
import pytest

import symbiont as sb

DECL = """
fn count(n: usize) -> usize { n }
fn half(x: f64) -> f64 { x / 2.0 }
fn total(xs: &[f64]) -> f64 { xs.iter().sum() }
"""


@pytest.fixture(scope="module")
def rt() -> sb.Runtime:
    return sb.Runtime(DECL, profile="debug")


@pytest.mark.parametrize("flag", [True, np.bool_(False)])
def test_a_bool_is_not_a_number_anywhere(rt: sb.Runtime, flag: Any) -> None:
    with pytest.raises(TypeError, match=r"count\(\) argument 1 'n' expects usize \(an int\), "
                                        r"got .*a bool is not a number"):  # fmt: skip
        rt.fns.count(flag)
    with pytest.raises(TypeError, match=r"half\(\) argument 1 'x' expects f64 \(a float\), got"):
        rt.fns.half(flag)
    with pytest.raises(TypeError, match=r"count\.map\(\) argument 1 'n' expects usize"):
        rt.map.count(flag)
    with pytest.raises(TypeError, match=r"'n' \(an element\) expects usize .* a bool is not"):
        rt.map.count([1, flag])
    with pytest.raises(TypeError, match="a bool is not a number"):
        rt.revision(0).fns.count(n=flag)
    cell_decl = sb.Runtime("fn inc(c: &mut u32) { *c += 1; }", profile="debug")
    with pytest.raises(TypeError, match="a bool is not a number"):
        cell_decl.fns.inc(sb.Cell(True))


def test_numbers_and_numpy_scalars_follow_the_scalar_rules_in_both(rt: sb.Runtime) -> None:
    for value in (4, np.int64(4), np.uint8(4)):
        assert rt.fns.count(value) == 4
        assert rt.map.count(value).tolist() == 4
    for value in (3, 3.0, np.float32(3.0)):
        assert rt.fns.half(value) == 1.5
        assert rt.map.half(value).tolist() == 1.5
    with pytest.raises(TypeError, match=r"count\(\) argument 1 'n' expects usize \(an int\), "
                                        r"got float 2.0"):  # fmt: skip
        rt.fns.count(2.0)
    with pytest.raises(TypeError, match=r"count\.map\(\) argument 1 'n' expects usize \(an int\)"
                                        r", got float 2.0"):  # fmt: skip
        rt.map.count(2.0)
    with pytest.raises(OverflowError, match=r"expects usize \(0..=18446744073709551615\), got -1"):
        rt.fns.count(-1)
    with pytest.raises(OverflowError, match="expects usize"):
        rt.map.count(-1)


def test_rt_map_converts_lists_but_never_a_numpy_dtype(rt: sb.Runtime) -> None:
    assert rt.map.half([1, 2.0, 3]).tolist() == [0.5, 1.0, 1.5]
    assert rt.map.count((1, 2)).tolist() == [1, 2]
    with pytest.raises(TypeError, match=r"'n' \(an element\) expects usize \(an int\), got float"):
        rt.map.count([1, 2.5])
    with pytest.raises(OverflowError, match=r"'n' expects usize: values outside"):
        rt.map.count([1, -2])
    for arr in (np.arange(3), np.arange(3, dtype=np.float32), np.zeros(3, dtype=np.int32)):
        with pytest.raises(TypeError, match=r"half\.map\(\) argument 1 'x' expects an array of "
                                            r"float64 \(f64\), got an array of \w+: rt\.map never "
                                            r"changes an array's dtype; convert it with "
                                            r"\.astype\(np\.float64\)"):  # fmt: skip
            rt.map.half(arr)
    with pytest.raises(TypeError, match="got an array of int64"):
        rt.map.count(np.arange(3))  # int64 is not usize (uint64)
    assert rt.map.count(np.arange(3, dtype=np.uint64)).tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    "value",
    [np.arange(3), np.arange(3, dtype=np.float32), [1.0, 2.0], array.array("l", [1, 2])],
    ids=["int64", "float32", "list", "array.array"],
)
def test_rt_fns_slices_are_never_converted(rt: sb.Runtime, value: Any) -> None:
    with pytest.raises(TypeError, match=r"total\(\) argument 1 'xs' expects &\[f64\]"):
        rt.fns.total(value)
    assert rt.fns.total(np.asarray(value, dtype=np.float64)) == float(sum(value))
