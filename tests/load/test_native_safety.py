"""The native glue never crashes the interpreter: each scenario below once did (or misbehaved).

Every scenario runs in a child interpreter, so a regression fails its test with the signal
instead of killing the test run. The children share the session's build cache.
"""

from __future__ import annotations

import pytest
from child import scenario

# A finalizer that switches the active revision and unloads the one a call is running in: it
# runs when the garbage collector does, which any GC-tracked allocation may trigger.
SWITCHER = """
import gc, sys
import symbiont as sb
from symbiont._load import reap

class Switch:
    fired = 0
    def __del__(self):
        Switch.fired += 1
        rt.activate(1)
        rt.unload(0)
        reap()

def armed(call):
    '''Calls `call` so that the first GC-tracked allocation inside it collects a Switch.'''
    rt.activate(0)
    gc.collect()
    gc.disable()
    s = Switch()
    s.me = s
    del s
    try:
        raise KeyError("context")  # an exception being handled: new ones are built eagerly
    except KeyError:
        gc.set_threshold(1)
        gc.enable()
        try:
            call()
        except Exception as exc:
            return type(exc).__name__
        finally:
            gc.set_threshold(700)
    return "returned"
"""


def test_conversions_that_raise_pin_the_library() -> None:
    out = scenario(
        SWITCHER
        + """
rt = sb.Runtime("fn f(x: u64) -> u64 { x }\\nfn g(s: &str) -> usize { s.len() }",
                profile="debug")
rt.register("fn f(x: u64) -> u64 { x + 1 }\\nfn g(s: &str) -> usize { s.len() + 1 }")
print("int", armed(lambda: rt.fns.f(2**70)), Switch.fired)
print("str", armed(lambda: rt.fns.g("\\ud800")), Switch.fired)
print("after", rt.fns.f(1))
"""
    )
    assert "int OverflowError 1" in out
    assert "str ValueError 2" in out
    assert "after 2" in out


def test_buffer_views_are_released_while_the_library_is_pinned() -> None:
    # Releasing the view drops the last reference to a bytearray subclass whose finalizer
    # unloads the revision (on 3.12 `__release_buffer__` runs Python code at the same point).
    out = scenario(
        """
import pickle
import symbiont as sb
from symbiont._load import reap

rt = sb.Runtime("fn h(xs: &[u8], k: u64) -> u64 { xs.len() as u64 + k }", profile="debug")
rt.register("fn h(xs: &[u8], k: u64) -> u64 { 0 }")

class Sub(bytearray):
    def __del__(self):
        rt.activate(1)
        rt.unload(0)
        reap()

pb = pickle.PickleBuffer(Sub(8))

class K:
    def __index__(self):
        pb.release()  # from now on the call's view holds the last reference to Sub
        return 1

print("result", rt.fns.h(pb, K()))
print("after", rt.fns.h(b"abc", 5))
"""
    )
    assert "result 9" in out
    assert "after 0" in out


BOOLS = """
import numpy as np
import symbiont as sb
rt = sb.Runtime('''
fn count(xs: &[bool], k: u64) -> u64 { xs.iter().filter(|&&b| b).count() as u64 + k }
fn pick(b: &mut bool, k: u64) -> u64 { match *b { true => 10 + k, false => k } }
''', profile="release")
flags = np.array([True, True, True])
one = np.array([True])

class Poke:
    def __init__(self, a):
        self.a = a
    def __index__(self):
        self.a.view(np.uint8)[0] = 200  # not a bool any more
        return 0

for name, call in (("count", lambda: rt.fns.count(flags, Poke(flags))),
                   ("pick", lambda: rt.fns.pick(one, Poke(one)))):
    try:
        print(name, "returned", call())
    except ValueError as exc:
        print(name, "refused:", exc)
"""


def test_a_later_argument_cannot_undo_the_bool_check() -> None:
    out = scenario(BOOLS)
    assert "count refused:" in out and "returned" not in out, out
    assert "pick refused:" in out, out
    assert "0 or 1" in out or "bool" in out


