"""The sort example: its checks on hand-written Rust (std sorts found, wrong orders named),
and the example driven end to end by a scripted agent: a std sort, a wrong order, a panic and
an endless loop refused with the right feedback, the reference sort winning."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symbiont as sb
from symbiont._cli import examples_dir
from symbiont.testing import OpenAITestServer, ScriptedAgent, Status

STD = "fn sort(data: &mut [f64]) {\n    data.sort_unstable_by(|a, b| a.total_cmp(b));\n}"
STD_PATH = "fn sort(data: &mut [f64]) { <[f64]>::sort_by(data, |a, b| a.total_cmp(b)) }"
DESCENDING = """
fn sort(data: &mut [f64]) {
    // .sort() is not called here: a comment does not count
    for i in 1..data.len() {
        let mut j = i;
        while j > 0 && data[j - 1] < data[j] {
            data.swap(j - 1, j);
            j -= 1;
        }
    }
}
"""
PANICS = "fn sort(data: &mut [f64]) {\n    let i = data.len();\n    data[i] = 0.0;\n}"
ENDLESS = "fn sort(data: &mut [f64]) {\n    loop {\n        data[0] = -data[0];\n    }\n}"


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return runpy.run_path(str(examples_dir() / "sort" / "main.py"))


def fns(code: str) -> sb.Functions:
    return sb.Runtime(code, profile="debug").revision(0).fns


def test_std_sorts_are_found_in_calls_but_not_in_comments_or_names(
    example: dict[str, Any],
) -> None:
    calls = example["task"].std_sort_calls
    assert calls(STD) == ["sort_unstable_by"]
    assert calls(STD_PATH) == ["sort_by"]
    assert calls("fn f(d: &mut [f64]) { d.select_nth_unstable_by(3, g); d.sort(); }") == [
        "select_nth_unstable_by", "sort",
    ]  # fmt: skip
    assert calls(DESCENDING) == []
    assert calls('fn f(d: &mut [f64]) { my_sort(d); let s = "d.sort()"; }') == []
    assert calls(example["task"].REFERENCE) == [] and calls(example["task"].DEFAULT) == []


def test_the_evaluator_on_hand_written_sorts(example: dict[str, Any]) -> None:
    task = example["task"]
    data = task.datasets(500, seed=1)
    assert set(data) == {"uniform", "normal", "sorted", "reversed", "few unique", "nearly sorted"}
    assert all(len(xs) == 500 for xs in data.values())
    evaluate = task.make_evaluator(500, 3, seed=1)
    for code in (task.DEFAULT, task.REFERENCE):
        score = evaluate(fns(code))
        assert score.value > 0 and len(score.metrics) == 6
        assert score.feedback is not None and "few unique: " in score.feedback
    with pytest.raises(sb.Reject, match="calls std's sort_unstable_by: write the sorting"):
        evaluate(fns(STD))
    with pytest.raises(AssertionError, match=r"on the uniform data .* differs from numpy.sort"):
        evaluate(fns(DESCENDING))
    with pytest.raises(sb.PanicError, match="index out of bounds"):
        evaluate(fns(PANICS))
    reference = fns(task.REFERENCE)
    xs = np.random.default_rng(5).standard_normal(100_000)
    xs[::7] = -0.0
    got = xs.copy()
    reference.sort(got)
    assert np.array_equal(got, np.sort(xs))


def test_the_example_refuses_bad_sorts_then_keeps_the_reference(
    example: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = example["task"]
    fence = "```rust\n{}\n```".format
    replies = [STD, DESCENDING, PANICS, ENDLESS, task.REFERENCE]
    agent = ScriptedAgent([fence(r) for r in replies])
    status = example["main"](
        agent, rounds=1, attempts=5, size=300, runs=3, store=str(tmp_path / "runs.db"),
        call_timeout=0.5,
    )  # fmt: skip
    assert status == 0
    corrections = [r.messages[-1].content for r in agent.requests[1:]]
    assert "the code calls std's sort_unstable_by" in corrections[0]
    assert "on the uniform data (300 values) the result differs from numpy.sort" in corrections[1]
    assert "panicked at line 3" in corrections[2] and "index out of bounds" in corrections[2]
    assert "sort did not finish within its deadline of 0.5 s" in corrections[3]
    out = capsys.readouterr().out
    assert "best: revision 1," in out
    assert "| distribution " in out and "| revision 1 ms " in out and "| nearly sorted " in out


def test_a_rejected_key_ends_the_example_with_status_2(
    example: dict[str, Any], tmp_path: Path
) -> None:
    with OpenAITestServer([Status(401, message="Incorrect API key provided.")]) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, model="test")
        status = example["main"](agent, size=200, runs=1, store=str(tmp_path / "runs.db"))
        assert status == 2 and server.request_count == 1
