"""The bundled examples, run end to end against the real OpenAI client and a local
OpenAI-protocol server with scripted replies (the real model runs in tests/model)."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import symbiont as sb
from symbiont._cli import examples_dir, list_examples
from symbiont.testing import OpenAITestServer, Status

ROOT = Path(__file__).resolve().parents[2]


def load(name: str) -> dict[str, Any]:
    return runpy.run_path(str(examples_dir() / name / "main.py"))


def agent(server: OpenAITestServer) -> sb.OpenAIAgent:
    return sb.OpenAIAgent(base_url=server.base_url, model="test")


def test_examples_are_listed() -> None:
    assert {"counter", "fizzbuzz"} <= set(list_examples())
    for name in list_examples():
        assert (examples_dir() / name / "README.md").is_file()


def test_counter_rejects_a_wrong_step_then_evolves(capsys: pytest.CaptureFixture[str]) -> None:
    counter = load("counter")
    script = [
        "```rust\nfn step(counter: &mut usize) {\n    *counter += 2;\n}\n```",
        "```rust\n/// Advance the counter by one step.\n"
        "fn step(c: &mut usize) {\n    *c += 7;\n}\n```",
    ]
    with OpenAITestServer(script) as server:
        assert counter["main"](agent(server)) == 0
        feedback = server.requests[1]["messages"][-1]["content"]
    assert "left counter = 2; it must add a constant between 5 and 19" in feedback
    out = capsys.readouterr().out
    assert "revision 0: step(counter) -> counter = 1" in out
    assert "*c += 7;" in out
    assert "step(counter) -> counter = 8" in out


def test_fizzbuzz_feeds_failures_back_until_all_pass(capsys: pytest.CaptureFixture[str]) -> None:
    fizzbuzz = load("fizzbuzz")
    wrong = (
        '```rust\nfn fizzbuzz(n: u32) -> String {\n    if n % 3 == 0 { "Fizz".into() }\n'
        '    else if n % 5 == 0 { "Buzz".into() }\n    else { n.to_string() }\n}\n```'
    )
    panicky = (
        '```rust\nfn fizzbuzz(n: u32) -> String {\n    let v = ["x"];\n'
        "    v[n as usize].into()\n}\n```"
    )
    right = (
        "```rust\nfn fizzbuzz(n: u32) -> String {\n    match (n % 3, n % 5) {\n"
        '        (0, 0) => "FizzBuzz".to_string(),\n        (0, _) => "Fizz".to_string(),\n'
        '        (_, 0) => "Buzz".to_string(),\n        _ => n.to_string(),\n    }\n}\n```'
    )
    with OpenAITestServer([wrong, panicky, right]) as server:
        assert fizzbuzz["main"](agent(server)) == 0
        corrections = [r["messages"][-1]["content"] for r in server.requests[1:]]
    assert "6 of 100 test cases fail" in corrections[0]
    assert "fizzbuzz(15) returned 'Fizz', expected 'FizzBuzz'" in corrections[0]
    assert "panicked at line 3" in corrections[1]
    out = capsys.readouterr().out
    assert "passes all 100 cases after 3 attempt(s)" in out
    assert "1, 2, Fizz, 4, Buzz, Fizz, 7, 8, Fizz, Buzz, 11, Fizz, 13, 14, FizzBuzz" in out


def test_fizzbuzz_starts_a_new_round_with_the_last_failures() -> None:
    fizzbuzz = load("fizzbuzz")
    wrong = "```rust\nfn fizzbuzz(n: u32) -> String { n.to_string() }\n```"
    right = (
        '```rust\nfn fizzbuzz(n: u32) -> String {\n    if n % 15 == 0 { "FizzBuzz".into() }\n'
        '    else if n % 3 == 0 { "Fizz".into() } else if n % 5 == 0 { "Buzz".into() }\n'
        "    else { n.to_string() }\n}\n```"
    )
    with OpenAITestServer([wrong, wrong, right]) as server:
        assert fizzbuzz["main"](agent(server), attempts=1) == 0
        second_round_prompt = server.requests[1]["messages"][1]["content"]
    assert "A previous attempt failed the test suite" in second_round_prompt


def test_cli_runs_an_example_against_an_endpoint_from_the_environment() -> None:
    script = ["```rust\nfn step(counter: &mut usize) { *counter += 11; }\n```"]
    with OpenAITestServer(script) as server:
        env = {**os.environ, "BASE_URL": server.base_url, "MODEL": "test", "API_KEY": "k"}
        out = subprocess.run(
            [sys.executable, "-m", "symbiont", "example", "counter"],
            capture_output=True, text=True, env=env, timeout=300, check=False,
        )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "step(counter) -> counter = 12" in out.stdout


def test_cli_lists_examples_and_rejects_unknown_ones() -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "symbiont", "example"], capture_output=True, text=True, check=True
    )
    lines = {line.split()[0]: line for line in listing.stdout.splitlines() if line.strip()}
    for name in list_examples():
        # One line per example: its name and what it shows (the first line of its docstring).
        assert name in lines and len(lines[name].split()) > 3, listing.stdout
    assert "the smallest complete symbiont run" in lines["counter"]
    bad = subprocess.run(
        [sys.executable, "-m", "symbiont", "example", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "unknown example 'nope'" in bad.stderr


@pytest.mark.parametrize("name", ["fizzbuzz", "counter"])
def test_a_rejected_key_ends_the_rounds_at_once(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    example = load(name)
    rejected = Status(401, message="Incorrect API key provided.")
    with OpenAITestServer([rejected] * 3) as server:
        assert example["main"](agent(server), rounds=3) == 2
        assert server.request_count == 1  # not one request per round
    captured = capsys.readouterr()
    assert "Incorrect API key provided" in captured.out + captured.err


def test_every_example_names_its_declaration_and_prompt() -> None:
    # The model tests build the grammar and a prompt from these for every example.
    import runpy

    from symbiont._cli import examples_dir

    for name in list_examples():
        namespace = runpy.run_path(str(examples_dir() / name / "main.py"))
        assert isinstance(namespace.get("DECLARATION"), str), name
        assert isinstance(namespace.get("PROMPT"), str) and namespace["PROMPT"], name
