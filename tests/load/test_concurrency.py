"""Calls that release the GIL (rt.nogil, release_gil=True) and Ctrl-C stopping native calls.

Scenarios that could crash the interpreter (unmapping, signals) run in a child interpreter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from child import scenario

import symbiont as sb

DECL = """
fn spin(ms: u64) -> u64 {
    let t = std::time::Instant::now();
    let mut n = 0u64;
    while t.elapsed() < std::time::Duration::from_millis(ms) { n += 1; }
    n
}
fn window(ms: u64) -> (u64, u64) {
    use std::time::{SystemTime, UNIX_EPOCH};
    let now = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let start = now();
    let t = std::time::Instant::now();
    while t.elapsed() < std::time::Duration::from_millis(ms) {}
    (start, now())
}
fn hold(xs: &mut [f64], started: &mut [u8], ms: u64) {
    started[0] = 1;
    let t = std::time::Instant::now();
    while t.elapsed() < std::time::Duration::from_millis(ms) {}
    xs[0] += 1.0;
}
fn total(xs: &[f64]) -> f64 { xs.iter().sum() }
fn bump(n: &mut u64, label: &str) -> String { *n += 1; format!("{label}{n}") }
fn forever(x: u64) -> u64 { let mut v = x; loop { v = v.wrapping_mul(3); if v == 7 { return v } } }
fn boom(x: u64) -> u64 { if x > 1 { panic!("x = {x} is too big") } x }
"""


@pytest.fixture(scope="module")
def rt() -> sb.Runtime:
    return sb.Runtime(DECL, profile="release")


def heartbeats(call: Callable[[], Any]) -> int:
    """How often a thread that wakes every 2 ms ran during ``call()``."""
    stop = threading.Event()
    count = 0

    def beat() -> None:
        nonlocal count
        while not stop.is_set():
            count += 1
            time.sleep(0.002)

    t = threading.Thread(target=beat)
    t.start()
    time.sleep(0.02)
    before = count
    call()
    during = count - before
    stop.set()
    t.join()
    return during


def test_other_threads_run_during_a_call_that_releases_the_gil(rt: sb.Runtime) -> None:
    assert heartbeats(lambda: rt.nogil.spin(500)) >= 20
    assert heartbeats(lambda: rt.fns.spin(500)) <= 2  # rt.fns keeps the GIL


def test_two_threads_calls_overlap_only_without_the_gil(rt: sb.Runtime) -> None:
    def windows(fn: Callable[[int], tuple[int, int]]) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        threads = [threading.Thread(target=lambda: found.append(fn(300))) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return found

    (a0, a1), (b0, b1) = windows(rt.nogil.window)
    assert max(a0, b0) < min(a1, b1)  # both ran at once
    (a0, a1), (b0, b1) = windows(rt.fns.window)
    assert max(a0, b0) >= min(a1, b1)  # one after the other


def test_memory_of_a_call_without_the_gil_is_refused_to_other_calls(rt: sb.Runtime) -> None:
    xs = np.zeros(4)
    started = np.zeros(1, dtype=np.uint8)
    t = threading.Thread(target=rt.nogil.hold, args=(xs, started, 600))
    t.start()
    while not started[0]:
        time.sleep(0.001)
    with pytest.raises(ValueError, match=r"hold\(\): argument 1 'xs' shares memory"):
        rt.fns.hold(xs, np.zeros(1, dtype=np.uint8), 0)
    with pytest.raises(ValueError, match=r"total\(\): argument 1 'xs' shares memory"):
        rt.nogil.total(xs)  # reading memory another call writes is refused too
    assert rt.fns.total(np.ones(3)) == 3.0  # other memory is fine
    t.join()
    assert xs.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert rt.nogil.total(xs) == 1.0  # returned to everyone once the call ended


def test_arguments_and_results_cross_the_boundary_as_with_the_gil(rt: sb.Runtime) -> None:
    n = sb.Cell(4)
    assert rt.nogil.bump(n, "n=") == "n=5"
    assert n.value == 5
    assert rt.nogil.bump(n, label="k") == "k6"
    assert rt.nogil.window(0)[0] > 0
    with pytest.raises(OverflowError, match="argument 1 'ms' expects u64"):
        rt.nogil.spin(-1)
    with pytest.raises(TypeError, match="argument 1 'ms' expects u64"):
        rt.nogil.spin("1")


def test_deadlines_and_panics_in_calls_without_the_gil(rt: sb.Runtime) -> None:
    with pytest.raises(sb.TimeoutError, match="forever"):
        rt.with_timeout(0.2, release_gil=True).forever(5)
    with pytest.raises(sb.PanicError, match="x = 5 is too big") as info:
        rt.nogil.boom(5)
    assert "candidate.rs:" in str(info.value)  # located in the candidate's code
    assert rt.nogil.boom(1) == 1
    handle = rt.revision(0, timeout=0.2, release_gil=True)
    with pytest.raises(sb.TimeoutError):
        handle.fns.forever(5)
    assert "GIL released" in repr(handle.fns) and "GIL released" in repr(rt.nogil)
    assert "GIL released" not in repr(rt.fns)


def test_a_call_without_the_gil_keeps_its_revision_mapped() -> None:
    # Another thread activates the next revision, unloads this one and reaps while the call
    # runs: if the call did not pin its library, returning into it would crash the child.
    out = scenario(
        """
