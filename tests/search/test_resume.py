"""Exact resume: a run stopped or killed at any point continues from its last committed state,
ends where the uninterrupted run ends, redoes no finished work and duplicates nothing."""

from __future__ import annotations

import itertools
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from search_helpers import by_prompt, code, round_of, value

import symbiont as sb
from symbiont.testing import OpenAITestServer, ScriptedAgent

HERE = Path(__file__).parent


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return list(con.execute(sql))
    finally:
        con.close()


def test_a_stopped_run_resumes_without_redoing_anything(rt: sb.Runtime, db: Path) -> None:
    evaluated: list[int] = []

    def evaluate(fns: sb.Functions) -> float:
        evaluated.append(fns.value())
        return float(fns.value())

    agent = by_prompt(lambda p: code(10 * round_of(p)))
    first = rt.search(
        agent, "Grow.", evaluate=evaluate, budget=sb.Budget(rounds=2), store=db, name="r"
    )
    assert first.rounds == 2 and evaluated == [1, 10, 20]
    fresh = sb.Runtime("fn value() -> u32 { 1 }", profile="debug")  # a new process, in effect
    run = fresh.search(
        agent,
        "Grow.",
        evaluate=evaluate,
        budget=sb.Budget(rounds=4),
        store=db,
        name="r",
        resume=True,
    )
    # The seed and rounds 1-2 were not evaluated again; the prompts continue from round 3.
    assert evaluated == [1, 10, 20, 30, 40]
    assert [round_of(r.messages[1].content) for r in agent.requests] == [1, 2, 3, 4]
    assert run.rounds == 4 and run.best is not None and run.best.score == 40.0
    assert fresh.fns.value() == 40
    assert query(db, "SELECT number, round FROM revisions ORDER BY number") == [
        (0, 0),
        (1, 1),
        (2, 2),
        (3, 3),
        (4, 4),
    ]
    assert len(run.history) == 4


def test_resume_refuses_a_changed_evaluator_unless_forced(rt: sb.Runtime, db: Path) -> None:
    agent = by_prompt(lambda p: code(10 * round_of(p)))
    rt.search(agent, "Grow.", evaluate=value, budget=sb.Budget(rounds=1), store=db, name="r")

    def other(fns: sb.Functions) -> float:
        return -float(fns.value())

    with pytest.raises(sb.ResumeError, match=r"the evaluator's source changed.*force=True"):
        rt.search(agent, "Grow.", evaluate=other, store=db, name="r", resume=True)
    changed = sb.Runtime("fn value() -> u32 { 2 }", profile="debug")
    with pytest.raises(sb.ResumeError, match="the declarations"):
        changed.search(agent, "Grow.", evaluate=value, store=db, name="r", resume=True)
    run = rt.search(
        agent,
        "Grow.",
        evaluate=other,
        budget=sb.Budget(rounds=2),
        store=db,
        name="r",
        resume=True,
        force=True,
    )
    assert run.rounds == 2
    with pytest.raises(sb.ResumeError, match="no run named 'nope'"):
        rt.search(agent, "Grow.", evaluate=value, store=db, name="nope", resume=True)


# ------------------------------------------------------------------------- killed processes

RUSTC_WRAPPER = """\
#!/bin/sh
echo "$@" >> "{log}"
if [ -s "{flag}" ]; then
    pid=$(cat "{flag}"); : > "{flag}"
    kill -9 "$pid"
    sleep 5
fi
exec "{rustc}" "$@"
"""


