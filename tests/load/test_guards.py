"""Deadlines and the depth guard: runaway candidates are stopped in-process, the host survives,
and the next call to a good revision works."""

from __future__ import annotations

import threading

import pytest

import symbiont as sb
from symbiont._codegen import ENTER, TICK, instrument
from symbiont._decl import SourceMap

DECL = """
fn run(n: u64) -> u64 { n }
"""

HOSTILE = {
    "loop": """
fn run(n: u64) -> u64 {
    let mut x = n;
    loop {
        x = x.wrapping_mul(3);
    }
}""",
    "while": """
fn run(n: u64) -> u64 {
    let mut x = n;
    while x != 1 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        if x == 0 { x = 2; }
    }
    x
}""",
    "busy_wait": """
fn run(n: u64) -> u64 {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(600) {}
    n
}""",
    "closure": """
fn run(n: u64) -> u64 {
    (0..).map(|i: u64| i.wrapping_mul(n)).filter(|&v| v == 1).count() as u64
}""",
}


@pytest.fixture(scope="module")
def rt() -> sb.Runtime:
    return sb.Runtime(DECL, timeout=0.3)


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_runaway_call_raises_timeout_error_and_the_host_goes_on(rt: sb.Runtime, kind: str) -> None:
    n = rt.register(HOSTILE[kind])
    fn = rt.revision(n).fns.run
    with pytest.raises(
        sb.TimeoutError, match=r"run \(revision \d+\) did not finish within its deadline of 0.3 s"
    ):
        fn(5)
    assert rt.fns.run(41) == 41  # revision 0 still works, on this thread
    with pytest.raises(TimeoutError):  # and it is a builtins.TimeoutError too
        fn(6)


def test_unbounded_recursion_is_a_panic_not_a_crash(rt: sb.Runtime) -> None:
    n = rt.register(
        "fn down(n: u64) -> u64 {\n    if n == u64::MAX { return 0; }\n    down(n + 1) + 1\n}\n"
        "fn run(n: u64) -> u64 {\n    down(n)\n}"
    )
    with pytest.raises(sb.PanicError, match="recursion too deep") as info:
        rt.revision(n, timeout=None).fns.run(0)
    assert info.value.file == "candidate.rs"
    assert info.value.line == 1
    assert rt.fns.run(3) == 3


def test_deep_but_bounded_recursion_still_works(rt: sb.Runtime) -> None:
    n = rt.register("fn run(n: u64) -> u64 {\n    if n == 0 { 0 } else { 1 + run(n - 1) }\n}")
    assert rt.revision(n).fns.run(10_000) == 10_000


def test_a_call_within_its_deadline_is_untouched(rt: sb.Runtime) -> None:
    n = rt.register("fn run(n: u64) -> u64 {\n    (0..n).fold(0u64, |a, b| a.wrapping_add(b))\n}")
    assert rt.revision(n).fns.run(1_000_000) == sum(range(1_000_000))


def test_deadline_per_runtime_per_handle_and_via_with_timeout() -> None:
    rt = sb.Runtime(DECL)  # no deadline by default
    n = rt.register(HOSTILE["loop"], activate=True)
    quick = rt.with_timeout(0.2)
    with pytest.raises(sb.TimeoutError, match=r"0\.2 s"):
        quick.run(1)
    with pytest.raises(sb.TimeoutError, match=r"0\.1 s"):
        rt.revision(n, timeout=0.1).fns.run(1)
    rt.activate(0)
    assert quick.run(7) == 7  # with_timeout dispatchers follow activations


def test_timeouts_in_several_threads_stop_only_their_own_call(rt: sb.Runtime) -> None:
    bad = rt.revision(rt.register(HOSTILE["loop"])).fns.run
    good = rt.revision(0).fns.run
    results: list[object] = []

    def worker(i: int) -> None:
        try:
            results.append(bad(i) if i % 2 else good(i))
        except sb.TimeoutError as exc:
            results.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r for r in results if isinstance(r, int)) == [0, 2, 4]
    assert sum(isinstance(r, sb.TimeoutError) for r in results) == 3


