"""The isolation seam as the search layer uses it: an evaluation richer than a score
(metrics, feedback), an evaluator's own error handed back, shared inputs; with local worker
processes (the Ray engine runs the same in tests/ray)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

import symbiont as sb
from symbiont._evolve import run_sync
from symbiont._failures import Failure
from symbiont._isolation import Evaluation, Raised
from symbiont._validate import Candidate, validate_code

DECL = "fn run(n: u64) -> u64 { n }"


@dataclass
class Score:  # the shape of the search layer's Score: value, metrics, feedback
    value: float
    metrics: dict[str, float] = field(default_factory=dict)
    feedback: str | None = None


def evaluate(rt: sb.Runtime, code: str, check: Any) -> Evaluation | Failure | Raised:
    candidate = validate_code(code, rt.declarations, rt.policy)
    assert isinstance(candidate, Candidate)

    async def go() -> Evaluation | Failure | Raised:
        built = await rt._build(candidate.code, candidate.normalised)
        assert not isinstance(built, Failure)
        return await rt._isolated_check(check, built, candidate.code, returns="evaluation")

    return run_sync(go())


@pytest.fixture(scope="module")
def rt() -> sb.Runtime:
    runtime = sb.Runtime(DECL, isolation="process", worker_memory=2 << 30)
    yield runtime
    runtime.close()


def test_an_evaluation_returns_metrics_and_feedback(rt: sb.Runtime) -> None:
    got = evaluate(rt, "fn run(n: u64) -> u64 { n + 2 }", lambda fns: {
        "score": float(fns.run(1)), "speed": 2.5, "feedback": "fast enough",
    })  # fmt: skip
    assert isinstance(got, Evaluation)
    assert got.score == 3.0 and got.metrics == {"score": 3.0, "speed": 2.5}
    assert got.feedback == "fast enough" and got.node == "local" and got.worker > 0

    got = evaluate(rt, "fn run(n: u64) -> u64 { n + 3 }", lambda fns: Score(
        value=float(fns.run(0)), metrics={"size": 7.0}, feedback="ok",
    ))  # fmt: skip
    assert isinstance(got, Evaluation)
    assert (got.score, dict(got.metrics), got.feedback) == (3.0, {"size": 7.0}, "ok")


def test_an_evaluators_own_error_is_handed_back_and_a_panic_is_a_failure(rt: sb.Runtime) -> None:
    def buggy(fns: sb.Functions) -> float:
        return {}["missing"]  # type: ignore[no-any-return]

    got = evaluate(rt, "fn run(n: u64) -> u64 { n + 4 }", buggy)
    assert isinstance(got, Raised)
    assert got.type == "KeyError" and "buggy" in got.traceback

    class Reject(Exception):
        def __init__(self, feedback: str) -> None:
            super().__init__(feedback)
            self.feedback = feedback

    def rejecting(fns: sb.Functions) -> float:
        raise Reject("too slow on large inputs")

    got = evaluate(rt, "fn run(n: u64) -> u64 { n + 5 }", rejecting)
    assert isinstance(got, Failure) and got.kind == "check_failed"
    assert got.message == "too slow on large inputs"

    panicky = 'fn run(n: u64) -> u64 {\n    if n == 1 { panic!("one"); }\n    n\n}'
    got = evaluate(rt, panicky, lambda fns: float(fns.run(1)))
    assert isinstance(got, Failure) and got.kind == "panic" and got.line == 2


def test_a_shared_input_reaches_each_worker_once(rt: sb.Runtime) -> None:
    big = bytes(range(256)) * 40_000  # 10 MB
    handle = rt.share("blob", big)

    def check(fns: sb.Functions) -> float:
        return float(len(handle.value)) + fns.run(0)

    import cloudpickle

    assert len(cloudpickle.dumps(check)) < 10_000  # the handle, not the value
    assert rt.register("fn run(n: u64) -> u64 { n * 11 }", check=check) > 0
    assert rt.evaluations[-1].score == float(len(big))
    # In-process too: the same handle reads the same value.
    assert handle.value is big
    with pytest.raises(sb.ConfigError, match="non-empty name"):
        rt.share("", 1)
