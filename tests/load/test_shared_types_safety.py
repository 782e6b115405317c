"""Shared types never crash the interpreter or hand Rust an invalid value: each scenario below
once did. Every scenario runs in a child interpreter, so a regression fails its test with the
signal instead of killing the test run."""

from __future__ import annotations

from child import scenario

# The structured array a call reads is made by `__array__` and owned by an object whose
# finalizer switches revisions and unloads the one running: the call's buffer view holds the
# last reference, so the finalizer runs when the entry releases that view.
RELEASED_LAST = """
import gc
import pickle
import numpy as np
import symbiont as sb
from symbiont._load import reap

rt = sb.Runtime('''
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Bar { pub open: f64, pub close: f64 }
fn total(c: &[Bar]) -> f64 { c.iter().map(|x| x.close).sum() }
fn bump(c: &mut [Bar]) { c[0].close += 1.0; }
fn rows(r: &[[f64; 2]], k: u64) -> f64 { r.iter().map(|x| x[1]).sum::<f64>() + k as f64 }
''', profile="debug")
other = rt.register('''
fn total(c: &[Bar]) -> f64 { -1.0 }
fn bump(c: &mut [Bar]) {}
fn rows(r: &[[f64; 2]], k: u64) -> f64 { -1.0 }
''')

class Owner:
    def __init__(self, a):
        self.a = a
        self.__array_interface__ = a.__array_interface__
    def __del__(self):
        rt.activate(other)
        rt.unload(0)
        gc.collect()
        reap()

class Lazy:
    def __init__(self, a):
        self.a = a
        self.dtype = a.dtype
    def __array__(self, dtype=None, copy=None):
        return np.asarray(Owner(self.a))

bars = rt.types.Bar.zeros(3)
bars["close"] = 2.0
print("total", rt.fns.total(Lazy(bars)))
rt.activate(0)
one = rt.types.Bar.zeros(1)
rt.fns.bump(Lazy(one))
print("bumped", one["close"][0])
rt.activate(0)

class Held(np.ndarray):
    def __del__(self):
        Owner.__del__(self)

held = pickle.PickleBuffer(np.ones((2, 2)).view(Held))

class Release:
    def __index__(self):
        held.release()  # from now on the call's view holds the last reference to Held
        return 0

print("rows", rt.fns.rows(held, Release()))
"""


def test_record_and_row_views_are_released_before_the_pin_drops() -> None:
    out = scenario(RELEASED_LAST)
    assert "total 6.0" in out and "bumped 1.0" in out and "rows 2.0" in out, out


BOOLS = """
import numpy as np
import symbiont as sb
rt = sb.Runtime('''
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Flagged { pub x: u8, pub flag: bool }
fn count(c: &[Flagged], k: u64) -> u64 { c.iter().filter(|f| f.flag).count() as u64 + k }
fn pick(c: &mut Flagged, k: u64) -> u64 { if c.flag { 10 + k } else { k } }
fn rows(r: &[[bool; 2]], k: u64) -> u64 { r.iter().filter(|x| x[1]).count() as u64 + k }
''', profile="release")

class Poke:
    def __init__(self, raw):
        self.raw = raw
    def __index__(self):
        self.raw[...] = 200  # not a bool any more
        return 0

many = rt.types.Flagged.zeros(3)
one = rt.types.Flagged.zeros(1)
grid = np.zeros((3, 2), bool)
for name, call in (
    ("count", lambda: rt.fns.count(many, Poke(many.view(np.uint8)[1::2]))),
    ("pick", lambda: rt.fns.pick(one, Poke(one.view(np.uint8)[1:]))),
    ("rows", lambda: rt.fns.rows(grid, Poke(grid.view(np.uint8)))),
):
    try:
        print(name, "returned", call())
    except ValueError as exc:
        print(name, "refused:", exc)
"""


def test_a_later_argument_cannot_undo_the_bool_check_of_records_or_rows() -> None:
    out = scenario(BOOLS)
    assert "returned" not in out, out
    for name in ("count", "pick", "rows"):
        assert f"{name} refused:" in out and "0 or 1" in out, out