import gc, threading, time
import numpy as np
import symbiont as sb
from symbiont._load import reap

code = '''
fn work(started: &mut [u8], ms: u64) -> u64 {
    started[0] = 1;
    let t = std::time::Instant::now();
    let mut n = 0u64;
    while t.elapsed() < std::time::Duration::from_millis(ms) { n += 1; }
    RESULT
}
'''
rt = sb.Runtime(code.replace("RESULT", "42"), profile="debug")
rt.register(code.replace("RESULT", "7"))
started = np.zeros(1, dtype=np.uint8)
got = []
t = threading.Thread(target=lambda: got.append(rt.nogil.work(started, 500)))
t.start()
while not started[0]:
    time.sleep(0.001)
rt.activate(1)
print("unloaded", rt.unload(0))
gc.collect()
reap()
t.join()
print("result", got, rt.fns.work(np.zeros(1, dtype=np.uint8), 0))
"""
    )
    assert "unloaded True" in out
    assert "result [42] 7" in out


SIGINT = """
import os, signal, subprocess, sys, threading, time
import numpy as np
import symbiont as sb

rt = sb.Runtime('''
fn spin(ms: u64) -> u64 {
    let t = std::time::Instant::now();
    let mut n = 0u64;
    while t.elapsed() < std::time::Duration::from_millis(ms) { n += 1; }
    n
}
fn slow(x: f64) -> f64 {
    let t = std::time::Instant::now();
    let mut y = x;
    while t.elapsed() < std::time::Duration::from_secs(30) { y += 1.0; }
    y
}
''', profile="release")

def ctrl_c(after=0.3):
    # From another process: a thread of ours could not run while a call holds the GIL.
    subprocess.Popen(["sh", "-c", f"sleep {after}; kill -INT {os.getpid()}"])

def stopped(name, call):
    ctrl_c()
    started = time.perf_counter()
    try:
        call()
    except KeyboardInterrupt:
        print(name, "KeyboardInterrupt", round(time.perf_counter() - started, 1))
    else:
        print(name, "returned")
"""


def test_ctrl_c_stops_a_long_native_call() -> None:
    out = scenario(
        SIGINT
        + """
stopped("held", lambda: rt.fns.spin(30000))
stopped("map", lambda: rt.map.slow(np.zeros(2), threads=2))
stopped("nogil", lambda: rt.nogil.spin(30000))
stopped("timed", lambda: rt.with_timeout(60).spin(30000))
print("again", rt.fns.spin(10) > 0, rt.map.slow(np.zeros(0)).size)
""",
        timeout=100,
    )
    for name in ("held", "map", "nogil", "timed"):
        line = next(x for x in out.splitlines() if x.startswith(name + " "))
        assert line.startswith(f"{name} KeyboardInterrupt"), out
        assert float(line.split()[-1]) < 10  # not the 30 s the call would take
    assert "again True 0" in out


def test_ctrl_c_outside_a_native_call_does_not_stop_the_next_one() -> None:
    out = scenario(
        SIGINT
        + """
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
except KeyboardInterrupt:
    print("python KeyboardInterrupt")
print("next", rt.fns.spin(300) > 0)
# Ctrl-C while the main thread runs Python and another thread a native call: only the main
# thread is interrupted.
got = []
t = threading.Thread(target=lambda: got.append(rt.nogil.spin(800)))
t.start()
time.sleep(0.2)
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
except KeyboardInterrupt:
    print("main KeyboardInterrupt")
t.join()
print("thread", len(got), got[0] > 0)
""",
        timeout=100,
    )
    assert "python KeyboardInterrupt" in out
    assert "next True" in out
    assert "main KeyboardInterrupt" in out
    assert "thread 1 True" in out


def test_a_users_sigint_handler_is_respected() -> None:
    out = scenario(
        SIGINT
        + """
seen = []
signal.signal(signal.SIGINT, lambda *a: seen.append("handler"))
ctrl_c(0.2)
n = rt.fns.spin(1500)  # runs to its end: the user's handler decides what Ctrl-C means
print("returned", n > 0, seen)
signal.signal(signal.SIGINT, signal.default_int_handler)
rt.activate(0)  # symbiont takes Ctrl-C again once the default handler is back
stopped("default again", lambda: rt.fns.spin(30000))
""",
        timeout=100,
    )
    assert "returned True ['handler']" in out
    assert "default again KeyboardInterrupt" in out
