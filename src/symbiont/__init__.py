"""symbiont: evolve native Rust functions with an LLM inside a running Python process.

    import symbiont as sb
    rt = sb.Runtime("fn step(counter: &mut usize) { *counter += 1; }")
    rt.fns.step(counter := sb.Cell(0, "usize"))
    rt.evolve(sb.agent_from_env(), "Increment by a constant in 5..20.")

Layers (imports only point down; nothing in decl..load knows an LLM exists):

    decl      Rust declaration parsing, boundary types, signature normalisation
    codegen   generated crate source: prelude + candidate + CPython glue + panic capture
    build     rustc invocation, flags per profile, content-hash cache, diagnostics
    load      loading revisions, dispatchers, revision registry, unloading
    validate  reply -> code extraction, tree-sitter parse, signature check, policy scan
    agents    OpenAI-compatible, local llama.cpp (+ grammar), command agent
    evolve    the constrained-generation loop, retry ladder, traces, batch lanes
    _runtime  the Runtime, which orchestrates all of the above
    cli       the `symbiont` command
"""

from typing import TYPE_CHECKING, Any

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
from symbiont._runtime import Runtime
from symbiont.agents import (
    Agent,
    CommandAgent,
    Message,
    OpenAIAgent,
    Reply,
    Request,
    Usage,
    agent_from_env,
)
from symbiont.decl import Declarations, evolvable
from symbiont.evolve import AttemptTrace, EvolveInfo, StageTimings, Trace
from symbiont.load import Cell, Functions, Revision, RevisionHandle
from symbiont.validate import Policy

if TYPE_CHECKING:
    from symbiont.agents._local import LocalAgent

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentError",
    "AttemptTrace",
    "BuildError",
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
    "ToolchainError",
    "Trace",
    "TransientAgentError",
    "Usage",
    "agent_from_env",
    "evolvable",
]


def __getattr__(name: str) -> Any:
    # The local agent's module pulls in llama.cpp helpers: loaded on first use only.
    if name == "LocalAgent":
        from symbiont.agents._local import LocalAgent

        return LocalAgent
    raise AttributeError(f"module 'symbiont' has no attribute {name!r}")
