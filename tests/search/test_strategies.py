"""Each strategy reaches a target on a toy task, and its policy is visible in the store."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from search_helpers import by_prompt, by_request, code, round_of, value

import symbiont as sb


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db)
    try:
        return list(con.execute(sql))
    finally:
        con.close()


HINTS = ["small steps", "big steps", "medium steps"]
GAIN = {"small steps": 1, "big steps": 5, "medium steps": 3}


def test_lanes_run_n_lanes_with_hints_and_keep_the_best(rt: sb.Runtime, db: Path) -> None:
    def answer(prompt: str) -> str:
        hint = re.search(r"Strategy for this attempt: (.+)$", prompt)
        best = re.search(r"Best code so far \(revision \d+, score=(\d+)", prompt)
        assert hint is not None and best is not None
        return code(int(best.group(1)) + GAIN[hint.group(1)])

    agent = by_prompt(answer)
    run = rt.search(agent, "Grow.", evaluate=value, strategy=sb.Lanes(3, hints=HINTS),
                    budget=sb.Budget(target=11, rounds=5), store=db)  # fmt: skip
    assert run.stop_reason == "target" and run.best is not None and run.best.score == 11.0
    # Round 1: three lanes from the seed (1): 2, 6, 4; round 2 from the best (6): 7, 11, 9.
    # (Revision numbers follow the order lanes finish in; the parent is shown by its score.)
    assert query(db, "SELECT r.round, r.lane, p.score, r.score FROM revisions r "
                     "JOIN revisions p ON p.run_id = r.run_id AND p.number = r.parent "
                     "WHERE r.round > 0 ORDER BY r.round, r.lane") == [
        (1, 0, 1.0, 2.0), (1, 1, 1.0, 6.0), (1, 2, 1.0, 4.0),
        (2, 0, 6.0, 7.0), (2, 1, 6.0, 11.0), (2, 2, 6.0, 9.0),
    ]  # fmt: skip
    assert len(agent.requests) == 6


def test_islands_are_all_used_and_exchange_their_best(rt: sb.Runtime, db: Path) -> None:
    # Each island is given its own seed; the reply depends on the seed and the parent's value,
    # so islands evolve apart.
    def answer(prompt: str, seed: int | None) -> str:
        assert seed is not None
        parent = re.search(r"Best code so far \(revision \d+, score=(\d+)", prompt)
        start = re.search(r"Start from this code \(revision \d+, score=(\d+)", prompt)
        base = int((start or parent).group(1)) if (start or parent) else 1  # type: ignore[union-attr]
        return code(base * 10 + seed % 997 + round_of(prompt))

    strategy = sb.Islands(3, migrate_every=2, seed=42)
    run = rt.search(by_request(answer), "Grow.", evaluate=value, strategy=strategy,
                    budget=sb.Budget(rounds=4), store=db)  # fmt: skip
    lanes = query(db, "SELECT json_extract(data, '$.island'), count(*) FROM events "
                      "WHERE kind = 'lane_end' GROUP BY 1")  # fmt: skip
    assert lanes == [(0, 4), (1, 4), (2, 4)], "every island ran a lane every round"
    islands = query(db, "SELECT DISTINCT island FROM revisions WHERE round > 0 ORDER BY 1")
    assert islands == [(0,), (1,), (2,)], "every island holds revisions of its own"
    # Before the first migration (round 2), each lane starts from its own island's revisions.
    owner = dict(query(db, "SELECT number, island FROM revisions"))
    for number, island, parent, round_ in query(
        db, "SELECT number, island, parent, round FROM revisions WHERE round BETWEEN 1 AND 2"
    ):
        assert parent == 0 or owner[parent] == island, (number, island, parent, round_)
    state = json.loads(query(db, "SELECT state FROM runs")[0][0])["strategy"]
    assert [m[0] for m in state["migrations"]] == [2, 2, 2, 4, 4, 4]
    assert run.best is not None


def test_pareto_keeps_a_front_and_draws_parents_from_it(rt: sb.Runtime, db: Path) -> None:
    def evaluate(fns: sb.Functions) -> dict[str, float]:
        v = float(fns.value())
        return {"score": v, "speed": v, "error": (v * 7) % 10}

    def answer(prompt: str, seed: int | None) -> str:
        assert seed is not None
        return code(1 + (seed + round_of(prompt)) % 40)

    strategy = sb.Pareto({"speed": "max", "error": "min"}, lanes=2, seed=3)
    run = rt.search(by_request(answer), "Trade.", evaluate=evaluate, strategy=strategy,
                    budget=sb.Budget(rounds=4), store=db)  # fmt: skip
    revs = query(db, "SELECT number, parent, round, metrics FROM revisions ORDER BY number")
    metrics = {n: json.loads(m) for n, _, _, m in revs}

    def dominated(n: int, pool: list[int]) -> bool:
        a = metrics[n]
        return any(
            metrics[o]["speed"] >= a["speed"] and metrics[o]["error"] <= a["error"]
            and (metrics[o]["speed"], metrics[o]["error"]) != (a["speed"], a["error"])
            for o in pool
        )  # fmt: skip

    numbers = [n for n, *_ in revs]
    assert run.frontier and all(not dominated(b.revision, numbers) for b in run.frontier)
    front = {b.revision for b in run.frontier}
    assert front == {n for n in numbers if not dominated(n, numbers)}
    for n, parent, round_, _ in revs:
        if round_ > 1:  # a parent was on the front of the revisions before its round
            earlier = [m for m, _, r, _ in revs if r < round_]
            assert parent in earlier and not dominated(parent, earlier), n


def test_strategy_state_round_trips_through_json() -> None:
    for strategy in (sb.HillClimb(seed=1), sb.Lanes(2, seed=1), sb.Islands(2, seed=1),
                     sb.Pareto(["a", "b"], seed=1)):  # fmt: skip
        strategy.rng.random()
        state = json.loads(json.dumps(strategy.state()))
        expected = strategy.rng.random()
        strategy.restore(state)
        assert strategy.rng.random() == expected


def test_bad_strategy_arguments_are_named() -> None:
    with pytest.raises(sb.ConfigError, match="Lanes"):
        sb.Lanes(0)
    with pytest.raises(sb.ConfigError, match="migrate_every"):
        sb.Islands(2, migrate_every=0)
    with pytest.raises(sb.ConfigError, match="'max' or 'min'"):
        sb.Pareto({"a": "up"})
