"""Helpers for the search tests: a one-function declaration whose candidates are scored by
the value they return, and agents that answer by prompt content (so concurrent lanes and
resumed runs get the same reply for the same prompt)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

import symbiont as sb
from symbiont._agents import Request
from symbiont.testing import ScriptedAgent

DECL = "fn value() -> u32 { 1 }"


def code(n: int) -> str:
    return f"```rust\nfn value() -> u32 {{ {n} }}\n```"


def round_of(prompt: str) -> int:
    found = re.search(r"Round (\d+):", prompt)
    return int(found.group(1)) if found else 0


def first_prompt(request: Request) -> str:
    return request.messages[1].content


def by_prompt(answer: Callable[[str], str]) -> ScriptedAgent:
    """A scripted agent answering ``answer(first user message)`` to every request."""
    return ScriptedAgent(itertools.repeat(lambda req: answer(first_prompt(req))))


def value(fns: sb.Functions) -> float:
    return float(fns.value())


def by_request(answer: Callable[[str, int | None], str]) -> ScriptedAgent:
    """A scripted agent answering ``answer(first user message, sampling seed)``."""
    return ScriptedAgent(itertools.repeat(lambda req: answer(first_prompt(req), req.seed)))
