"""The primes example: its checks on hand-written Rust, and the example driven end to end by a
scripted agent answering each lane by its hint: a wrong count, a panic, an endless loop and
`unsafe` refused with the right feedback, the good lanes compared through pinned handles."""

from __future__ import annotations

import itertools
import runpy
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import symbiont as sb
from symbiont._agents import Request
from symbiont._cli import examples_dir
from symbiont.testing import OpenAITestServer, ScriptedAgent, Status

TRIAL_SQRT = """
fn count_primes_below(n: u32) -> u32 {
    let mut count = if n > 2 { 1 } else { 0 };
    let mut k = 3;
    while k < n {
        let mut d = 3;
        let mut prime = true;
        while d * d <= k {
            if k % d == 0 {
                prime = false;
                break;
            }
            d += 2;
        }
        if prime {
            count += 1;
        }
        k += 2;
    }
    count
}
"""
# Counts 1 as a prime.
SIGNATURE = "fn count_primes_below(n: u32) -> u32 {\n"
WRONG = SIGNATURE + "    (1..n).filter(|k| (2..*k).all(|d| k % d != 0)).count() as u32\n}"
PANICS = SIGNATURE + "    let sieve = vec![true; n as usize];\n    sieve[n as usize] as u32\n}"
ENDLESS = (
    SIGNATURE
    + "    let mut k = n;\n    while k != 0 {\n        k = k.wrapping_mul(3) | 1;\n    }\n    k\n}"
)
UNSAFE = (
    "fn count_primes_below(n: u32) -> u32 {\n    unsafe { std::mem::transmute::<u32, u32>(n) }\n}"
)


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return runpy.run_path(str(examples_dir() / "primes" / "main.py"))


def fns(code: str) -> sb.Functions:
    return sb.Runtime(code, profile="debug").revision(0).fns


def test_the_baselines_and_the_evaluator_on_hand_written_counts(example: dict[str, Any]) -> None:
    task = example["task"]
    for n in (0, 1, 2, 3, 4, 10, 11, 100, 7920, 100_003):
        assert task.numpy_count(n) == task.python_count(n)
    assert task.numpy_count(1_000_000) == 78_498
    reference = fns(task.REFERENCE).count_primes_below
    assert [reference(n) for n in range(40)] == [task.numpy_count(n) for n in range(40)]
    assert reference(1_000_000) == 78_498
    evaluate = task.make_evaluator(2_000, runs=3)
    for code in (task.DEFAULT, task.REFERENCE, TRIAL_SQRT):
        score = evaluate(fns(code))
        assert score.value > 0 and "count_primes_below(2000) takes" in (score.feedback or "")
    with pytest.raises(AssertionError, match=r"count_primes_below\(2\) returned 1, expected 0"):
        evaluate(fns(WRONG))
    with pytest.raises(sb.PanicError, match="index out of bounds"):
        evaluate(fns(PANICS))


def by_hint(task: Any) -> ScriptedAgent:
    """Answers each lane by its hint: a bad first reply, then (for some lanes) a good one."""
    plans = {
        task.HINTS[0]: [WRONG, TRIAL_SQRT],
        task.HINTS[1]: [task.REFERENCE, task.REFERENCE],
        task.HINTS[2]: [PANICS, PANICS],
        task.HINTS[3]: [ENDLESS, UNSAFE],
    }

    def answer(request: Request) -> str:
        prompt = request.messages[1].content
        hint = next(h for h in plans if f"Strategy for this attempt: {h}" in prompt)
        attempt = (len(request.messages) - 1) // 2  # system, then user/assistant pairs
        return f"```rust\n{plans[hint][attempt]}\n```"

    return ScriptedAgent(itertools.repeat(answer))


def test_four_lanes_refuse_bad_counts_and_the_fastest_good_one_is_activated(
    example: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = example["task"]
    agent = by_hint(task)
    db = tmp_path / "runs.db"
    status = example["main"](
        agent, rounds=1, lanes=4, attempts=2, limit=3_000, store=str(db), call_timeout=0.5
    )
    assert status == 0
    corrections = {
        next(h for h in task.HINTS if h in r.messages[1].content): r.messages[-1].content
        for r in agent.requests
        if len(r.messages) > 2
    }
    assert "count_primes_below(2) returned 1, expected 0" in corrections[task.HINTS[0]]
    assert "index out of bounds" in corrections[task.HINTS[2]]
    assert "did not finish within its deadline of 0.5 s" in corrections[task.HINTS[3]]
    con = sqlite3.connect(db)
    refused = [row[0] or "" for row in con.execute("SELECT feedback FROM attempts")]
    con.close()
    assert any("unsafe" in f for f in refused)
    out = capsys.readouterr().out
    assert f"| 0    | {task.HINTS[0]}" in out and f"| 1    | {task.HINTS[1]}" in out
    assert task.HINTS[2] not in out and task.HINTS[3] not in out  # no revision in those lanes
    assert "count_primes_below(3000) = 430" in out


def test_a_rejected_key_stops_every_lane_with_status_2(
    example: dict[str, Any], tmp_path: Path
) -> None:
    rejected = Status(401, message="Incorrect API key provided.")
    with OpenAITestServer([rejected] * 8) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, model="test")
        status = example["main"](agent, lanes=3, limit=500, store=str(tmp_path / "runs.db"))
    assert status == 2
