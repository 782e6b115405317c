"""rt.search with isolation="process": every evaluation runs in a worker process, with the same
rules as in process (rejections, failures, evaluator bugs, repeats, the deadline) and the node
and worker of each evaluation in the store."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from search_helpers import DECL, by_prompt, code, round_of

import symbiont as sb
from symbiont.testing import ScriptedAgent

# A panic while unwinding from a panic: Rust aborts the process (SIGABRT).
ABORTS = (
    "```rust\nstruct Bomb;\nimpl Drop for Bomb {\n"
    '    fn drop(&mut self) { panic!("again, while unwinding"); }\n}\n'
    'fn value() -> u32 {\n    let _b = Bomb;\n    panic!("first");\n}\n```'
)
PANICS = "```rust\nfn value() -> u32 { let v: Vec<u32> = Vec::new(); v[3] }\n```"


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db)
    try:
        return list(con.execute(sql))
    finally:
        con.close()


@pytest.fixture
def rt() -> Iterator[sb.Runtime]:
    runtime = sb.Runtime(DECL, profile="debug", isolation="process", check_timeout=3.0)
    yield runtime
    runtime.close()


def test_scores_metrics_and_feedback_come_back_from_the_workers(rt: sb.Runtime, db: Path) -> None:
    host = os.getpid()

    def evaluate(fns: sb.Functions) -> sb.Score:
        v = fns.value()
        # The worker's pid travels as a metric: the evaluation did not run in the host.
        return sb.Score(float(v), metrics={"pid": float(os.getpid())}, feedback=f"value {v}")

    agent = by_prompt(lambda p: code(round_of(p) + 1))
    run = rt.search(
        agent, "Grow.", evaluate=evaluate, budget=sb.Budget(rounds=2), store=db, name="iso"
    )
    assert run.best is not None and run.best.score == 3.0 and rt.fns.value() == 3
    assert run.best.metrics["pid"] != host
    assert "value 2" in agent.requests[1].messages[1].content, "feedback reached the prompt"
    found = rows(db, "SELECT revision, outcome, node, worker FROM evaluations ORDER BY id")
    assert [(r[0], r[1], r[2]) for r in found] == [
        (0, "scored", "local"),
        (1, "scored", "local"),
        (2, "scored", "local"),
    ]
    workers = {r[3] for r in found}
    assert host not in workers and all(isinstance(w, int) and w > 0 for w in workers)
    assert {e.node for e in rt.evaluations} == {"local"}


def test_an_aborting_candidate_is_a_crash_record_and_the_run_goes_on(
    rt: sb.Runtime, db: Path
) -> None:
    def evaluate(fns: sb.Functions) -> float:
        return float(fns.value())

    agent = ScriptedAgent([ABORTS, PANICS, code(6)])
    run = rt.search(agent, "Pick.", evaluate=evaluate, budget=sb.Budget(rounds=1), store=db)
    assert [h.failure_kind for h in run.history] == ["crash", "panic", None]
    assert "SIGABRT" in agent.requests[1].messages[-1].content
    assert "index out of bounds" in agent.requests[2].messages[-1].content
    assert run.best is not None and run.best.score == 6.0
    outcomes = rows(db, "SELECT outcome FROM evaluations WHERE round = 1 ORDER BY id")
    assert outcomes == [("crash",), ("panic",), ("scored",)]
    assert rt.fns.value() == 6, "the host survived the abort"


def test_rejections_and_the_evaluation_deadline_hold_in_workers(rt: sb.Runtime, db: Path) -> None:
    def evaluate(fns: sb.Functions) -> float:
        v = fns.value()
        if v == 7:
            raise sb.Reject("seven is unlucky")
        assert v != 8, "eight is not allowed"
        try:
            while v == 4:  # a Python-side loop only the evaluation deadline stops
                pass
        except Exception:  # a broad handler must not swallow the deadline
            pass
        return float(v)

    agent = ScriptedAgent([code(7), code(8), code(4), code(9)])
    run = rt.search(
        agent,
        "Pick.",
        evaluate=evaluate,
        budget=sb.Budget(rounds=1),
        store=db,
        evaluate_timeout=0.5,
        attempts_per_lane=4,
    )
    kinds = [h.failure_kind for h in run.history]
    assert kinds == ["check_failed", "check_failed", "timeout", None]
    assert "seven is unlucky" in agent.requests[1].messages[-1].content
    assert "eight is not allowed" in agent.requests[2].messages[-1].content
    assert "evaluate_timeout" in agent.requests[3].messages[-1].content
    assert run.best is not None and run.best.score == 9.0
    outcomes = rows(db, "SELECT outcome FROM evaluations WHERE round = 1 ORDER BY id")
    assert outcomes == [("rejected",), ("rejected",), ("timeout",), ("scored",)]


def test_an_evaluator_bug_in_a_worker_stops_the_run_with_its_traceback(
    rt: sb.Runtime, db: Path
) -> None:
    def evaluate(fns: sb.Functions) -> float:
        if fns.value() == 5:
            return undefined_name  # type: ignore[name-defined]  # noqa: F821
        return 1.0

    agent = ScriptedAgent([code(5), code(6)])
    with pytest.raises(NameError, match="undefined_name") as caught:
        rt.search(agent, "Pick.", evaluate=evaluate, store=db, name="bug")
    assert len(agent.requests) == 1, "the model is not asked again for the evaluator's bug"
    # The user's traceback, as the worker saw it, is the cause.
    cause = str(caught.value.__cause__)
    assert "in evaluate" in cause and "undefined_name" in cause
    assert rows(db, "SELECT status, stop_reason FROM runs") == [
        ("failed", "evaluator raised NameError")
    ]
    assert rows(db, "SELECT outcome FROM evaluations WHERE round = 1") == [("error",)]


def test_evaluator_errors_feedback_in_a_worker(rt: sb.Runtime, db: Path) -> None:
    def evaluate(fns: sb.Functions) -> float:
        if fns.value() == 5:
            raise KeyError("missing-key")
        return float(fns.value())

    agent = ScriptedAgent([code(5), code(6)])
    run = rt.search(
        agent,
        "Pick.",
        evaluate=evaluate,
        budget=sb.Budget(rounds=1),
        store=db,
        evaluator_errors="feedback",
    )
    assert run.best is not None and run.best.score == 6.0
    assert "KeyError: 'missing-key'" in agent.requests[1].messages[-1].content


def test_repeats_and_the_confirmation_run_in_workers(
    rt: sb.Runtime, db: Path, tmp_path: Path
) -> None:
    counter = tmp_path / "count"

    def evaluate(fns: sb.Functions) -> dict[str, float]:
        import fcntl

        # Concurrent repeats in several workers: the n-th evaluation overall gets noise[n].
        with open(counter, "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            n = f.seek(0, os.SEEK_END)
            f.write(b".")
        noise = [0.0, 5.0, 1.0][n] if n < 3 else 0.0
        return {"score": fns.value() + noise, "size": 2.0}

    agent = ScriptedAgent([code(2)])
    run = rt.search(
        agent, "Grow.", evaluate=evaluate, budget=sb.Budget(rounds=1), store=db, repeats=3
    )
    # The seed (value 1) measured 1+0, 1+5, 1+1 in some order: median 2, spread 5.
    assert rows(db, "SELECT score, spread FROM revisions WHERE number = 0") == [(2.0, 5.0)]
    (metrics,) = rows(db, "SELECT metrics FROM revisions WHERE number = 0")[0]
    assert json.loads(str(metrics)) == {"score": 2.0, "size": 2.0}
    assert run.best is not None and run.best.confirmed and run.best.revision == 1
    assert run.best.score == 2.0 and run.best.spread == 0.0
    per = rows(db, "SELECT purpose, count(*) FROM evaluations GROUP BY purpose ORDER BY purpose")
    assert per == [("candidate", 6), ("confirm", 12)]
    assert rows(db, "SELECT count(*) FROM evaluations WHERE worker IS NULL") == [(0,)]


def test_a_shared_input_reaches_the_evaluator(rt: sb.Runtime, db: Path) -> None:
    table = rt.share("table", list(range(1000)))

    def evaluate(fns: sb.Functions) -> float:
        return float(table.value[fns.value()])

    agent = ScriptedAgent([code(500)])
    run = rt.search(agent, "Grow.", evaluate=evaluate, budget=sb.Budget(rounds=1), store=db)
    assert run.best is not None and run.best.score == 500.0


def test_an_isolated_run_resumes_without_evaluating_again(rt: sb.Runtime, db: Path) -> None:
    def evaluate(fns: sb.Functions) -> float:
        return float(fns.value())

    agent = by_prompt(lambda p: code(10 * round_of(p)))
    rt.search(agent, "Grow.", evaluate=evaluate, budget=sb.Budget(rounds=1), store=db, name="r")
    fresh = sb.Runtime(DECL, profile="debug", isolation="process", check_timeout=3.0)
    try:
        run = fresh.search(
            agent,
            "Grow.",
            evaluate=evaluate,
            budget=sb.Budget(rounds=2),
            store=db,
            name="r",
            resume=True,
        )
        assert run.best is not None and run.best.score == 20.0 and fresh.fns.value() == 20
    finally:
        fresh.close()
    # The seed and round 1 were evaluated once, by the first session.
    assert rows(db, "SELECT revision, count(*) FROM evaluations GROUP BY revision") == [
        (0, 1),
        (1, 1),
        (2, 1),
    ]