def test_a_panic_payload_whose_drop_panics_is_reported() -> None:
    out = scenario(
        """
import numpy as np
import symbiont as sb
code = '''
struct Bomb;
impl Drop for Bomb { fn drop(&mut self) { panic!("the payload's own drop panicked"); } }
fn f(x: u64) -> u64 { if x > 0 { std::panic::panic_any(Bomb); } x }
'''
rt = sb.Runtime("fn f(x: u64) -> u64 { x }", profile="debug")
rt.register(code, activate=True)
for call in (lambda: rt.fns.f(3), lambda: rt.map.f(np.ones(8, dtype=np.uint64), threads=2)):
    try:
        call()
        print("returned")
    except sb.PanicError as exc:
        print("PanicError", exc.function)
print("alive", rt.fns.f(0))
"""
    )
    assert out.count("PanicError f") == 2, out
    assert "alive 0" in out


GLUE_PATHS = {
    "alias": "__symbiont_rt::Pin::new(x as usize as *mut _)",
    "crate": "symbiont_rt::Pin::new(x as usize as *mut _)",
    "module": "crate::__symbiont_glue::rt::Pin::new(x as usize as *mut _)",
}


@pytest.mark.parametrize("path", list(GLUE_PATHS.values()), ids=list(GLUE_PATHS))
def test_candidate_code_cannot_reach_the_glue(path: str) -> None:
    out = scenario(
        f"""
import symbiont as sb
code = '''fn f(x: u64) -> u64 {{ let _p = {path}; x }}'''
rt = sb.Runtime("fn f(x: u64) -> u64 {{ x }}", profile="debug")
try:
    rt.register(code)
    print("policy accepted")
except sb.CandidateError as exc:
    print("policy refused:", exc)
"""
    )
    assert "policy refused:" in out and "internal glue" in out, out


def test_the_support_crate_is_not_nameable_even_past_the_policy() -> None:
    # The compiler itself must refuse: the policy is guidance, the crate layout is the wall.
    from symbiont._codegen import generate
    from symbiont._decl import evolvable

    decls = evolvable("fn f(x: u64) -> u64 { x }")
    for path in GLUE_PATHS.values():
        lib = generate(decls, f"fn f(x: u64) -> u64 {{ let _p = {path}; x }}").files["lib.rs"]
        assert "extern crate symbiont_rt as rt;" in lib
        assert "extern crate symbiont_rt as __symbiont_rt" not in lib
    out = scenario(
        """
import asyncio, os, tempfile
from pathlib import Path
from symbiont._codegen import generate
from symbiont._compile import Builder, find_toolchain
from symbiont._decl import evolvable
decls = evolvable("fn f(x: u64) -> u64 { x }")
cache = Path(os.environ["SYMBIONT_CACHE_DIR"])
builder = Builder(find_toolchain(), profile="debug", cache_dir=cache)
for path in ("symbiont_rt::tick()", "__symbiont_rt::tick()", "__symbiont_glue::rt::tick()"):
    code = "fn f(x: u64) -> u64 { %s; x }" % path
    result = asyncio.run(builder.build(generate(decls, code), code))
    print(path, "built" if result.ok else "refused by rustc")
"""
    )
    assert out.count("refused by rustc") == 3, out


def test_recursion_through_closures_only_is_stopped() -> None:
    out = scenario(
        """
import symbiont as sb
code = '''
struct R<'a>(&'a dyn Fn(&R, u64) -> u64);
fn depth(n: u64) -> u64 {
    let f = |r: &R, x: u64| -> u64 { if x == 0 { 0 } else { 1 + (r.0)(r, x - 1) } };
    let r = R(&f);
    (r.0)(&r, n)
}
'''
rt = sb.Runtime("fn depth(n: u64) -> u64 { n }", profile="debug")
rt.register(code, activate=True)
print("small", rt.fns.depth(100))
try:
    rt.fns.depth(10**9)
    print("returned")
except sb.PanicError as exc:
    print("PanicError:", exc)
"""
    )
    assert "small 100" in out
    assert "PanicError:" in out and "recursion too deep" in out, out


