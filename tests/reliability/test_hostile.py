"""Hostile candidates, in-process: every runnable one ends in a PanicError or a TimeoutError,
the host survives, and the next call to a good revision works; the ones that could kill the host
(`std::process::exit`, `unsafe`) are refused before anything is built. Through `rt.evolve` each
hostile reply becomes a failure record fed back to the LLM, and the lane recovers.

tests/load/test_guards.py covers the guards themselves (instrumentation, deadlines per handle and
thread, the plain recursion case); this suite is the catalogue of hostile shapes, through the
active dispatcher, the pinned handles, the vectorised calls and the evolve loop.

Left to the isolated (worker-process) suite, as only survivable out of process: a 1 TB
allocation (abort on allocation failure), a panic inside `Drop` during unwinding (abort), a stack
overflow from one huge frame (SIGSEGV).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import numpy as np
import pytest

import symbiont as sb
from symbiont._load import Functions
from symbiont.testing import ScriptedAgent

pytestmark = pytest.mark.timeout(60)

DEADLINE = 0.3
# A behaviour bound, not a timing assertion: a stopped call comes back within the deadline plus
# the watchdog's scan interval; anything near this bound means the call was not stopped.
RETURNS_WITHIN = 5.0

RUN = "/// A number in, a number out.\nfn run(n: u64) -> u64 { n }"
FILL = "/// Bump every element.\nfn fill(xs: &mut [u64]) { for x in xs.iter_mut() { *x += 1; } }"
RATIO = "fn ratio(a: i64, b: i64) -> i64 { a.checked_div(b).unwrap_or(0) }"
PICK = "fn pick(xs: &[u64], i: usize) -> u64 { xs.get(i).copied().unwrap_or(0) }"
GROW = "fn grow(x: u8) -> u8 { x.saturating_add(200) }"

MARK = "// <- here"


@dataclass(frozen=True)
class Case:
    """One hostile candidate for the single function of ``decl``.

    ``args`` builds fresh arguments that trigger the bad behaviour; ``good`` is an honest
    implementation and ``good_result`` what it returns for them, ``default_result`` what the
    declaration's default body (revision 0) returns for them. For panics,
    ``message`` is a regex the panic message must match and the line marked with ``MARK`` is
    where the panic must be reported.
    """

    id: str
    decl: str
    code: str
    args: Callable[[], tuple[Any, ...]]
    kind: Literal["panic", "timeout"]
    good: str
    good_result: Any
    default_result: Any
    message: str = ""
    profile: str = "release"
    map_args: Callable[[], tuple[Any, ...]] | None = field(default=None)

    def __post_init__(self) -> None:
        # Registered and sent to the LLM exactly alike, so line 1 is the first line of code.
        object.__setattr__(self, "code", self.code.strip("\n"))

    @property
    def name(self) -> str:
        return self.decl.split("fn ", 1)[1].split("(", 1)[0]

    @property
    def line(self) -> int:
        lines = self.code.splitlines()
        marked = [i for i, text in enumerate(lines, 1) if MARK in text]
        assert len(marked) == 1, f"{self.id}: mark exactly one line with {MARK!r}"
        return marked[0]


def u64s(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.uint64)


CASES = [
    Case(
        id="panic",
        decl=RUN,
        code=f"""
fn run(n: u64) -> u64 {{
    if n > 3 {{
        panic!("gave up at n = {{}}", n); {MARK}
    }}
    n
}}""",
        args=lambda: (5,),
        kind="panic",
        message=r"^gave up at n = 5$",
        good="fn run(n: u64) -> u64 { n * 2 }",
        good_result=10,
        default_result=5,
        map_args=lambda: (u64s(1, 2, 3, 4, 5),),
    ),
    Case(
        id="panic_any_payload",
        decl=RUN,
        code=f"""
fn run(n: u64) -> u64 {{
    if n > 3 {{
        std::panic::panic_any(n as u32); {MARK}
    }}
    n
}}""",
        args=lambda: (5,),
        kind="panic",
        message=r"Box<dyn Any>",  # a non-string payload still becomes a PanicError
        good="fn run(n: u64) -> u64 { n * 2 }",
        good_result=10,
        default_result=5,
    ),
    Case(
        id="unwrap_err",
        decl=RUN,
        code=f"""
