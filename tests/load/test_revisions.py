"""Revisions: registration, rollback, pinned handles, hot swap under threads, unloading."""

from __future__ import annotations

import threading
import types

import numpy as np
import pytest

import symbiont as sb
from symbiont._load import loaded_count, reap

DECL = """
/// Add a constant.
fn add(x: u64) -> u64 { x + 1 }
"""


def variant(k: int) -> str:
    return f"fn add(x: u64) -> u64 {{ x + {k} }}\n"


def test_revision_zero_is_active_and_callable() -> None:
    rt = sb.Runtime(DECL)
    assert rt.active_revision == 0
    assert rt.fns.add(41) == 42
    assert "x + 1" in rt.code(0)
    assert rt.signatures == {"add": "fn add(x: u64) -> u64"}
    assert [r.number for r in rt.revisions] == [0]


def test_rollback_and_handles_stay_on_their_revision() -> None:
    rt = sb.Runtime(DECL)
    add = rt.fns.add
    r5 = rt.register(variant(5))
    r9 = rt.register(variant(9), activate=True)
    assert (r5, r9) == (1, 2)
    assert rt.fns.add is add  # identity never changes
    assert add(0) == 9
    pinned5 = rt.revision(r5).fns.add
    pinned0 = rt.revision(0).fns.add
    rt.activate(0)
    assert add(0) == 1
    assert (pinned5(0), pinned0(0)) == (5, 1)
    rt.activate(r5)
    assert add(0) == 5
    rt.activate(r9)
    assert (add(0), pinned5(0), pinned0(0)) == (9, 5, 1)
    assert rt.revision(r9).code == variant(9)
    assert type(pinned5) is types.BuiltinFunctionType
    with pytest.raises(sb.RevisionError, match="no revision 7; registered: 0, 1, 2"):
        rt.activate(7)
    with pytest.raises(sb.RevisionError):
        rt.revision(-1)


def test_identical_code_reuses_the_revision() -> None:
    rt = sb.Runtime(DECL)
    a = rt.register(variant(3))
    b = rt.register("// same code, other layout\nfn add(x: u64)->u64{x+3}")
    assert a == b
    assert len(rt.revisions) == 2


def test_register_rejects_bad_code_with_the_failure() -> None:
    rt = sb.Runtime(DECL)
    with pytest.raises(sb.CandidateError) as info:
        rt.register('fn add(x: u64) -> u64 { x + "1" }')
    assert info.value.failure.kind == "compile_error"
    assert "candidate.rs:1" in info.value.failure.feedback
    with pytest.raises(sb.CandidateError) as info2:
        rt.register("fn add(x: i64) -> u64 { 1 }")
    assert info2.value.failure.kind == "signature_mismatch"
    assert rt.fns.add(1) == 2  # nothing changed


def test_concurrent_callers_during_200_activations() -> None:
    rt = sb.Runtime(DECL)
    numbers = [rt.register(variant(k)) for k in range(2, 6)]
    expected = {rt.revision(n).fns.add(0) for n in [0, *numbers]}
    add = rt.fns.add
    bad: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    counts = [0] * 4

    def caller(i: int) -> None:
        try:
            while not stop.is_set():
                r = add(1000)
                if r - 1000 not in expected:
                    bad.append(r)
                counts[i] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    cycle = [0, *numbers]
    for i in range(200):
        rt.activate(cycle[i % len(cycle)])
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert bad == []
    assert all(c > 0 for c in counts)


def test_unused_libraries_are_unloaded_and_handles_keep_theirs_alive() -> None:
    reap()
    rt = sb.Runtime(DECL)
    n = rt.register(variant(77))
    handle = rt.revision(n).fns.add
    before = loaded_count()
    del rt
    import gc

    gc.collect()
    reap()
    # The handle still holds revision n's library: it must keep working.
    assert handle(1) == 78
    after_handle = loaded_count()
    assert after_handle < before
    del handle
    gc.collect()
    reap()
    assert loaded_count() < after_handle


