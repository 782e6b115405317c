"""The local agent's pieces that need no model: grammar text, prompts, path resolution."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

import symbiont as sb
from symbiont._agents import Message, Request
from symbiont._agents._grammar import build_grammar
from symbiont._agents._local import LocalAgent, completion_prompt
from symbiont._cli import examples_dir, list_examples
from symbiont._failures import Failure


def example_declarations() -> list[sb.Declarations]:
    return [
        sb.evolvable(runpy.run_path(str(examples_dir() / name / "main.py"))["DECLARATION"])
        for name in list_examples()
    ]


MULTI = sb.evolvable(
    """
const SCALE: f64 = 2.0;
/// Weighted sum.
fn dot(a: &[f64], b: &[f64]) -> f64 { 0.0 }
fn name(s: &str, c: char) -> String;
fn bump(x: &mut u32) { *x += 1; }
"""
)


@pytest.mark.parametrize("helpers", [False, True])
def test_grammar_starts_with_every_exact_signature(helpers: bool) -> None:
    for decls in [*example_declarations(), MULTI]:
        text = build_grammar(decls, helpers=helpers)
        for f in decls.functions:
            assert f'"{f.signature} " block' in text
        root = text.splitlines()[0]
        if helpers:
            assert "helper" in root
        else:
            assert root == "root ::= " + " ws ".join(f"f{i}" for i in range(len(decls)))


def test_grammar_parses_in_llama_cpp() -> None:
    grammar = pytest.importorskip("llama_cpp.llama_grammar")
    for decls in [*example_declarations(), MULTI]:
        for helpers in (False, True):
            grammar.LlamaGrammar.from_string(build_grammar(decls, helpers=helpers), verbose=False)


def test_completion_prompt_holds_task_previous_version_and_feedback() -> None:
    decls = sb.evolvable("/// Step.\nfn step(c: &mut usize) {\n    *c += 1;\n}")
    # The chat text is deliberately unrelated: the prompt is written from the fields alone.
    chat = (Message(role="user", content="Task: something else entirely"),)
    first = completion_prompt(
        Request(messages=chat, declarations=decls, task="Add seven.", current=decls.default_code)
    )
    assert "// Task: Add seven." in first
    assert "something else" not in first
    assert "// Previous version:\n//     fn step(c: &mut usize) {\n//         *c += 1;" in first
    assert "Functions to implement" not in first
    assert first.rstrip().endswith("//     }")
    failure = Failure(kind="check_failed", message="added 1, expected 7")
    second = completion_prompt(
        Request(
            messages=chat,
            declarations=decls,
            task="Add seven.",
            current=decls.default_code,
            rejected="fn step(c: &mut usize) { *c += 2; }",
            failure=failure,
        )
    )
    assert "// Rejected attempt:\n//     fn step(c: &mut usize) { *c += 2; }" in second
    assert "// added 1, expected 7" in second
    assert "Send the complete corrected code" not in second
    assert "```" not in second


def test_the_lane_gives_the_agent_task_code_and_last_failure_as_fields() -> None:
    from symbiont.testing import ScriptedAgent

    rt = sb.Runtime("fn step(c: &mut usize) { *c += 1; }")
    agent = ScriptedAgent(
        ["fn step(c: &mut usize) { *c += }", "fn step(c: &mut usize) { *c += 7; }"]
    )
    rt.evolve(agent, "Add seven.")
    first, second = agent.requests
    assert (first.task, first.current, first.rejected, first.failure) == (
        "Add seven.",
        "fn step(c: &mut usize) { *c += 1; }\n",
        None,
        None,
    )
    assert second.task == "Add seven."
    assert second.rejected == "fn step(c: &mut usize) { *c += }\n"
    assert second.failure is not None and second.failure.kind == "parse_error"
    assert second.failure.line == 1


def test_prelude_is_real_code_in_the_prompt() -> None:
    prompt = completion_prompt(
        Request(messages=(), declarations=MULTI, task="Go.", current=MULTI.default_code)
    )
    assert "\nconst SCALE: f64 = 2.0;\n" in prompt


def test_missing_model_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(sb.ConfigError, match=r"no GGUF model at .*nope\.gguf"):
        LocalAgent(tmp_path / "nope.gguf")


def test_model_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "m.gguf"
    fake.write_bytes(b"GGUF")
    monkeypatch.setenv("SYMBIONT_MODEL_PATH", str(fake))
    agent = LocalAgent()
    assert agent.model_path == fake
    assert agent.name == "local:m.gguf"
    monkeypatch.setenv("SYMBIONT_MODEL_PATH", str(tmp_path / "missing.gguf"))
    with pytest.raises(sb.ConfigError, match="SYMBIONT_MODEL_PATH"):
        LocalAgent()


def test_unloadable_file_is_a_config_error(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    fake = tmp_path / "broken.gguf"
    fake.write_bytes(b"not a model at all")
    with pytest.raises(sb.ConfigError, match="could not load"):
        LocalAgent(fake).load()


def test_bad_prompt_style() -> None:
    with pytest.raises(sb.ConfigError, match="prompt_style"):
        LocalAgent(prompt_style="poem")  # type: ignore[arg-type]
