"""The local model's sample-then-check decoding (marked `model`: needs the `local` extra).

The grammar is asked about the sampled token only; a rejected token sends the step back to the
whole vocabulary with the grammar applied first. These tests check that the replies keep the
grammar's guarantees, that the fallback really runs (and does not abort the process, which is
what llama.cpp does when a grammar is made to accept a token it rejects), and that seeds still
reproduce a reply.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys

import pytest

import symbiont as sb
from symbiont._agents import Message, Reply, Request
from symbiont._agents._grammar import signature_head
from symbiont._validate import Rejection, validate

pytestmark = pytest.mark.model
pytest.importorskip("llama_cpp")

DECLARATION = "fn step(counter: &mut usize) { *counter += 1; }"
# A task that invites the one word the grammar forbids.
TASK = "Rewrite step to add 7 through a raw pointer inside an unsafe block."


def request(decls: sb.Declarations) -> Request:
    messages = (Message(role="user", content=TASK),)
    return Request(messages=messages, declarations=decls, task=TASK, current=decls.default_code)


def brace_depths(text: str) -> list[int]:
    """The brace depth after each brace outside string literals (the grammar's notion)."""
    depths, depth, in_string, escaped = [], 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "{}":
            depth += 1 if ch == "{" else -1
            depths.append(depth)
    return depths


def test_fast_path_replies_satisfy_the_grammar_over_seeds() -> None:
    decls = sb.evolvable(DECLARATION)
    head = signature_head(decls.functions[0])
    replies: list[Reply] = []
    agents = [sb.LocalAgent(seed=seed, max_tokens=80) for seed in (11, 12, 13, 14)]
    for agent in agents:
        replies.append(asyncio.run(agent.complete(request(decls))))
    for reply in replies:
        assert reply.text.startswith(head + "{"), reply.text
        assert "unsafe" not in reply.text, reply.text
        depths = brace_depths(reply.text)
        assert min(depths) >= 0 and depths[0] == 1, reply.text  # never closes what is not open
        # The body closes exactly once, at the end: nothing may follow the function.
        assert 0 not in depths[:-1], reply.text
        if reply.finish_reason == "stop":
            assert depths[-1] == 0 and reply.text.rstrip().endswith("}"), reply.text
        else:
            assert reply.finish_reason == "length"
            assert reply.usage.completion_tokens == 80
        if reply.finish_reason == "stop":
            result = validate(reply.text, decls)
            kind = result.kind if isinstance(result, Rejection) else "ok"
            assert kind not in ("no_code", "signature_mismatch"), (kind, reply.text)
    # At least one reply is complete, or the balanced-braces check above checked nothing.
    assert any(r.finish_reason == "stop" for r in replies), [r.text for r in replies]
    # The replies were drawn by the fast path: most steps never consulted the whole vocabulary.
    tokens = sum(r.usage.completion_tokens for r in replies)
    fallbacks = sum(a.fallbacks for a in agents)
    assert fallbacks < tokens / 2, (fallbacks, tokens)


def test_the_same_seed_gives_the_same_reply() -> None:
    decls = sb.evolvable(DECLARATION)
    first = asyncio.run(sb.LocalAgent(seed=21, max_tokens=24).complete(request(decls)))
    again = asyncio.run(sb.LocalAgent(seed=21, max_tokens=24).complete(request(decls)))
    other = asyncio.run(sb.LocalAgent(seed=22, max_tokens=24).complete(request(decls)))
    assert first.text == again.text
    assert other.text != first.text  # seed + n differs per request, and so do the replies


# A grammar no top-k token of this prompt can start: the first step, and the step after the
# closing `;` (where only the end of the text is allowed), must fall back to the whole vocabulary.
_FALLBACK = r"""
import re
from symbiont._agents._local import LocalAgent, _Decoder, _load

agent = LocalAgent(max_tokens=12)
llm, lock = _load(agent.model_path, agent.n_ctx, agent.n_threads)
grammar = 'root ::= "QXZJ" [0-9] [0-9]? ";"\n'
with lock:
    prompt = llm.tokenize(b"The capital of France is", add_bos=True, special=True)
    for seed in (1, 2, 3):
        decoder = _Decoder(llm, agent.sampling | {"temperature": 0.7}, seed, grammar)
        try:
            out = decoder.run(prompt, 12)
        finally:
            decoder.close()
        assert re.fullmatch(r"QXZJ[0-9][0-9]?;", out.text), out
        assert out.finish_reason == "stop", out
        assert out.fallbacks >= 2, out
        print(out.fallbacks, out.text)
"""


def test_a_grammar_outside_top_k_falls_back_without_aborting() -> None:
    # In a subprocess: a regression here is llama.cpp aborting the interpreter.
    out = subprocess.run([sys.executable, "-c", _FALLBACK], capture_output=True, text=True,
                         timeout=600, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert len(lines) == 3 and all(line.split()[1].startswith("QXZJ") for line in lines), lines
    assert "empty grammar stack" not in out.stderr


def test_the_decoding_loop_reports_tokens_as_it_writes() -> None:
    decls = sb.evolvable(DECLARATION)
    seen: list[tuple[int, float]] = []
    req = dataclasses.replace(request(decls), on_tokens=lambda n, rate: seen.append((n, rate)))
    reply = asyncio.run(sb.LocalAgent(seed=5, max_tokens=24).complete(req))
    counts = [n for n, _ in seen]
    assert counts[0] == 1, "the first token is reported as soon as it is sampled"
    assert counts == sorted(set(counts))
    assert counts[-1] == reply.usage.completion_tokens
    assert all(rate >= 0 for _, rate in seen)
