"""rt.search with isolation="ray": a round's evaluations fan out over a real local two-node
cluster, and the store records the node and worker of each. (Named to run before
test_ray_faults.py, whose last test leaves the cluster with one node.)"""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

import symbiont as sb
from symbiont.testing import ScriptedAgent

pytestmark = pytest.mark.ray


def test_a_search_evaluates_on_both_nodes_and_records_where(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rt = sb.Runtime(
        "fn value() -> u32 { 1 }", isolation="ray", ray_address=cluster.address, check_timeout=3.0
    )
    table = rt.share("offsets", {"A": 0.5, "B": 0.25})

    def evaluate(fns: sb.Functions) -> sb.Score:
        import time

        end = time.process_time() + 0.3  # CPU work, so the in-flight evaluations spread out
        while time.process_time() < end:
            pass
        v = fns.value()
        return sb.Score(float(v), metrics={"offset": table.value["A"]}, feedback=f"got {v}")

    def reply(request: object) -> str:
        prompt = request.messages[1].content  # type: ignore[attr-defined]
        n = 2 if "hint A" in prompt else 3
        return f"```rust\nfn value() -> u32 {{ {n} }}\n```"

    agent = ScriptedAgent(itertools.repeat(reply))
    db = tmp_path / "runs.db"
    try:
        run = rt.search(
            agent,
            "Grow.",
            evaluate=evaluate,
            strategy=sb.Lanes(2, hints=["hint A", "hint B"]),
            budget=sb.Budget(rounds=1),
            repeats=2,
            store=db,
            name="ray",
        )
        assert run.best is not None and run.best.score == 3.0 and run.best.confirmed
        assert run.best.metrics["offset"] == 0.5, "the shared input reached the evaluator"
        assert rt.fns.value() == 3
    finally:
        rt.close()
    con = sqlite3.connect(db)
    try:
        found = list(con.execute("SELECT revision, outcome, node, worker FROM evaluations"))
    finally:
        con.close()
    assert found and all(outcome == "scored" for _, outcome, _, _ in found)
    assert all(isinstance(w, int) and w > 0 for *_, w in found)
    nodes = {node for _, _, node, _ in found}
    assert len(nodes) == 2 and "local" not in nodes, found
    # The seed, two lanes and three confirmed revisions: 3 * 2 + 3 * 4 evaluations.
    assert len(found) == 18
