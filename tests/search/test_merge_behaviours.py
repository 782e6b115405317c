"""The search on the tidy layers: fatal agent errors, failure facts in the store, edit replies
against the lane's parent, and one rule for which current code a prompt shows."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from search_helpers import DECL, code, value

import symbiont as sb
from symbiont._cli import main
from symbiont._prompts import shown_current
from symbiont.testing import Hang, OpenAITestServer, ScriptedAgent, Status


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db)
    try:
        return list(con.execute(sql))
    finally:
        con.close()


def test_a_fatal_agent_error_stops_every_lane_at_once(db: Path) -> None:
    rt = sb.Runtime(DECL, profile="debug", transient_retries=0)
    rejected = Status(401, message="Incorrect API key provided.")
    # One lane's request hangs, the other's key is rejected: the hanging lane is stopped at
    # once instead of waiting for its reply (it would record an agent error of its own).
    with OpenAITestServer([Hang(30), rejected, rejected]) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, api_key="k", model="m")
        with pytest.raises(sb.EvolveError) as info:
            rt.search(agent, "Pick.", evaluate=value, strategy=sb.Lanes(2), store=db,
                      name="key", budget=sb.Budget(rounds=5))  # fmt: skip
        sent = server.request_count
    assert info.value.fatal and "Incorrect API key provided" in str(info.value)
    assert sent == 2, "no other round was started"
    assert rows(db, "SELECT outcome FROM attempts") == [("agent_error",)]
    [(status, reason, rounds)] = rows(db, "SELECT status, stop_reason, rounds FROM runs")
    assert status == "failed" and rounds == 0
    assert isinstance(reason, str) and reason.startswith("agent: ")
    assert "Incorrect API key provided" in reason


def test_failures_are_stored_as_facts(
    rt: sb.Runtime, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def evaluate(fns: sb.Functions) -> float:
        assert fns.value() != 7, "seven is not allowed"
        return float(fns.value())

    panicky = "```rust\nfn value() -> u32 {\n    let v: Vec<u32> = vec![];\n    v[3]\n}\n```"
    agent = ScriptedAgent([code(7), panicky, code(9)])
    run = rt.search(agent, "Pick.", evaluate=evaluate, budget=sb.Budget(rounds=1), store=db)
    assert [h.failure_kind for h in run.history] == ["check_failed", "panic", None]
    stored = [json.loads(f) for (f,) in rows(db, "SELECT failure FROM attempts ORDER BY id")[:2]]
    assert stored[0]["kind"] == "check_failed" and "seven is not allowed" in stored[0]["details"]
    assert stored[1]["kind"] == "panic" and stored[1]["line"] == 3
    assert stored[1]["function"] == "value"
    assert run.history[1].summary is not None and run.history[1].summary.startswith("panic")
    # The evaluation that rejected a candidate keeps the same facts.
    [(facts,)] = rows(db, "SELECT failure FROM evaluations WHERE outcome = 'rejected'")
    assert isinstance(facts, str) and json.loads(facts)["kind"] == "check_failed"
    # `symbiont log` shows each failure's one-line summary, not the start of the feedback.
    assert main(["log", run.name, "--store", str(db)]) == 0
    logged = capsys.readouterr().out
    assert "check failed: seven is not allowed" in logged
    assert "panic in `value` on line 3" in logged


def test_search_edits_apply_to_the_lanes_parent(rt: sb.Runtime, db: Path) -> None:
    edit = (
        "<<<<<<< SEARCH\nfn value() -> u32 { 1 }\n=======\nfn value() -> u32 { 5 }\n>>>>>>> REPLACE"
    )
    agent = ScriptedAgent([edit])
    run = rt.search(agent, "Pick.", evaluate=value, budget=sb.Budget(rounds=1), store=db)
    assert run.best is not None and run.best.score == 5.0
    prompt = agent.requests[0].messages[1].content
    assert "edits to the code this round starts from" in prompt
    # The edit format is stable text: it comes before what changes from round to round.
    assert prompt.index("<<<<<<< SEARCH") < prompt.index("Best code so far")


def test_edits_off_leave_the_search_prompt_without_the_format(db: Path) -> None:
    rt = sb.Runtime(DECL, profile="debug", edits=False)
    agent = ScriptedAgent([code(3)])
    rt.search(agent, "Pick.", evaluate=value, budget=sb.Budget(rounds=1), store=db)
    assert "SEARCH" not in agent.requests[0].messages[1].content


def test_one_rule_decides_which_current_code_is_shown() -> None:
    names = ("a", "b")
    both = "fn a() -> u32 { unimplemented!() }\nfn b() -> u32 { todo!() }"
    one = 'fn a() -> u32 { 1 }\nfn b() -> u32 { unimplemented!("later") }'
    assert shown_current(both, names) is None
    assert shown_current(both, names, partial=True) == both
    assert shown_current(one, names) == one
    assert shown_current("", names) is None