def test_helper_named_qsort_does_not_hijack_libc() -> None:
    rt = sb.Runtime("fn sort(xs: &mut [f64]) { xs.sort_by(|a, b| a.total_cmp(b)); }")
    rt.register(
        """
fn qsort(xs: &mut [f64]) {
    // A deliberately different "qsort": if libc's callers bound to it, they would break.
    xs.reverse();
}
fn random() -> u32 { 4 }
fn malloc(n: usize) -> usize { n }
fn sort(xs: &mut [f64]) {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    xs.copy_from_slice(&v);
    if xs.len() > usize::MAX - 1 { qsort(xs); let _ = random() + malloc(1) as u32; }
}
""",
        activate=True,
    )
    data = np.random.default_rng(1).random(10_000)
    rt.fns.sort(data)
    assert np.all(np.diff(data) >= 0)
    # numpy's sort and Python's sorted go through libc/qsort-like paths in this process.
    assert sorted([3, 1, 2]) == [1, 2, 3]
    assert np.sort(np.array([3.0, 1.0, 2.0])).tolist() == [1.0, 2.0, 3.0]
    import ctypes

    libc = ctypes.CDLL(None)
    arr = (ctypes.c_int * 5)(5, 3, 4, 1, 2)
    cmp_t = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)
    )
    libc.qsort(arr, 5, ctypes.sizeof(ctypes.c_int), cmp_t(lambda a, b: a[0] - b[0]))
    assert list(arr) == [1, 2, 3, 4, 5]


def test_panic_error_carries_message_location_and_revision() -> None:
    rt = sb.Runtime(DECL)
    n = rt.register(
        'fn helper(x: u64) -> u64 {\n    if x == 3 { panic!("three is not allowed"); }\n    x\n}\n'
        "fn add(x: u64) -> u64 {\n    let v = [1u64, 2];\n    helper(x) + v[x as usize]\n}\n",
        activate=True,
    )
    with pytest.raises(sb.PanicError) as info:
        rt.fns.add(3)
    e = info.value
    assert (e.message, e.file, e.line, e.revision, e.function) == (
        "three is not allowed",
        "candidate.rs",
        2,
        n,
        "add",
    )
    with pytest.raises(sb.PanicError) as info:
        rt.fns.add(7)
    assert "index out of bounds" in info.value.message
    assert info.value.line == 7
    assert rt.fns.add(1) == 3  # the process is intact and the revision still works


def test_past_max_loaded_least_recently_used_revisions_are_dropped_and_come_back() -> None:
    import gc

    rt = sb.Runtime(DECL, max_loaded=3)
    numbers = [rt.register(variant(k)) for k in range(10, 16)]
    loaded = rt._table.loaded()
    assert len(loaded) <= 3 and 0 in loaded  # revision 0 is active: never dropped
    keep = rt.revision(numbers[0]).fns.add  # reloads a dropped revision
    assert keep(0) == 10
    gc.collect()
    before = loaded_count()
    for k in range(16, 22):
        rt.register(variant(k))
    gc.collect()
    reap()
    assert loaded_count() <= before + 3
    assert keep(1) == 11  # a handle keeps its library mapped whatever the table dropped
    rt.activate(numbers[2])
    assert rt.fns.add(0) == 12
    assert rt.unload(numbers[2]) is False  # the active one stays
    assert rt.unload(numbers[3]) is True
    assert rt.revision(numbers[3]).fns.add(0) == 13


def test_evicted_library_file_is_rebuilt_from_the_code() -> None:
    rt = sb.Runtime(DECL, max_loaded=1)
    n = rt.register(variant(33))
    rev = rt.revisions[n]
    assert rt.unload(n)
    reap()
    rev.library.unlink()
    assert rt.revision(n).fns.add(0) == 33


def test_repr_of_a_revision_does_not_print_its_code() -> None:
    rt = sb.Runtime(DECL)
    rev = rt.revisions[0]
    text = repr(rev)
    assert "x + 1" not in text
    assert text.startswith("Revision(number=0, parent=None, lane=None, code=<")


_COLLECTED = """
import gc, symbiont as sb
from symbiont._load import loaded_count

def maps():
    return open("/proc/self/maps").read()

DECL = "fn add(x: u64) -> u64 { x + 1 }"
keep = sb.Runtime(DECL)        # another runtime, alive throughout
before = loaded_count()
rt = sb.Runtime(DECL + "\\nfn other(x: u64) -> u64 { x }")
for k in (2, 3):
    rt.register("fn add(x: u64) -> u64 {{ x + {} }}\\nfn other(x: u64) -> u64 {{ x }}".format(k),
                activate=True)
paths = [str(r.library) for r in rt.revisions]
held = sb.Runtime(DECL + "\\nfn third(x: u64) -> u64 { x }")
f = held.fns.add               # a dispatcher outlives its runtime
held_path = str(held.revisions[0].library)
assert all(p in maps() for p in paths + [held_path])
del rt, held
gc.collect()
# No safe point of any other runtime ran: the collection itself unloaded them.
print("unloaded", not any(p in maps() for p in paths))
print("held", held_path in maps(), f(1))
print("count", loaded_count() - before)
"""


def test_libraries_of_a_collected_runtime_are_unloaded() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _COLLECTED], capture_output=True, text=True,
                         timeout=300, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == ["unloaded True", "held True 2", "count 1"], out.stdout
