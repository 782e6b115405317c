"""rt.search: rounds toward a score, the evaluator policy, budgets, prompts, the store."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from search_helpers import by_prompt, code, round_of, value

import symbiont as sb
from symbiont.testing import ScriptedAgent


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db)
    try:
        return list(con.execute(sql))
    finally:
        con.close()


def test_hill_climb_reaches_the_target_and_records_the_lineage(rt: sb.Runtime, db: Path) -> None:
    agent = by_prompt(lambda p: code(10 * round_of(p)))
    run = rt.search(
        agent,
        "Make value large.",
        evaluate=value,
        budget=sb.Budget(rounds=10, target=30),
        store=db,
        name="climb",
    )
    assert run.stop_reason == "target"
    assert run.best is not None and run.best.score == 30.0 and run.best.revision == 3
    assert rt.fns.value() == 30, "the best revision is active at the end"
    # Revision 0 is the seed (score 1); each round's revision descends from the previous best.
    assert rows(db, "SELECT number, parent, round, score FROM revisions ORDER BY number") == [
        (0, None, 0, 1.0),
        (1, 0, 1, 10.0),
        (2, 1, 2, 20.0),
        (3, 2, 3, 30.0),
    ]
    assert rows(db, "SELECT status, stop_reason, rounds FROM runs") == [("finished", "target", 3)]
    assert len(run.history) == 3 and all(h.outcome == "registered" for h in run.history)
    # The round-3 prompt shows the best code so far with its score and the last result.
    prompt = agent.requests[-1].messages[1].content
    assert "Best code so far (revision 2, score=20)" in prompt
    assert "Last attempt: round 2 produced revision 2, score 20" in prompt
    assert prompt.rstrip().endswith("write an improved version (higher `score`).")


def test_a_failed_reply_and_a_rejection_are_fed_back(rt: sb.Runtime, db: Path) -> None:
    def evaluate(fns: sb.Functions) -> float:
        v = fns.value()
        if v == 7:
            raise sb.Reject("seven is unlucky: pick another number")
        assert v != 8, "eight is not allowed either"
        return float(v)

    agent = ScriptedAgent(["no code here", code(7), code(8), code(9)])
    run = rt.search(agent, "Pick.", evaluate=evaluate, budget=sb.Budget(rounds=1), store=db)
    assert run.best is not None and run.best.score == 9.0
    kinds = [h.failure_kind for h in run.history]
    assert kinds == ["no_code", "check_failed", "check_failed", None]
    assert "seven is unlucky" in agent.requests[2].messages[-1].content
    assert "eight is not allowed either" in agent.requests[3].messages[-1].content
    outcomes = rows(db, "SELECT outcome FROM evaluations WHERE round = 1 ORDER BY id")
    assert outcomes == [("rejected",), ("rejected",), ("scored",)]


def test_an_evaluator_bug_stops_the_run_with_the_users_exception(rt: sb.Runtime, db: Path) -> None:
    calls = []

    def evaluate(fns: sb.Functions) -> float:
        calls.append(1)
        if len(calls) > 1:
            return undefined_name  # type: ignore[name-defined]  # noqa: F821
        return 1.0

    agent = ScriptedAgent([code(5), code(6)])
    with pytest.raises(NameError, match="undefined_name"):
        rt.search(agent, "Pick.", evaluate=evaluate, store=db, name="bug")
    assert len(agent.requests) == 1, "the model is not asked again for the evaluator's bug"
    assert rows(db, "SELECT status, stop_reason FROM runs") == [
        ("failed", "evaluator raised NameError")
    ]


def test_evaluator_errors_feedback_sends_them_to_the_model(rt: sb.Runtime, db: Path) -> None:
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


def test_a_panic_and_a_hung_evaluation_are_failures_not_the_end(rt: sb.Runtime, db: Path) -> None:
    def evaluate(fns: sb.Functions) -> float:
        v = fns.value()
        while v == 4:  # a Python-side loop the evaluation deadline must stop
            pass
        return float(v)

    panics = "```rust\nfn value() -> u32 { let v: Vec<u32> = Vec::new(); v[3] }\n```"
    agent = ScriptedAgent([panics, code(4), code(6)])
    run = rt.search(
        agent,
        "Pick.",
        evaluate=evaluate,
        budget=sb.Budget(rounds=1),
        store=db,
        evaluate_timeout=0.5,
    )
    assert [h.failure_kind for h in run.history] == ["panic", "timeout", None]
    assert "index out of bounds" in agent.requests[1].messages[-1].content
    assert "evaluate_timeout" in agent.requests[2].messages[-1].content
    assert run.best is not None and run.best.score == 6.0


def test_metrics_dicts_and_score_feedback_reach_the_prompt(rt: sb.Runtime, db: Path) -> None:
    def evaluate(fns: sb.Functions) -> sb.Score:
        v = fns.value()
        return sb.Score(float(v), metrics={"size": 3.0}, feedback=f"value {v} is still small")

    agent = by_prompt(lambda p: code(round_of(p) + 1))
    run = rt.search(agent, "Grow.", evaluate=evaluate, budget=sb.Budget(rounds=2), store=db)
    assert run.best is not None and run.best.metrics == {"score": 3.0, "size": 3.0}
    second = agent.requests[1].messages[1].content
    assert "score=2, size=3" in second
    assert "Evaluator feedback on revision 1:\nvalue 2 is still small" in second


def test_minimise_with_a_named_objective(rt: sb.Runtime, db: Path) -> None:
    agent = by_prompt(lambda p: code(10 - round_of(p)))
    run = rt.search(
        agent,
        "Shrink.",
        evaluate=lambda fns: {"error": float(fns.value()), "other": 1.0},
        objective="error",
        maximize=False,
        budget=sb.Budget(rounds=3),
        store=db,
    )
    assert run.best is not None and run.best.score == 1.0 and run.best.revision == 0
    # The seed (1) stays best: every candidate is worse; patience counts rounds without a gain.
    run2 = rt.search(
        by_prompt(lambda p: code(10 - round_of(p))),
        "Shrink.",
        evaluate=lambda fns: {"error": float(fns.value())},
        objective="error",
        maximize=False,
        budget=sb.Budget(rounds=10, patience=2),
        store=db,
    )
    assert run2.stop_reason == "patience" and run2.rounds == 2


@pytest.mark.parametrize(
    ("budget", "reason", "requests"),
    [
        (sb.Budget(rounds=2), "rounds", 2),
        (sb.Budget(attempts=3), "attempts", 3),
        (sb.Budget(tokens=1), "tokens", 1),
        (sb.Budget(cost=0.0001), "cost", 1),
        (sb.Budget(target=3, rounds=50), "target", 2),
        (sb.Budget(patience=1, rounds=50), "patience", 3),
    ],
)
def test_each_budget_stops_the_run_and_says_why(
    rt: sb.Runtime, db: Path, budget: sb.Budget, reason: str, requests: int
) -> None:
    # Rounds 1 and 2 improve; later rounds repeat round 2's value (no improvement).
    agent = by_prompt(lambda p: code(1 + min(round_of(p), 2)))
    run = rt.search(
        agent,
        "Grow.",
        evaluate=value,
        budget=budget,
        store=db,
        prices={"scripted": (1000.0, 1000.0)},
    )
    assert run.stop_reason == reason
    assert len(agent.requests) == requests
    assert rows(db, "SELECT stop_reason FROM runs") == [(reason,)]


def test_the_seconds_budget_counts_the_whole_run(rt: sb.Runtime, db: Path) -> None:
    def slow(fns: sb.Functions) -> float:
        time.sleep(0.2)  # every evaluation outlasts the budget: it is spent after the seed
        return float(fns.value())

    agent = by_prompt(lambda p: code(1 + round_of(p)))
    run = rt.search(
        agent, "Grow.", evaluate=slow, budget=sb.Budget(seconds=0.1, rounds=50), store=db
    )
    assert run.stop_reason == "seconds" and len(agent.requests) == 0


def test_a_replaced_prompt_builder_is_used(rt: sb.Runtime, db: Path) -> None:
    seen: list[sb.PromptContext] = []

    def prompt(ctx: sb.PromptContext) -> str:
        seen.append(ctx)
        return f"custom round {ctx.round}, best {ctx.best.score if ctx.best else None}"

    agent = ScriptedAgent([code(2), code(3)])
    rt.search(agent, "Grow.", evaluate=value, budget=sb.Budget(rounds=2), store=db, prompt=prompt)
    assert agent.requests[1].messages[1].content == "custom round 2, best 2.0"
    assert seen[0].parent.revision == 0 and seen[1].best is not None


def test_repeats_keep_the_median_and_the_best_is_confirmed(rt: sb.Runtime, db: Path) -> None:
    noise = iter([0.0, 5.0, 1.0] + [0.0] * 100)

    def evaluate(fns: sb.Functions) -> float:
        return fns.value() + next(noise)

    agent = ScriptedAgent([code(2)])
    run = rt.search(
        agent, "Grow.", evaluate=evaluate, budget=sb.Budget(rounds=1), store=db, repeats=3
    )
    # The seed measured 1+0, 1+5, 1+1: median 2, spread 5.
    assert rows(db, "SELECT score, spread FROM revisions WHERE number = 0") == [(2.0, 5.0)]
    assert run.best is not None and run.best.confirmed and run.best.revision == 1
    assert rows(db, "SELECT count(*) FROM evaluations WHERE purpose = 'confirm'") == [(12,)]


def test_a_run_name_is_not_reused_without_resume(rt: sb.Runtime, db: Path) -> None:
    rt.search(
        ScriptedAgent([code(2)]),
        "G.",
        evaluate=value,
        budget=sb.Budget(rounds=1),
        store=db,
        name="once",
    )
    with pytest.raises(sb.ResumeError, match="resume=True"):
        rt.search(ScriptedAgent([]), "G.", evaluate=value, store=db, name="once")


def test_bad_options_are_named(rt: sb.Runtime, db: Path) -> None:
    with pytest.raises(sb.ConfigError, match=r"Budget\.rounds"):
        sb.Budget(rounds=0)
    with pytest.raises(sb.ConfigError, match="evaluator_errors"):
        rt.search(ScriptedAgent([]), "G.", evaluate=value, store=db, evaluator_errors="ignore")
    with pytest.raises(sb.ConfigError, match=r"price of model 'scripted'.*prices="):
        rt.search(ScriptedAgent([]), "G.", evaluate=value, store=db, budget=sb.Budget(cost=1.0))
    with pytest.raises(sb.ConfigError, match=r"without the objective 'score'"):
        rt.search(ScriptedAgent([code(2)]), "G.", evaluate=lambda f: {"x": 1.0}, store=db)


@pytest.mark.parametrize(
    "limits",
    [{"target": float("nan")}, {"target": float("inf")}, {"rounds": True}, {"seconds": True}],
)
def test_a_budget_that_can_never_be_reached_is_refused(limits: dict[str, object]) -> None:
    # Budget(target=nan) was accepted and silently never met; True passed as 1.
    with pytest.raises(sb.ConfigError, match=r"Budget\.(target|rounds|seconds) must be"):
        sb.Budget(**limits)  # type: ignore[arg-type]


def test_asearch_and_an_evaluator_taking_the_vectorised_functions(db: Path) -> None:
    import asyncio

    import numpy as np

    rt = sb.Runtime("fn scale(x: f64) -> f64 { x }", profile="debug")

    def evaluate(fns: sb.Functions, maps: object) -> float:
        xs = np.arange(4, dtype=np.float64)
        return float(maps.scale(xs).sum())  # type: ignore[attr-defined]

    agent = ScriptedAgent(["```rust\nfn scale(x: f64) -> f64 { 2.0 * x }\n```"])

    async def main() -> sb.SearchRun:
        return await rt.asearch(
            agent, "Grow.", evaluate=evaluate, budget=sb.Budget(rounds=1), store=db
        )

    run = asyncio.run(main())
    assert run.best is not None and run.best.score == 12.0  # 2 * (0 + 1 + 2 + 3)
    with pytest.raises(sb.ConfigError, match="unknown search option"):
        asyncio.run(rt.asearch(agent, "G.", evaluate=evaluate, rounds=3))


def test_an_evaluator_reads_the_candidates_code_and_refuses_a_construct(
    rt: sb.Runtime, db: Path
) -> None:
    seen: list[str] = []

    def evaluate(fns: sb.Functions) -> float:
        text = sb.code_of(fns)
        seen.append(text)
        if "7" in text:
            raise sb.Reject("no sevens")
        return float(fns.value())

    agent = ScriptedAgent([code(7), code(5)])
    run = rt.search(
        agent, "Make value large.", evaluate=evaluate, budget=sb.Budget(rounds=1),
        attempts_per_lane=2, store=db, name="scan",
    )  # fmt: skip
    assert run.best is not None and run.best.score == 5.0
    assert "{ 7 }" in seen[1] and "{ 5 }" in seen[2]  # seen[0]: the seed
    assert "no sevens" in agent.requests[1].messages[-1].content
    # A pinned revision has its code; the dispatchers following activations have none.
    assert sb.code_of(rt.revision(run.best.revision).fns) == rt.code(run.best.revision)
    with pytest.raises(sb.ConfigError, match=r"use rt.code\(\)"):
        sb.code_of(rt.fns)


@pytest.mark.parametrize(
    ("result", "error"),
    [
        (sb.Score(None), "Score.value = None: it must be a number"),  # type: ignore[arg-type]
        (sb.Score(1.0, {"m": "fast"}), "metric 'm' = 'fast': it must be a number"),  # type: ignore[dict-item]
        (10**400, "the score = 1000"),
        (sb.Score(1.0, feedback=b"bytes"), "Score.feedback of type bytes"),  # type: ignore[arg-type]
    ],
)
def test_an_evaluator_result_that_is_not_a_score_is_named(
    rt: sb.Runtime, db: Path, result: object, error: str
) -> None:
    agent = ScriptedAgent([code(5)])
    with pytest.raises(sb.ConfigError, match=error.replace("(", r"\(")):
        rt.search(agent, "Pick.", evaluate=lambda fns: result, store=db, name="bad")


def test_metric_keys_of_any_type_are_stored_as_text(rt: sb.Runtime, db: Path) -> None:
    # A tuple key crashed the store's JSON, mixed int/str keys crashed sorting for the prompt.
    def evaluate(fns: sb.Functions) -> sb.Score:
        return sb.Score(float(fns.value()), {(1, 2): 3.0, 7: 1.0, "a": 2.0})  # type: ignore[dict-item]

    agent = by_prompt(lambda p: code(round_of(p) + 1))
    run = rt.search(agent, "Grow.", evaluate=evaluate, budget=sb.Budget(rounds=2), store=db)
    assert run.best is not None
    assert run.best.metrics == {"score": 3.0, "(1, 2)": 3.0, "7": 1.0, "a": 2.0}
    assert "(1, 2)=3, 7=1, a=2" in agent.requests[1].messages[1].content


def test_a_run_named_by_digits_is_not_another_runs_id(rt: sb.Runtime, db: Path) -> None:
    # A search named "1" found run id 1 ("first") and refused, or with resume=True continued
    # that other run.
    rt.search(by_prompt(lambda p: code(2)), "G.", evaluate=value, store=db, name="first",
              budget=sb.Budget(rounds=1))  # fmt: skip
    with pytest.raises(sb.ResumeError, match="no run named '1'"):
        rt.search(ScriptedAgent([]), "G.", evaluate=value, store=db, name="1", resume=True)
    rt.search(by_prompt(lambda p: code(3)), "G.", evaluate=value, store=db, name="1",
              budget=sb.Budget(rounds=1))  # fmt: skip
    assert rows(db, "SELECT id, name, best_score FROM runs ORDER BY id") == [
        (1, "first", 2.0),
        (2, "1", 3.0),
    ]


def test_a_run_being_written_cannot_be_resumed_by_a_second_search(
    rt: sb.Runtime, db: Path, tmp_path: Path
) -> None:
    # Two searches on one run interleaved their rounds: attempts of both in the same round,
    # pointing at each other's revision numbers.
    import subprocess
    import sys

    rt.search(by_prompt(lambda p: code(2)), "G.", evaluate=value, store=db, name="k",
              budget=sb.Budget(rounds=1))  # fmt: skip
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from symbiont._store import Store\n"
         "with Store(sys.argv[1]).claim(1, 'k'):\n"
         "    print('held', flush=True); time.sleep(600)\n", str(db)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(sb.StoreError, match="being written by another search"):
            rt.search(ScriptedAgent([]), "G.", evaluate=value, store=db, name="k", resume=True,
                      budget=sb.Budget(rounds=2))  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    # A killed writer leaves no lock behind: the run resumes at once.
    run = rt.search(by_prompt(lambda p: code(5)), "G.", evaluate=value, store=db, name="k",
                    resume=True, budget=sb.Budget(rounds=2))  # fmt: skip
    assert run.best is not None and run.best.score == 5.0
    assert rows(db, "SELECT status, rounds FROM runs") == [("finished", 2)]


def test_huge_feedback_and_panic_texts_are_cut_for_the_prompt_and_the_store(
    rt: sb.Runtime, db: Path
) -> None:
    # A 10 MB Score.feedback or Reject text went whole into every later prompt (and the
    # store); so did a candidate's 10 MB panic message, which is the LLM's own text.
    calls = []

    def evaluate(fns: sb.Functions) -> sb.Score:
        calls.append(1)
        v = fns.value()
        if len(calls) == 2:
            raise sb.Reject("r" * 10_000_000)
        return sb.Score(float(v), feedback="f" * 10_000_000)

    panics = '```rust\nfn value() -> u32 { panic!("{}", "p".repeat(10_000_000)) }\n```'
    agent = ScriptedAgent([code(2), panics, code(3), code(4)])
    rt.search(agent, "G.", evaluate=evaluate, budget=sb.Budget(rounds=2), store=db,
              attempts_per_lane=3)  # fmt: skip
    sizes = [sum(len(m.content) for m in r.messages) for r in agent.requests]
    assert len(sizes) == 4 and max(sizes) < 40_000, sizes
    prompts = "".join(m.content for r in agent.requests for m in r.messages)
    assert "more characters not shown" in prompts
    assert "f" * 8_000 in prompts and "r" * 8_000 in prompts and "p" * 8_000 in prompts
    stored = rows(db, "SELECT max(length(feedback)) FROM evaluations")[0][0]
    assert isinstance(stored, int) and stored < 10_000