def scenario(tmp: Path, kill: str, lanes: int = 1) -> dict[str, Any]:
    """Runs the scenario to its end, killed at ``kill`` once and resumed; returns what the
    store and the server saw. With ``lanes`` > 1 it runs ``Lanes(lanes)``, whose lane ``i``
    is answered by prompt content: ``10 * round + i`` (in round 3, after a first reply that
    does not compile)."""
    import shutil

    tmp.mkdir()
    rustc = shutil.which("rustc")
    assert rustc is not None
    wrapper = tmp / "rustc"
    wrapper.write_text(RUSTC_WRAPPER.format(log=tmp / "rustc.log", flag=tmp / "flag", rustc=rustc))
    wrapper.chmod(0o755)
    env = {
        **os.environ,
        "SYMBIONT_CACHE_DIR": str(tmp / "cache"),
        "SYMBIONT_RUSTC": str(wrapper),
        "KILL_ON_NEXT_RUSTC": str(tmp / "flag"),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    child: dict[str, subprocess.Popen[str]] = {}
    fired = threading.Event()

    def answer(body: dict[str, Any]) -> str:
        prompt = body["messages"][1]["content"]
        r = round_of(prompt)
        if kill == "llm" and r == 3 and not fired.is_set():
            fired.set()
            child["p"].send_signal(signal.SIGKILL)
        if r == 3 and len(body["messages"]) == 2:
            # Round 3's lanes need two attempts: the first does not compile.
            return "```rust\nfn value() -> u32 { not_defined }\n```"
        hint = re.search(r"Strategy for this attempt: h(\d+)", prompt)
        return code(10 * r + (int(hint.group(1)) if hint else 0))

    db = tmp / "runs.db"
    kills = 0
    with OpenAITestServer(iter(lambda: answer, None)) as server:
        for attempt in range(4):
            args = (
                [
                    sys.executable,
                    str(HERE / "resume_scenario.py"),
                    server.base_url,
                    str(db),
                    kill,
                    str(tmp / "marker"),
                ]
                + (["--resume"] if attempt else [])
                + ["--lanes", str(lanes)]
            )
            child["p"] = subprocess.Popen(
                args, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            out, err = child["p"].communicate(timeout=240)
            assert query(db, "PRAGMA integrity_check") == [("ok",)]
            if child["p"].returncode == 0:
                break
            if kill == "sigint":
                assert "KeyboardInterrupt" in err and "resume with: symbiont resume k" in err
                assert query(db, "SELECT status FROM runs") == [("interrupted",)]
            else:
                assert child["p"].returncode == -signal.SIGKILL, err
            kills += 1
        else:
            pytest.fail("the run did not finish after three resumes")
        requests = server.request_count
    builds = sum("cdylib" in line for line in (tmp / "rustc.log").read_text().splitlines())
    return {
        "out": out.split(),
        "kills": kills,
        "requests": requests,
        "builds": builds,
        "revisions": query(
            db, "SELECT number, code, round, parent, score FROM revisions ORDER BY number"
        ),
        "evaluations": query(db, "SELECT revision, count(*) FROM evaluations GROUP BY revision"),
        "run": query(db, "SELECT status, stop_reason, rounds, best_revision FROM runs"),
        "attempts": query(
            db, "SELECT round, lane, attempt, failure_kind FROM attempts ORDER BY round, lane, id"
        ),
        # The same, by content: with concurrent lanes revision numbers follow completion order.
        "by_content": query(
            db,
            "SELECT r.code, r.round, r.lane, p.code, r.score FROM revisions r LEFT JOIN "
            "revisions p ON p.run_id = r.run_id AND p.number = r.parent ORDER BY r.round, r.lane",
        ),
        "evaluated": query(
            db,
            "SELECT r.code, e.purpose, count(*) FROM evaluations e JOIN revisions r ON "
            "r.run_id = e.run_id AND r.number = e.revision GROUP BY 1, 2 ORDER BY 1, 2",
        ),
        "best": query(
            db,
            "SELECT r.code, r.score FROM runs JOIN revisions r ON r.run_id = runs.id "
            "AND r.number = runs.best_revision",
        ),
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scenario(tmp_path_factory.mktemp("base") / "run", "none")


@pytest.mark.parametrize("kill", ["between", "llm", "build", "evaluate", "sigint"])
def test_a_killed_run_resumes_to_the_same_end(
    uninterrupted: dict[str, Any], tmp_path: Path, kill: str
) -> None:
    base = uninterrupted
    assert base["kills"] == 0 and base["run"] == [("finished", "rounds", 5, 5)]
    got = scenario(tmp_path / "run", kill)
    assert got["kills"] == 1
    assert got["out"] == base["out"] == ["5", "rounds"]
    assert got["run"] == base["run"]
    assert got["revisions"] == base["revisions"], "same revisions, none duplicated"
    # Each revision was evaluated once (the kill inside an evaluation leaves no row for it).
    assert got["evaluations"] == base["evaluations"]
    # At most the request in flight is sent again (a lane the process died in replays its
    # recorded attempts); existing revisions are not rebuilt.
    assert base["requests"] <= got["requests"] <= base["requests"] + 1
    assert got["attempts"] == base["attempts"], "no attempt recorded twice"
    assert got["builds"] <= base["builds"] + (1 if kill == "build" else 0)


@pytest.fixture(scope="module")
def uninterrupted_lanes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scenario(tmp_path_factory.mktemp("base") / "lanes", "none", lanes=3)


@pytest.mark.parametrize("kill", ["between", "llm", "evaluate"])
def test_a_killed_run_of_concurrent_lanes_resumes_to_the_same_end(
    uninterrupted_lanes: dict[str, Any], tmp_path: Path, kill: str
) -> None:
    base = uninterrupted_lanes
    got = scenario(tmp_path / "run", kill, lanes=3)
    assert base["kills"] == 0 and got["kills"] == 1
    assert base["best"] == got["best"] == [("fn value() -> u32 { 52 }\n", 52.0)]
    assert got["by_content"] == base["by_content"], "same revisions, none duplicated"
    assert len(got["by_content"]) == 1 + 5 * 3
    assert got["evaluated"] == base["evaluated"], "nothing evaluated twice"
    # At most the requests in flight when the process died (one per lane) are sent again.
    assert base["requests"] <= got["requests"] <= base["requests"] + 3


def test_a_round_cut_short_is_replanned_as_it_was_at_its_start(db: Path) -> None:
    # Round 1 runs two lanes: "fast" answers at once with 50, "slow" later with 20. The run
    # stops inside slow's evaluation, after fast's revision was committed. The resumed round
    # must plan and prompt slow exactly as before: from the seed, not from fast's 50.
    stop = {"now": True}

    def evaluate(fns: sb.Functions) -> float:
        if fns.value() == 20 and stop["now"]:
            raise LookupError("the evaluator broke")
        return float(fns.value())

    async def answer(req: sb.Request) -> str:
        import asyncio

        prompt = req.messages[1].content
        if prompt.endswith("Strategy for this attempt: slow"):
            await asyncio.sleep(0.5)
            return code(20)
        return code(50)

    prompts: list[str] = []

    def recorded(req: sb.Request) -> object:
        prompts.append(req.messages[1].content)
        return answer(req)

    agent = ScriptedAgent(itertools.repeat(recorded))
    options: dict[str, Any] = {
        "evaluate": evaluate,
        "strategy": sb.Lanes(2, hints=["fast", "slow"]),
        "budget": sb.Budget(rounds=1),
        "store": db,
        "name": "cut",
    }
    rt = sb.Runtime("fn value() -> u32 { 1 }", profile="debug")
    with pytest.raises(LookupError):
        rt.search(agent, "Grow.", **options)
    stop["now"] = False
    run = sb.Runtime("fn value() -> u32 { 1 }", profile="debug").search(
        agent, "Grow.", resume=True, **options
    )
    assert run.best is not None and run.best.score == 50.0
    assert query(db, "SELECT lane, parent, score FROM revisions WHERE round = 1 ORDER BY lane") == [
        (0, 0, 50.0),
        (1, 0, 20.0),
    ]
    assert len(prompts) == 3, "only the unfinished lane asked again"
    slow = [p for p in prompts if p.endswith("slow")]
    assert slow[0] == slow[1] and "Best code so far (revision 0, score=1)" in slow[1]


SLOW_CLEANUP = """
import itertools, sys, time
import symbiont as sb
from symbiont.testing import ScriptedAgent

def on_event(event):
    if event.kind == "round_ended":
        print("round", event.round, flush=True)
        time.sleep(0.2)
    if event.kind == "run_ended":
        time.sleep(120)  # a cleanup that hangs: only a second Ctrl-C gets out

rt = sb.Runtime("fn value() -> u32 { 1 }", profile="debug")
agent = ScriptedAgent(itertools.repeat("```rust\\nfn value() -> u32 { 2 }\\n```"))
rt.search(agent, "Grow.", evaluate=lambda fns: float(fns.value()),
          budget=sb.Budget(rounds=1000), store=sys.argv[1], name="twice", on_event=on_event)
"""


def test_a_second_ctrl_c_exits_at_once(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_CLEANUP, str(db)],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("round 1")
    proc.send_signal(signal.SIGINT)
    # The first Ctrl-C records the interruption, then waits for the (hanging) cleanup.
    for _ in range(200):
        if query(db, "SELECT status FROM runs") == [("interrupted",)]:
            break
        threading.Event().wait(0.05)
    assert query(db, "SELECT status FROM runs") == [("interrupted",)]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)  # long before the 120 s cleanup would end
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
