"""symbiont: evolve native Rust functions with an LLM inside a running Python process.

    import symbiont as sb
    rt = sb.Runtime("fn step(counter: &mut usize) { *counter += 1; }")
    rt.fns.step(counter := sb.Cell(0, "usize"))
    rt.evolve(sb.agent_from_env(), "Increment by a constant in 5..20.")

This module is the public front: every supported name is in ``__all__``; the layers below are
private packages (``symbiont.testing`` and ``symbiont.tools`` are public too). Layers, in
import order (imports only point down, checked by tests/test_layers.py; docs/architecture.md
explains each):

    _errors, _failures, _prompts, _config   the error tree, failure records, LLM wording
    _decl      Rust declaration parsing, boundary types, signature normalisation
    _codegen   generated crate source: prelude + candidate + CPython glue + panic capture
    _compile   rustc invocation, flags per profile, content-hash cache, diagnostics
    _load      loading revisions, dispatchers, revision registry, unloading
    _validate  reply -> code extraction, edit replies, parse, signature check, policy scan
    _agents    OpenAI-compatible, local llama.cpp (+ grammar), command agent, tool loop
    _evolve    the constrained-generation loop, retry ladder, traces, batch lanes
    _checks    running a user's check; _isolation/_worker run it in a worker process
    _options   the validated options of a Runtime
    _runtime   the Runtime, which orchestrates all of the above
    _cli       the `symbiont` command
    tools      ready-made tools for agents, built on a Runtime (public)

Nothing in _decl.._load knows an LLM exists.
"""

import contextlib
from typing import TYPE_CHECKING, Any

from symbiont import tools  # a public module: sb.tools.call(rt), sb.tools.try_code(rt)
from symbiont._agents import (
    Agent,
    CommandAgent,
    Message,
    OpenAIAgent,
    Reply,
    Request,
    ToolCallRecord,
    Usage,
    agent_from_env,
)
from symbiont._compile import BuildLimits
from symbiont._decl import Declarations, evolvable
from symbiont._errors import (
    AgentError,
    BuildError,
    CandidateError,
    ConfigError,
    ContextOverflowError,
    CrashError,
    DeclarationError,
    EvolveError,
    PanicError,
    RevisionError,
    SymbiontError,
    TimeoutError,
    ToolchainError,
    TransientAgentError,
)
from symbiont._evolve import AttemptTrace, EvolveInfo, StageTimings, Trace
from symbiont._load import Cell, Functions, Revision, RevisionHandle
from symbiont._options import Options
from symbiont._runtime import Runtime
from symbiont._validate import Policy

if TYPE_CHECKING:
    from symbiont._agents._local import LocalAgent

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentError",
    "AttemptTrace",
    "BuildError",
    "BuildLimits",
    "CandidateError",
    "Cell",
    "CommandAgent",
    "ConfigError",
    "ContextOverflowError",
    "CrashError",
    "DeclarationError",
    "Declarations",
    "EvolveError",
    "EvolveInfo",
    "Functions",
    "LocalAgent",
    "Message",
    "OpenAIAgent",
    "Options",
    "PanicError",
    "Policy",
    "Reply",
    "Request",
    "Revision",
    "RevisionError",
    "RevisionHandle",
    "Runtime",
    "StageTimings",
    "SymbiontError",
    "TimeoutError",
    "ToolCallRecord",
    "ToolchainError",
    "Trace",
    "TransientAgentError",
    "Usage",
    "agent_from_env",
    "evolvable",
    "tools",
]


def __dir__() -> list[str]:
    return list(__all__)


def _publish() -> None:
    # Tracebacks and reprs name the public path (symbiont.PanicError), not the private module.
    for name in __all__:
        obj = globals().get(name)
        if isinstance(obj, type) or callable(obj):
            # Builtins and some slotted objects refuse it: they keep their own name.
            with contextlib.suppress(AttributeError, TypeError):
                obj.__module__ = __name__


_publish()


def __getattr__(name: str) -> Any:
    # The local agent's module pulls in llama.cpp helpers: loaded on first use only.
    if name == "LocalAgent":
        from symbiont._agents._local import LocalAgent

        LocalAgent.__module__ = __name__
        return LocalAgent
    raise AttributeError(f"module 'symbiont' has no attribute {name!r}")