fn run(n: u64) -> u64 {{
    let text = format!("{{}}x", n);
    text.parse::<u64>().unwrap() {MARK}
}}""",
        args=lambda: (5,),
        kind="panic",
        message=r"called `Result::unwrap\(\)` on an `Err` value: ParseIntError",
        good="fn run(n: u64) -> u64 { n * 2 }",
        good_result=10,
        default_result=5,
    ),
    Case(
        # `loop {}` whose writes land in the caller's buffer: nothing for the optimiser to drop.
        id="infinite_loop",
        decl=FILL,
        code="""
fn fill(xs: &mut [u64]) {
    let mut i = 0;
    loop {
        let j = i % xs.len();
        xs[j] = xs[j].wrapping_add(1);
        i += 1;
    }
}""",
        args=lambda: (np.zeros(4, dtype=np.uint64),),
        kind="timeout",
        good="fn fill(xs: &mut [u64]) { for x in xs.iter_mut() { *x += 2; } }",
        good_result=None,
        default_result=None,
    ),
    Case(
        id="infinite_while",
        decl=RUN,
        code="""
fn run(n: u64) -> u64 {
    let mut x = n | 1;
    let mut steps = 0u64;
    while x != 0 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1;
        steps = steps.wrapping_add(x >> 60);
    }
    steps
}""",
        args=lambda: (5,),
        kind="timeout",
        good="fn run(n: u64) -> u64 { n * 2 }",
        good_result=10,
        default_result=5,
        map_args=lambda: (u64s(1, 2, 3, 4),),
    ),
    Case(
        id="busy_ten_minutes",
        decl=RUN,
        code="""
use std::time::{Duration, Instant};

fn run(n: u64) -> u64 {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(600) {}
    n
}""",
        args=lambda: (5,),
        kind="timeout",
        good="fn run(n: u64) -> u64 { n * 2 }",
        good_result=10,
        default_result=5,
        map_args=lambda: (u64s(1, 2),),
    ),
    Case(
        # Mutual recursion, not in tail position (so it cannot become a loop): the depth guard
        # stops it at the entry of the function the stack runs out in.
        id="unbounded_recursion",
        decl=RUN,
        code=f"""fn ping(n: u64) -> u64 {{ {MARK}
    pong(n + 1) + 1
}}
fn pong(n: u64) -> u64 {{
    ping(n ^ 1).wrapping_mul(3)
}}
fn run(n: u64) -> u64 {{
    ping(n)
}}""",
        args=lambda: (5,),
        kind="panic",
        message=r"^recursion too deep",
        good="fn run(n: u64) -> u64 { n * 2 }",
        good_result=10,
        default_result=5,
        map_args=lambda: (u64s(1, 2, 3),),
    ),
    Case(
        id="division_by_zero",
        decl=RATIO,
        code=f"""
fn ratio(a: i64, b: i64) -> i64 {{
    a / b {MARK}
}}""",
        args=lambda: (7, 0),
        kind="panic",
        message=r"^attempt to divide by zero$",
        good="fn ratio(a: i64, b: i64) -> i64 { a.checked_div(b).unwrap_or(-1) }",
        good_result=-1,
        default_result=0,
        map_args=lambda: (np.arange(4, dtype=np.int64), np.zeros(4, dtype=np.int64)),
    ),
    Case(
        # The same code as above: i64::MIN / -1 panics in release builds too.
        id="division_overflow",
        decl=RATIO,
        code=f"""
fn ratio(a: i64, b: i64) -> i64 {{
    a / b {MARK}
}}""",
        args=lambda: (-(2**63), -1),
        kind="panic",
        message=r"^attempt to divide with overflow$",
        good="fn ratio(a: i64, b: i64) -> i64 { a.checked_div(b).unwrap_or(-1) }",
        good_result=-1,
        default_result=0,
    ),
    Case(
        id="index_out_of_bounds",
        decl=PICK,
        code=f"""
fn pick(xs: &[u64], i: usize) -> u64 {{
    xs[i] {MARK}
}}""",
        args=lambda: (u64s(1, 2, 3), 7),
        kind="panic",
        message=r"^index out of bounds: the len is 3 but the index is 7$",
        good="fn pick(xs: &[u64], i: usize) -> u64 { xs.get(i).copied().unwrap_or(99) }",
        good_result=99,
        default_result=0,
    ),
    Case(
        id="integer_overflow_debug",
        decl=GROW,
        profile="debug",
        code=f"""