def test_check_timeout_turns_a_hanging_candidate_into_feedback() -> None:
    from symbiont.testing import ScriptedAgent

    rt = sb.Runtime(DECL, check_timeout=0.2)
    agent = ScriptedAgent(
        [f"```rust\n{HOSTILE['loop']}\n```", "```rust\nfn run(n: u64) -> u64 { n + 1 }\n```"]
    )
    info = rt.evolve(agent, "Add one.", check=lambda fns: fns.run(1) == 2)
    failure = info.trace.attempts[0].failure
    assert failure is not None and failure.kind == "timeout"
    assert "did not finish within its deadline" in agent.requests[1].messages[-1].content
    assert rt.fns.run(1) == 2


def test_guards_can_be_switched_off_for_trusted_code() -> None:
    rt = sb.Runtime(DECL, guards=False)
    n = rt.register(
        "fn run(n: u64) -> u64 {\n    let mut s = 0;\n    for i in 0..n { s += i; }\n    s\n}"
    )
    assert rt.revision(n).fns.run(10) == 45


def test_instrumentation_keeps_lines_and_maps_columns() -> None:
    code = (
        "fn f(n: u64) -> u64 { let mut s = 0; for i in 0..n { s += i; } s }\n"
        "fn g(n: u64) -> u64 { if n == 0 { 0 } else { g(n - 1) } }\n"
        "const K: usize = { let mut i = 0; while i < 3 { i += 1; } i };\n"
        "fn h(v: &[u64]) -> u64 { v.iter().map(|x| x * 2).sum() }\n"
    )
    out = instrument(code)
    assert out.code.count("\n") == code.count("\n")
    lines = out.code.splitlines()
    assert f"for i in 0..n {{{TICK} s += i; }}" in lines[0]
    assert ENTER not in lines[0]  # f does not recurse
    assert lines[1].startswith(f"fn g(n: u64) -> u64 {{{ENTER}")
    assert TICK not in lines[2]  # const context untouched
    assert f"map(|x| {{ {TICK} x * 2 }})" in lines[3]
    # A column after the inserted tick maps back to the written code.
    col = out.code.splitlines()[0].index("s += i") + 1
    back = SourceMap.with_insertions(code, out.insertions).written_position(1, col)
    assert back == (1, code.splitlines()[0].index("s += i") + 1)


def test_calls_through_values_get_the_depth_check_and_method_calls_do_not() -> None:
    # Recursion that names no function passes a call through a value; a method call is named.
    code = (
        "fn f(x: u64) -> u64 { x.wrapping_add(1).max(2) }\n"
        "fn g(v: &[u64]) -> u64 { v.iter().map(|x| x.max(&3)).sum() }\n"
        "fn apply(f: &dyn Fn(u64) -> u64, x: u64) -> u64 { f(x) }\n"
        "fn h(n: u64) -> u64 { let c = |r: &R, x: u64| (r.0)(r, x); n }\n"
    )
    lines = instrument(code).code.split("\n")
    assert ENTER not in lines[0] and TICK not in lines[0]
    assert ENTER not in lines[1] and TICK in lines[1]
    assert lines[2].count(ENTER) == 1
    assert lines[3].count(ENTER) == 1 and TICK not in lines[3]


def test_guard_placement_is_part_of_the_cache_key() -> None:
    from dataclasses import replace

    from symbiont._codegen import generate
    from symbiont._decl import evolvable

    crate = generate(evolvable("fn f(x: u64) -> u64 { x }"), "fn f(x: u64) -> u64 { x }")
    moved = replace(crate, insertions=((0, ENTER),))
    assert crate.digest("fn f") != moved.digest("fn f")
    assert crate.digest("fn f") == replace(crate, insertions=()).digest("fn f")
