"""isolation="ray": checks run on the nodes of a real local Ray cluster (two nodes, one CPU
each), with the same records as isolation="process"."""

from __future__ import annotations

import pytest

import symbiont as sb
from symbiont.testing import ScriptedAgent

pytestmark = pytest.mark.ray

DECL = "fn run(n: u64) -> u64 { n }"


def burn(seconds: float) -> None:
    import time

    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


@pytest.fixture(scope="module")
def rt(cluster):  # type: ignore[no-untyped-def]
    runtime = sb.Runtime(DECL, isolation="ray", ray_address=cluster.address, check_timeout=3.0)
    yield runtime
    runtime.close()


def test_evaluations_of_a_batch_land_on_both_nodes(rt: sb.Runtime) -> None:
    def check(fns: sb.Functions) -> float:
        burn(1.0)
        return float(fns.run(10))

    replies = [f"```rust\nfn run(n: u64) -> u64 {{ n + {k} }}\n```" for k in range(1, 5)]
    agent = ScriptedAgent(replies)
    results = rt.evolve_batch(agent, ["Add."] * 4, check=check)
    assert all(isinstance(r, sb.EvolveInfo) for r in results)
    assert sorted(r.score for r in results) == [11.0, 12.0, 13.0, 14.0]
    nodes = {e.node for e in rt.evaluations if e.outcome == "ok"}
    assert len(nodes) == 2, rt.evaluations


PANICKY = 'fn run(n: u64) -> u64 {\n    if n == 1 { panic!("one is odd"); }\n    n\n}'
SPINNING = "fn run(n: u64) -> u64 {\n    let mut x = n;\n    loop { x = x.wrapping_mul(3); }\n}"
ABORTING = (
    "struct Bomb;\nimpl Drop for Bomb {\n"
    '    fn drop(&mut self) { panic!("again, while unwinding"); }\n}\n'
    'fn run(n: u64) -> u64 {\n    let _b = Bomb;\n    if n > 0 { panic!("first"); }\n    n\n}'
)


def test_panics_timeouts_and_crashes_are_records_and_the_lane_recovers(rt: sb.Runtime) -> None:
    def check(fns: sb.Functions) -> None:
        assert fns.run(1) == 2, "run(1) must be 2"

    agent = ScriptedAgent(
        [f"```rust\n{c}\n```" for c in (PANICKY, SPINNING, ABORTING)]
        + ["```rust\nfn run(n: u64) -> u64 { n + 1 }\n```"]
    )
    info = rt.evolve(agent, "Add one.", check=check, activate=False)
    failures = [a.failure for a in info.trace.attempts if a.failure]
    assert [f.kind for f in failures] == ["panic", "timeout", "crash"]
    assert failures[0].line == 2 and "one is odd" in failures[0].message
    assert failures[2].crash is not None and failures[2].crash.signal == "SIGABRT"
    assert "crashed the evaluation process" in agent.requests[3].messages[-1].content
    assert rt.revision(info.revision).fns.run(1) == 2
    # The crash ended a node worker, not a Ray worker: the next check ran at once.
    assert [e.outcome for e in rt.evaluations[-4:]] == ["panic", "timeout", "crash", "ok"]


def test_a_shared_input_travels_once_and_checks_read_it(rt: sb.Runtime) -> None:
    import numpy as np

    data = rt.share("data", np.arange(1_000_000, dtype=np.uint64))
    expected = int(np.arange(1_000_000, dtype=np.uint64).sum())

    def check(fns: sb.Functions) -> float:
        return float(int(data.value.sum()) == expected) + fns.run(0)

    for k in (7, 8, 9):
        rt.register(f"fn run(n: u64) -> u64 {{ n * {k} }}", check=check)
    scored = [e for e in rt.evaluations[-3:]]
    assert [e.score for e in scored] == [1.0, 1.0, 1.0]
    # Pickled, the handle is its name and key, not the 8 MB array.
    import cloudpickle

    assert len(cloudpickle.dumps(check)) < 10_000


def test_a_node_must_have_what_the_flags_assume() -> None:
    from symbiont._ray import assumed_features, describe_node, node_problems

    driver = describe_node()
    assumed = assumed_features("rustc", ("-C", "target-cpu=x86-64-v3"))
    assert "avx2" in assumed and "fma" in assumed
    old_cpu = {**driver, "cpu_flags": ["sse", "sse2", "fpu"], "node": "n2", "host": "old"}
    assert node_problems(driver, old_cpu, assumed) == [
        f"a CPU without {', '.join(f for f in assumed if f not in ('fxsr', 'xsave'))}, "
        "which the rustc flags let the compiler use"
    ]
    other_python = {**driver, "python": "cpython 3.12.1"}
    assert node_problems(driver, other_python, ()) == [
        f"python cpython 3.12.1 (the driver has {driver['python']})"
    ]
    assert node_problems(driver, driver, assumed) == []
    assert assumed_features("rustc", ()) == ()


def test_an_evaluation_richer_than_a_score_crosses_the_cluster(rt: sb.Runtime) -> None:
    from symbiont._evolve import run_sync
    from symbiont._failures import Failure
    from symbiont._isolation import Evaluation, Raised
    from symbiont._validate import Candidate, validate_code

    def evaluate(code: str, check: object) -> Evaluation | Failure | Raised:
        candidate = validate_code(code, rt.declarations, rt.policy)
        assert isinstance(candidate, Candidate)

        async def go() -> Evaluation | Failure | Raised:
            built = await rt._build(candidate.code, candidate.normalised)
            assert not isinstance(built, Failure)
            return await rt._isolated_check(check, built, candidate.code, returns="evaluation")  # type: ignore[arg-type]

        return run_sync(go())

    got = evaluate(
        "fn run(n: u64) -> u64 { n + 40 }",
        lambda fns: {"score": float(fns.run(2)), "ms": 1.5, "feedback": "good"},
    )
    assert isinstance(got, Evaluation)
    assert (got.score, dict(got.metrics), got.feedback) == (
        42.0,
        {"score": 42.0, "ms": 1.5},
        "good",
    )
    assert got.node in {e.node for e in rt.evaluations if e.node != "local"}
    raised = evaluate("fn run(n: u64) -> u64 { n + 41 }", lambda fns: 1 / 0)
    assert isinstance(raised, Raised) and raised.type == "ZeroDivisionError"