def test_threads_with_small_stacks_are_guarded() -> None:
    out = scenario(
        """
import threading
import symbiont as sb
rt = sb.Runtime("fn depth(n: u64) -> u64 { if n == 0 { 0 } else { 1 + depth(n - 1) } }",
                profile="debug")
rt.fns.depth(1)
results = []
def worker():
    try:
        results.append(("returned", rt.fns.depth(10**9)))
    except sb.PanicError as exc:
        results.append(("PanicError", str(exc)))
for size in (64 * 1024, 256 * 1024, 512 * 1024, 1024 * 1024):
    threading.stack_size(size)
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    print(size, results[-1][0], results[-1][1][:60])
"""
    )
    for size in (64, 256, 512, 1024):
        assert f"{size * 1024} PanicError" in out, out


def test_deadlines_fire_in_a_forked_child() -> None:
    out = scenario(
        """
import os, signal, time
import symbiont as sb
code = "fn spin(n: u64) -> u64 { let mut i = 0u64; loop { i += 1; if i == n { return i; } } }"
rt = sb.Runtime(code, profile="debug", timeout=0.05)
try:
    rt.fns.spin(2**63)
except sb.TimeoutError:
    print("parent TimeoutError")  # the parent's watchdog is running now
pid = os.fork()
if pid == 0:
    signal.alarm(20)  # a child whose deadline never fires dies here
    try:
        rt.fns.spin(2**63)
        os._exit(3)
    except sb.TimeoutError:
        os._exit(0)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
print("parent again", type(rt.fns.spin(5)).__name__)
"""
    )
    assert "parent TimeoutError" in out
    assert "child 0" in out, out
    assert "parent again int" in out


def test_memory_a_map_call_writes_is_refused_to_other_threads() -> None:
    out = scenario(
        """
import threading
import numpy as np
import symbiont as sb
rt = sb.Runtime('''
fn slow(x: f64) -> f64 { let mut s = x; for _ in 0..20000 { s = s * 1.0000001; } s }
fn bump(xs: &mut [f64]) { for x in xs.iter_mut() { *x += 1.0; } }
fn total(xs: &[f64]) -> f64 { xs.iter().sum() }
''', profile="debug")
buf = np.zeros(4000)
src = np.ones(4000)
started = threading.Event()
def mapper():
    started.set()
    rt.map.slow(src, out=buf)
t = threading.Thread(target=mapper)
t.start()
started.wait()
refused = {"bump": 0, "total": 0}
messages = set()
while t.is_alive():
    for name, call in (("bump", lambda: rt.fns.bump(buf[10:20])),
                       ("total", lambda: rt.fns.total(buf))):
        try:
            call()
        except ValueError as exc:
            refused[name] += 1
            messages.add(str(exc).split(":")[0])
t.join()
print("refused", refused["bump"] > 0, refused["total"] > 0, sorted(messages))
print("after", rt.fns.total(src[:3]))
"""
    )
    assert "refused True True" in out, out
    assert "after 3.0" in out


def test_free_threaded_interpreters_are_refused() -> None:
    from symbiont._load._trampoline import interpreter_problem

    problem = interpreter_problem(1, "cpython")
    assert problem is not None and "free-threaded" in problem and "GIL" in problem
    assert interpreter_problem(0, "cpython") is None
    assert interpreter_problem(None, "cpython") is None
    assert interpreter_problem(None, "pypy") == "symbiont needs CPython, not pypy"
    # The check runs when symbiont is imported.
    out = scenario(
        """
import sysconfig
real = sysconfig.get_config_var
sysconfig.get_config_var = lambda name: 1 if name == "Py_GIL_DISABLED" else real(name)
try:
    import symbiont
    print("imported")
except Exception as exc:
    print("refused:", type(exc).__name__, exc)
"""
    )
    assert "refused: ToolchainError" in out and "free-threaded" in out, out


