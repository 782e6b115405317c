"""symbiont: evolve native Rust functions with an LLM inside a running Python process.

    import symbiont as sb
    rt = sb.Runtime("fn step(counter: &mut usize) { *counter += 1; }")
    rt.fns.step(counter := sb.Cell(0, "usize"))
    rt.evolve(sb.agent_from_env(), "Increment by a constant in 5..20.")

This module is the public front: every supported name is in ``__all__``; the layers below are
private packages (``symbiont.testing`` is public too). Layers, in import order (imports only
point down; nothing in _decl.._load knows an LLM exists):

    _decl      Rust declaration parsing, boundary types, signature normalisation
    _codegen   generated crate source: prelude + candidate + CPython glue + panic capture
    _compile   rustc invocation, flags per profile, content-hash cache, diagnostics
    _load      loading revisions, dispatchers, revision registry, unloading
    _validate  reply -> code extraction, tree-sitter parse, signature check, policy scan
    _agents    OpenAI-compatible, local llama.cpp (+ grammar), command agent
    _evolve    the constrained-generation loop, retry ladder, traces, batch lanes
    _store     the SQLite run store: runs, revisions, attempts, evaluations, events
    _search    rounds of lanes toward a score: strategies, budgets, prompts, resume
    _runtime   the Runtime, which orchestrates all of the above
    _cli       the `symbiont` command
"""

from typing import TYPE_CHECKING, Any

from symbiont._agents import (
    Agent,
    CommandAgent,
    Message,
    OpenAIAgent,
    Reply,
    Request,
    Usage,
    agent_from_env,
)
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
    ResumeError,
    RevisionError,
    StoreError,
    SymbiontError,
    TimeoutError,
    ToolchainError,
    TransientAgentError,
)
from symbiont._evolve import AttemptTrace, EvolveInfo, StageTimings, Trace
from symbiont._load import Cell, Functions, Revision, RevisionHandle
from symbiont._runtime import Runtime
from symbiont._search import (
    Best,
    Budget,
    Event,
    HillClimb,
    Islands,
    Lanes,
    Pareto,
    PromptContext,
    Reject,
    Score,
    SearchRun,
    Timing,
    default_prompt,
    measure,
)
from symbiont._validate import Policy

if TYPE_CHECKING:
    from symbiont._agents._local import LocalAgent
    from symbiont._cli._progress import progress

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentError",
    "AttemptTrace",
    "Best",
    "Budget",
    "BuildError",
    "CandidateError",
    "Cell",
    "CommandAgent",
    "ConfigError",
    "ContextOverflowError",
    "CrashError",
    "DeclarationError",
    "Declarations",
    "Event",
    "EvolveError",
    "EvolveInfo",
    "Functions",
    "HillClimb",
    "Islands",
    "Lanes",
    "LocalAgent",
    "Message",
    "OpenAIAgent",
    "PanicError",
    "Pareto",
    "Policy",
    "PromptContext",
    "Reject",
    "Reply",
    "Request",
    "ResumeError",
    "Revision",
    "RevisionError",
    "RevisionHandle",
    "Runtime",
    "Score",
    "SearchRun",
    "StageTimings",
    "StoreError",
    "SymbiontError",
    "TimeoutError",
    "Timing",
    "ToolchainError",
    "Trace",
    "TransientAgentError",
    "Usage",
    "agent_from_env",
    "default_prompt",
    "evolvable",
    "measure",
    "progress",
]


def __dir__() -> list[str]:
    return list(__all__)


def _publish() -> None:
    # Tracebacks and reprs name the public path (symbiont.PanicError), not the private module.
    for name in __all__:
        obj = globals().get(name)
        if isinstance(obj, type) or callable(obj):
            try:
                obj.__module__ = __name__
            except (AttributeError, TypeError):  # pragma: no cover - builtins, slots
                pass


_publish()


def __getattr__(name: str) -> Any:
    # The local agent's module pulls in llama.cpp helpers: loaded on first use only.
    if name == "LocalAgent":
        from symbiont._agents._local import LocalAgent

        LocalAgent.__module__ = __name__
        return LocalAgent
    if name == "progress":
        # The renderer lives with the CLI (rich is imported when it first draws).
        from symbiont._cli._progress import progress

        progress.__module__ = __name__
        return progress
    raise AttributeError(f"module 'symbiont' has no attribute {name!r}")
