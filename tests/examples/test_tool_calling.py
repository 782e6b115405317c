"""The tool-calling example: the model probes the hidden rule through a real OpenAI client and
a local server whose scripted model calls the tool; without an endpoint it stops cleanly."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import symbiont as sb
from symbiont._cli import examples_dir
from symbiont.testing import OpenAITestServer, Text, ToolCall

sys.path.insert(0, str(examples_dir() / "tool_calling"))
import tool_calling_task as task

MAIN = examples_dir() / "tool_calling" / "main.py"
RIGHT = "fn transform(n: i64) -> i64 {\n    3 * n + 7\n}"
WRONG = "fn transform(n: i64) -> i64 {\n    3 * n\n}"
PANICS = 'fn transform(n: i64) -> i64 {\n    if n < 0 { panic!("negative") }\n    n\n}'


def fns(code: str) -> sb.Functions:
    rt = sb.Runtime("fn transform(n: i64) -> i64;")
    rt.register(code, activate=True)
    return rt.fns


def test_the_check_accepts_the_rule_and_names_disagreements() -> None:
    assert task.check(fns(RIGHT)) == 1.0
    with pytest.raises(sb.Reject, match=r"21 of 21 values .* transform\(-10\) returned -30"):
        task.check(fns(WRONG))
    off_by_one = "fn transform(n: i64) -> i64 { if n == 4 { 0 } else { 3 * n + 7 } }"
    with pytest.raises(sb.Reject, match=r"1 of 21 values .* transform\(4\) returned 0\."):
        task.check(fns(off_by_one))


def test_the_model_probes_then_writes_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example: dict[str, Any] = runpy.run_path(str(MAIN))
    script = [
        Text(None, tool_calls=(ToolCall("probe", {"n": 0}), ToolCall("probe", {"n": 1}))),
        f"```rust\n{WRONG}\n```",
        f"```rust\n{PANICS}\n```",
        Text(None, tool_calls=(ToolCall("probe", {"n": -2}),)),
        f"```rust\n{RIGHT}\n```",
    ]
    with OpenAITestServer(script) as server:
        base = sb.OpenAIAgent(base_url=server.base_url, model="test")
        agent = example["probing_agent"](base, "k")
        assert example["main"](agent, rounds=1, store=str(tmp_path / "runs.db")) == 0
        requests = server.requests
    assert [t["function"]["name"] for t in requests[0]["tools"]] == ["probe"]
    assert "3 * n" not in json.dumps(requests[0])  # no specification in the prompt
    results = [m["content"] for m in requests[1]["messages"] if m["role"] == "tool"]
    assert results == ["7", "10"]
    corrections = [r["messages"][-1]["content"] for r in requests[2:4]]
    assert "21 of 21 values in -10..=10 disagree with the hidden rule" in corrections[0]
    assert "negative" in corrections[1] and "line 2" in corrections[1]
    assert [m["content"] for m in requests[4]["messages"] if m["role"] == "tool"][-1] == "1"
    out = capsys.readouterr().out
    assert "the model called probe(0) -> 7\nthe model called probe(1) -> 10\n" in out
    assert "the model called probe(-2) -> 1\n" in out
    assert "reproduces the hidden rule on -10..=10 after 3 attempt(s)" in out
    assert "transform(100) = 307 | probe(100) = 307" in out


def test_without_an_endpoint_it_says_so_and_exits_cleanly() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("BASE_URL", "SYMBIONT_AGENT_COMMAND")}
    for argv in ([str(MAIN)], ["-m", "symbiont", "example", "tool_calling"]):
        out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env,
                             timeout=120, check=False)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "needs an agent that can call tools" in out.stdout