def test_misaligned_map_inputs_are_copied() -> None:
    out = scenario(
        """
import numpy as np
import symbiont as sb
rt = sb.Runtime("fn twice(x: f64) -> f64 { x * 2.0 }", profile="debug")
raw = bytearray(8 * 5 + 1)
xs = np.frombuffer(raw, dtype=np.float64, offset=1, count=5)
xs[:] = [1, 2, 3, 4, 5]
assert not xs.flags.aligned
print(rt.map.twice(xs).tolist())
"""
    )
    assert "[2.0, 4.0, 6.0, 8.0, 10.0]" in out


def test_the_map_entry_itself_refuses_an_input_that_overlaps_out() -> None:
    # The Python front copies such inputs; the entry must not rely on it.
    out = scenario(
        """
import numpy as np
import symbiont as sb
rt = sb.Runtime("fn twice(x: f64) -> f64 { x * 2.0 }", profile="debug")
buf = np.ones(16)
native = rt.map.twice._native
try:
    native(buf[:8], 1, 0, buf[4:12], 1)
    print("accepted")
except ValueError as exc:
    print("refused:", exc)
raw = bytearray(8 * 17)
odd = np.frombuffer(raw, dtype=np.float64, offset=1, count=16)  # misaligned
try:
    native(np.zeros(16), 1, 0, odd, 1)
except TypeError as exc:
    print("misaligned:", exc)
print(buf.tolist() == [1.0] * 16)
"""
    )
    assert "refused:" in out and "shares memory with out=" in out, out
    assert "misaligned: twice.map(): argument 1 'x' must reach the native loop" in out, out
    assert "True" in out


def test_calls_ending_at_their_deadline_are_never_misreported() -> None:
    # A flag the watchdog raises as a call ends names that call's seq, so the thread's next
    # call is never stopped by it: every outcome is a result or a TimeoutError, never a panic.
    out = scenario(
        """
import threading, time
import symbiont as sb
code = '''fn work(n: u64) -> u64 {
    let mut s = 0u64;
    for i in 0..n { s = s.wrapping_mul(31).wrapping_add(i); }
    s
}'''
rt = sb.Runtime(code, profile="debug", timeout=0.001)
outcomes = {}
lock = threading.Lock()
def caller(n):
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        for m in (n // 4, n, 4 * n):
            try:
                rt.fns.work(m)
                kind = "result"
            except sb.TimeoutError:
                kind = "timeout"
            except Exception as exc:
                kind = f"{type(exc).__name__}: {exc}"
            with lock:
                outcomes[kind] = outcomes.get(kind, 0) + 1
threads = [threading.Thread(target=caller, args=(n,)) for n in (20000, 60000)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(sorted(outcomes.items()))
"""
    )
    assert "'result'" in out and "'timeout'" in out, out
    assert "Error" not in out, out


def test_a_drop_that_loops_or_recurses_while_a_stopped_call_unwinds() -> None:
    # The guards in a `Drop` run during the unwinding of a call stopped at its deadline or by
    # the depth guard; they raised again, and a second panic while unwinding aborted the host.
    out = scenario(
        """
import symbiont as sb
looping = '''
struct B(Vec<u64>);
impl Drop for B {
    fn drop(&mut self) { for x in self.0.iter_mut() { *x = 0; } }
}
fn run(n: u64) -> u64 {
    let _b = B(vec![n; 8]);
    let mut j = n;
    loop { j = j.wrapping_mul(5); if j == 1 { break; } }
    j
}
'''
recursing = '''
struct B(u64);
fn depth(k: u64) -> u64 { if k == 0 { 0 } else { 1 + depth(k - 1) } }
impl Drop for B {
    fn drop(&mut self) { self.0 = depth(self.0); }
}
fn deep(n: u64) -> u64 { let _c = B(3); 1 + deep(n + 1) }
fn run(n: u64) -> u64 { deep(n) }
'''
rt = sb.Runtime("fn run(n: u64) -> u64 { n }", timeout=0.2)
for code in (looping, recursing):
    try:
        rt.revision(rt.register(code)).fns.run(3)
        print("returned")
    except sb.SymbiontError as exc:
        print(type(exc).__name__)
"""
    )
    assert out.split() == ["TimeoutError", "PanicError"], out
