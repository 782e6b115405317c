"""Isolated evaluation: what would kill the host in-process is a crash record here, the worker
is replaced, and the run goes on."""

from __future__ import annotations

import os
import signal
import time

import pytest

import symbiont as sb
from symbiont.testing import ScriptedAgent

DECL = "fn run(n: u64) -> u64 { n }"
GOOD = "```rust\nfn run(n: u64) -> u64 { n + 1 }\n```"

CRASHERS: dict[str, tuple[str, str | tuple[str, ...]]] = {
    "terabyte": (
        "fn run(n: u64) -> u64 {\n    let v = vec![7u8; 1 << 40];\n"
        "    v[(n as usize) % v.len()] as u64\n}",
        "SIGABRT",
    ),
    "double_panic": (
        "struct Bomb;\nimpl Drop for Bomb {\n"
        '    fn drop(&mut self) { panic!("again, while unwinding"); }\n}\n'
        'fn run(n: u64) -> u64 {\n    let _b = Bomb;\n    if n > 0 { panic!("first"); }\n    n\n}',
        "SIGABRT",
    ),
    "grow_until_out_of_memory": (
        # Reserving without touching keeps this fast: the address-space limit is what it hits.
        "fn run(n: u64) -> u64 {\n    let mut v: Vec<Vec<u8>> = Vec::new();\n"
        "    loop {\n        let mut chunk = Vec::with_capacity(256 << 20);\n"
        "        chunk.push(n as u8);\n        v.push(chunk);\n"
        "        if v.len() > 1_000_000 { return v.len() as u64; }\n    }\n}",
        "SIGABRT",
    ),
    # One frame bigger than the stack: it faults before any guard in the function can run.
    "huge_stack_frame": (
        "fn run(n: u64) -> u64 {\n    let big = [n as u8; 64 << 20];\n"
        "    std::hint::black_box(&big)[(n as usize) % big.len()] as u64\n}",
        "SIGSEGV",
    ),
}


def check(fns: sb.Functions) -> None:
    assert fns.run(1) == 2, "run(1) must be 2"


@pytest.fixture(scope="module")
def rt() -> sb.Runtime:
    runtime = sb.Runtime(DECL, isolation="process", worker_memory=2 << 30, check_timeout=3.0)
    yield runtime
    runtime.close()


@pytest.mark.parametrize("name", list(CRASHERS))
def test_a_crashing_candidate_is_a_crash_record_and_the_lane_recovers(
    rt: sb.Runtime, name: str
) -> None:
    code, sig = CRASHERS[name]
    agent = ScriptedAgent([f"```rust\n{code}\n```", GOOD])
    info = rt.evolve(agent, "Add one.", check=check, activate=False)
    failure = info.trace.attempts[0].failure
    assert failure is not None and failure.kind == "crash"
    assert isinstance(failure.crash, sb.CrashError)
    assert failure.crash.signal in ((sig,) if isinstance(sig, str) else sig)
    assert "crashed the evaluation process" in agent.requests[1].messages[-1].content
    assert rt.revision(info.revision).fns.run(1) == 2  # and the host is fine
    assert f'"signal": "{failure.crash.signal}"' in info.trace.to_jsonl()


def test_allocation_failure_reports_what_the_process_printed(rt: sb.Runtime) -> None:
    code, _ = CRASHERS["terabyte"]
    with pytest.raises(sb.CandidateError) as info:
        rt.register(code, check=check)
    crash = info.value.failure.crash
    assert crash.signal == "SIGABRT"
    assert "memory allocation" in crash.stderr


def test_segfault_and_exit_inside_the_check_are_records(rt: sb.Runtime) -> None:
    def segfault(fns: sb.Functions) -> None:
        os.kill(os.getpid(), signal.SIGSEGV)

    def leave(fns: sb.Functions) -> None:
        os._exit(3)

    with pytest.raises(sb.CandidateError) as seg:
        rt.register("fn run(n: u64) -> u64 { n * 2 }", check=segfault)
    assert seg.value.failure.crash.signal == "SIGSEGV"
    with pytest.raises(sb.CandidateError) as ex:
        rt.register("fn run(n: u64) -> u64 { n * 3 }", check=leave)
    assert ex.value.failure.crash.signal is None
    assert ex.value.failure.crash.exit_code == 3


def test_panic_and_timeout_stay_ordinary_failures_when_isolated(rt: sb.Runtime) -> None:
    panicky = 'fn run(n: u64) -> u64 {\n    if n == 1 { panic!("one is odd"); }\n    n\n}'
    spinning = "fn run(n: u64) -> u64 {\n    let mut x = n;\n    loop { x = x.wrapping_mul(3); }\n}"
    agent = ScriptedAgent([f"```rust\n{panicky}\n```", f"```rust\n{spinning}\n```", GOOD])
    info = rt.evolve(agent, "Add one.", check=check, activate=False)
    kinds = [a.failure.kind for a in info.trace.attempts if a.failure]
    assert kinds == ["panic", "timeout"]
    assert "one is odd" in agent.requests[1].messages[-1].content


def test_a_worker_that_does_not_answer_is_killed() -> None:
    runtime = sb.Runtime(DECL, isolation="process", isolation_timeout=1.0)
    try:

        def sleepy(fns: sb.Functions) -> None:
            time.sleep(30)

        started = time.monotonic()
        with pytest.raises(sb.CandidateError) as info:
            runtime.register("fn run(n: u64) -> u64 { n + 5 }", check=sleepy)
        crash = info.value.failure.crash
        assert crash.signal == "SIGKILL"
        assert "no answer within 1 s" in str(crash)
        assert time.monotonic() - started < 20  # killed, not waited for
        # A fresh worker takes the next check.
        assert runtime.register("fn run(n: u64) -> u64 { n + 1 }", check=check) == 1
    finally:
        runtime.close()


def test_unpicklable_check_is_a_config_error(rt: sb.Runtime) -> None:
    import threading

    lock = threading.Lock()

    def holds_a_lock(fns: sb.Functions) -> None:
        with lock:
            pass

    with pytest.raises(sb.ConfigError, match="cloudpickle"):
        rt.register("fn run(n: u64) -> u64 { n + 9 }", check=holds_a_lock)


def test_native_output_cannot_corrupt_the_worker_protocol(rt: sb.Runtime) -> None:
    chatty = (
        'fn run(n: u64) -> u64 {\n    println!("hello from the candidate {n}");\n'
        '    print!("\\x00\\x00\\x00\\x10garbage");\n    n + 1\n}'
    )
    assert rt.register(chatty, check=check) >= 1


def test_workers_do_not_see_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from symbiont._isolation import worker_environment

    monkeypatch.setenv("API_KEY", "sk-secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-secret")
    monkeypatch.setenv("BASE_URL", "http://example/v1")
    monkeypatch.setenv("SYMBIONT_CACHE_DIR", os.environ["SYMBIONT_CACHE_DIR"])
    env = worker_environment()
    assert "sk-secret" not in env.values() and "ghp-secret" not in env.values()
    assert "BASE_URL" not in env
    assert env["SYMBIONT_CACHE_DIR"] == os.environ["SYMBIONT_CACHE_DIR"]
    assert env["RUST_BACKTRACE"] == "0"
