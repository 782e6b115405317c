"""Agents: OpenAI-compatible, local llama.cpp, command agent; one protocol in front of them.

Every agent implements :class:`Agent`: ``await agent.complete(Request(messages=...))`` returns a
:class:`Reply` and failures follow one error policy (transient, context overflow, fatal), so
the evolve loop treats them alike. :func:`agent_from_env` picks one from ``BASE_URL`` /
``API_KEY`` / ``MODEL``, ``SYMBIONT_AGENT_COMMAND``, or falls back to the embedded local model.
Test doubles live in :mod:`symbiont.testing`.
"""

# Layer order inside this package (imports point down):
#   _protocol  <-  _tools  <-  _openai, _command, _local  <-  _env  <-  this module.
# openai and llama_cpp are imported on first use only, so `import symbiont` stays fast.

from __future__ import annotations

from typing import Any

from symbiont._agents._command import CommandAgent
from symbiont._agents._env import agent_from_env
from symbiont._agents._openai import OpenAIAgent
from symbiont._agents._protocol import Agent, Message, Reply, Request, ToolCallRecord, Usage
from symbiont._agents._tools import Tool, tool_from_function

# LocalAgent is public too but stays out of __all__: a star import would load llama_cpp.
__all__ = [
    "Agent",
    "CommandAgent",
    "Message",
    "OpenAIAgent",
    "Reply",
    "Request",
    "Tool",
    "ToolCallRecord",
    "Usage",
    "agent_from_env",
    "tool_from_function",
]


def __getattr__(name: str) -> Any:
    # LocalAgent drags in llama_cpp (a large native library): load it only when asked for.
    if name == "LocalAgent":
        from importlib import import_module

        return import_module("symbiont._agents._local").LocalAgent
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