fn grow(x: u8) -> u8 {{
    x + 200 {MARK}
}}""",
        args=lambda: (100,),
        kind="panic",
        message=r"^attempt to add with overflow$",
        good="fn grow(x: u8) -> u8 { x.wrapping_add(200) }",
        good_result=44,
        default_result=255,
        map_args=lambda: (np.array([1, 100], dtype=np.uint8),),
    ),
]

FORBIDDEN = {
    "process_exit": (
        "fn run(n: u64) -> u64 {\n    if n == 0 {\n        std::process::exit(3);\n    }\n    n\n}",
        "std::process::exit",
        3,
    ),
    "process_abort_via_glob": (
        "use std::process::*;\nfn run(n: u64) -> u64 {\n    abort()\n}",
        "std::process",
        1,
    ),
    "unsafe_null_deref": (
        "fn run(n: u64) -> u64 {\n    unsafe { *(n as *const u64) }\n}",
        "unsafe",
        2,
    ),
    "unsafe_fn": (
        "unsafe fn peek(p: *const u64) -> u64 { *p }\nfn run(n: u64) -> u64 {\n    n\n}",
        "unsafe fn",
        1,
    ),
    "extern_libc_exit": (
        'extern "C" { fn exit(code: i32) -> !; }\nfn run(n: u64) -> u64 { n }',
        "extern",
        1,
    ),
}


def fenced(code: str) -> str:
    return f"Here it is.\n```rust\n{code}\n```\n"


RuntimeFor = Callable[[str, str], sb.Runtime]


@pytest.fixture(scope="module")
def runtime_for() -> RuntimeFor:
    """One runtime per declaration and profile, shared by the cases, reset to revision 0."""
    runtimes: dict[tuple[str, str], sb.Runtime] = {}

    def get(decl: str, profile: str) -> sb.Runtime:
        if (decl, profile) not in runtimes:
            runtimes[decl, profile] = sb.Runtime(
                decl,
                profile=profile,
                timeout=DEADLINE,
                check_timeout=DEADLINE,
                backoff=(0.01, 0.1),
            )
        rt = runtimes[decl, profile]
        rt.activate(0)
        return rt

    return get


def expect_failure(case: Case, call: Callable[[], Any], revision: int) -> BaseException:
    """Calls ``call``, which must fail the way ``case`` says, and promptly."""
    started = time.monotonic()
    with pytest.raises((sb.PanicError, sb.TimeoutError)) as caught:
        call()
    elapsed = time.monotonic() - started
    assert elapsed < RETURNS_WITHIN, f"{case.id}: the call came back only after {elapsed:.1f} s"
    exc = caught.value
    if case.kind == "panic":
        assert isinstance(exc, sb.PanicError), f"{case.id}: expected a panic, got {exc!r}"
        assert exc.revision == revision
        assert exc.function == case.name
        return exc
    assert isinstance(exc, sb.TimeoutError), f"{case.id}: expected a timeout, got {exc!r}"
    assert f"did not finish within its deadline of {DEADLINE:g} s" in str(exc)
    assert f"(revision {revision})" in str(exc)
    return exc


def good_calls_work(rt: sb.Runtime, case: Case) -> None:
    """Revision 0 (the declaration's default body, which handles every hostile input) answers
    through a pinned handle and, once active again, through the dispatcher."""
    assert rt.revision(0).fns[case.name](*case.args()) == case.default_result
    rt.activate(0)
    assert rt.fns[case.name](*case.args()) == case.default_result


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_call_fails_cleanly_and_the_host_goes_on(
    runtime_for: RuntimeFor, case: Case
) -> None:
    rt = runtime_for(case.decl, case.profile)
    n = rt.register(case.code, activate=True)
    assert rt.active_revision == n
    dispatcher = rt.fns[case.name]

    # Through the stable dispatcher (the active revision) ...
    exc = expect_failure(case, lambda: dispatcher(*case.args()), n)
    if isinstance(exc, sb.PanicError):
        assert exc.file == "candidate.rs", f"panic located in {exc.file!r}, not the candidate"
        assert exc.line == case.line
        assert exc.column is not None and exc.column >= 1
        assert case.message and re.search(case.message, exc.message), exc.message
    # ... again on the same thread (nothing left armed or flagged) ...
    expect_failure(case, lambda: dispatcher(*case.args()), n)
    # ... and through a handle pinned to the hostile revision.
    expect_failure(case, lambda: rt.revision(n).fns[case.name](*case.args()), n)
    good_calls_work(rt, case)


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.map_args], ids=[c.id for c in CASES if c.map_args]
)
def test_hostile_vectorised_call_fails_cleanly_on_every_worker(
    runtime_for: RuntimeFor, case: Case
) -> None:
    rt = runtime_for(case.decl, case.profile)
    n = rt.register(case.code)
    map_args = case.map_args
    assert map_args is not None
    vectorised = getattr(rt.revision(n).map, case.name)

    def call(threads: int) -> Any:
        return vectorised(*map_args(), threads=threads)

    for threads in (1, 2):
        exc = expect_failure(case, partial(call, threads), n)
        if isinstance(exc, sb.PanicError):
            assert exc.file == "candidate.rs" and exc.line == case.line
    # Revision 0's vectorised form agrees with its scalar calls, element by element.
    inputs = map_args()
    good = getattr(rt.revision(0).map, case.name)(*inputs, threads=2)
    scalar = rt.revision(0).fns[case.name]
    assert good.tolist() == [scalar(*(int(v) for v in row)) for row in zip(*inputs, strict=True)]


def test_the_infinite_loop_really_ran_until_stopped(runtime_for: RuntimeFor) -> None:
    """The loop's side effect is visible in the caller's buffer: it was not optimised away,
    and it was stopped in the middle of its work."""
    case = next(c for c in CASES if c.id == "infinite_loop")
    rt = runtime_for(case.decl, case.profile)
    n = rt.register(case.code)
    xs = np.zeros(4, dtype=np.uint64)
    with pytest.raises(sb.TimeoutError):
        rt.revision(n).fns.fill(xs)
    assert int(xs.sum()) > 1000, f"the loop barely ran: {xs}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_evolve_turns_the_hostile_reply_into_a_failure_record_and_recovers(
    runtime_for: RuntimeFor, case: Case
) -> None:
    rt = runtime_for(case.decl, case.profile)
    agent = ScriptedAgent([fenced(case.code), fenced(case.good)])
    before = len(rt.revisions)

    def check(fns: Functions) -> None:
        assert fns[case.name](*case.args()) == case.good_result

    info = rt.evolve(agent, "Make it robust.", check=check)

    assert info.attempts == 2
    first, second = info.trace.attempts
    assert first.failure is not None
    assert first.failure.kind == case.kind
    assert first.decision == "retry" and first.revision is None
    assert first.timings.check < RETURNS_WITHIN
    correction = agent.requests[1].messages[-1].content
    assert correction.startswith("Attempt 1 of 10 failed.")
    if case.kind == "panic":
        assert first.failure.line == case.line
        assert f"panicked at line {case.line}" in correction
        assert re.search(case.message.strip("^$"), correction)
    else:
        assert f"did not finish within its deadline of {DEADLINE:g} s" in correction
    assert second.decision == "registered" and second.revision == info.revision
    # The hostile candidate did not become a revision; the good one is active and answers.
    assert len(rt.revisions) == before + int(info.new)
    assert rt.active_revision == info.revision
    assert rt.fns[case.name](*case.args()) == case.good_result
    assert rt.revision(0).fns[case.name](*case.args()) == case.default_result


@pytest.mark.parametrize("name", list(FORBIDDEN))
def test_process_killers_are_refused_before_anything_is_built(
    runtime_for: RuntimeFor, name: str
) -> None:
    rt = runtime_for(RUN, "release")
    code, construct, line = FORBIDDEN[name]
    before = len(rt.revisions)
    with pytest.raises(sb.CandidateError) as caught:
        rt.register(code, activate=True)
    failure = caught.value.failure
    assert failure.kind == "forbidden"
    assert construct in failure.feedback
    assert failure.line == line
    assert len(rt.revisions) == before, "a refused candidate must not become a revision"
    assert rt.fns.run(3) == 3  # and the active revision is untouched


def test_evolve_feeds_a_forbidden_reply_back_without_building_it(runtime_for: RuntimeFor) -> None:
    rt = runtime_for(RUN, "release")
    agent = ScriptedAgent(
        [fenced(FORBIDDEN["process_exit"][0]), fenced("fn run(n: u64) -> u64 { n + 7 }")]
    )
    info = rt.evolve(agent, "Add seven.")
    first = info.trace.attempts[0]
    assert first.failure is not None and first.failure.kind == "forbidden"
    assert first.timings.build == 0.0, "a forbidden candidate must not reach rustc"
    assert "std::process::exit" in agent.requests[1].messages[-1].content
    assert rt.fns.run(1) == 8


def test_panic_line_follows_the_layout_of_the_code_that_was_sent(runtime_for: RuntimeFor) -> None:
    rt = runtime_for(RUN, "release")
    spaced = 'fn run(n: u64) -> u64 {\n\n\n\n    if n > 3 { panic!("layout probe") }\n    n\n}'
    compact = 'fn run(n: u64) -> u64 {\n    if n > 3 { panic!("layout probe") }\n    n\n}'
    rt.register(spaced)  # the same tokens, the panic on line 5
    agent = ScriptedAgent([fenced(compact), fenced("fn run(n: u64) -> u64 { n + 11 }")])
    info = rt.evolve(agent, "Do not panic.", check=lambda fns: fns.run(5))
    failure = info.trace.attempts[0].failure
    assert failure is not None and failure.kind == "panic"
    assert "panicked at line 2," in failure.feedback, failure.feedback
    assert failure.line == 2


# Recursion the name-based call graph cannot see: `self + o` calls `add`, dropping a value calls
# `drop`, `S[i]` calls `index`, without naming them. Methods of trait implementations get the
# entry guard for this reason. Run in a child process so a regression cannot take the test
# session with it.
ADD_RECURSION = """
use std::ops::Add;
#[derive(Clone, Copy)]
struct W(u64);
impl Add for W {
    type Output = W;
    fn add(self, o: W) -> W {
        self + o
    }
}
fn run(n: u64) -> u64 {
    (W(n) + W(1)).0
}"""
IMPLICIT_RECURSION = {
    "operator_add_release": (
        "release",
        ADD_RECURSION,
    ),
    "operator_add_debug": (
        "debug",
        ADD_RECURSION,
    ),
    "drop_debug": (
        "debug",
        """
struct D(u64);
impl Drop for D {
    fn drop(&mut self) {
        let _inner = D(self.0 + 1);
    }
}
fn run(n: u64) -> u64 {
    let d = D(n);
    d.0
}""",
    ),
    "index_release": (
        "release",
        """
use std::ops::Index;
struct S(u64);
impl Index<u64> for S {
    type Output = u64;
    fn index(&self, i: u64) -> &u64 {
        &self[i + 1]
    }
}
fn run(n: u64) -> u64 {
    S(n)[0]
}""",
    ),
}

_CHILD = textwrap.dedent(
    """
    import sys
    import symbiont as sb
    profile, code = sys.argv[1], sys.stdin.read()
    rt = sb.Runtime("fn run(n: u64) -> u64 { n }", profile=profile, timeout=0.3)
    n = rt.register(code)
    try:
        rt.revision(n).fns.run(5)
        print("returned")
    except (sb.PanicError, sb.TimeoutError) as exc:
        print(type(exc).__name__)
    print("host ok:", rt.revision(0).fns.run(4) == 4)
    """
)


@pytest.mark.parametrize("name", list(IMPLICIT_RECURSION))
def test_recursion_through_implicit_calls_is_stopped(name: str) -> None:
    profile, code = IMPLICIT_RECURSION[name]
    try:
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, profile],
            input=code,
            check=False,
            capture_output=True,
            text=True,
            timeout=15,
            env=os.environ.copy(),
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the call never returned: it ran past its 0.3 s deadline for 15 s")
    assert child.returncode == 0, f"the host died (exit {child.returncode}): {child.stderr[-500:]}"
    assert child.stdout.split()[:1] in (["PanicError"], ["TimeoutError"]), child.stdout
    assert "host ok: True" in child.stdout
