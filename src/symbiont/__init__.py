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

import contextlib
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
    ResumeError,
    RevisionError,
    StoreError,
    SymbiontError,
    TimeoutError,
    ToolchainError,
    TransientAgentError,
)

if TYPE_CHECKING:
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
    from symbiont._agents._local import LocalAgent
    from symbiont._cli._progress import progress
    from symbiont._decl import Declarations, evolvable
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

# Public name -> the private module that defines it. The errors above are imported at once
# (they are cheap and tracebacks name them publicly); everything else is imported on the first
# use of any of these names, so `import symbiont`, and every `symbiont` command that only
# reads a run store, do not pay for asyncio, the agents and the loader.
_LAZY = {
    "Agent": "symbiont._agents",
    "AttemptTrace": "symbiont._evolve",
    "Best": "symbiont._search",
    "Budget": "symbiont._search",
    "Cell": "symbiont._load",
    "CommandAgent": "symbiont._agents",
    "Declarations": "symbiont._decl",
    "Event": "symbiont._search",
    "EvolveInfo": "symbiont._evolve",
    "Functions": "symbiont._load",
    "HillClimb": "symbiont._search",
    "Islands": "symbiont._search",
    "Lanes": "symbiont._search",
    "Message": "symbiont._agents",
    "OpenAIAgent": "symbiont._agents",
    "Pareto": "symbiont._search",
    "Policy": "symbiont._validate",
    "PromptContext": "symbiont._search",
    "Reject": "symbiont._search",
    "Reply": "symbiont._agents",
    "Request": "symbiont._agents",
    "Revision": "symbiont._load",
    "RevisionHandle": "symbiont._load",
    "Runtime": "symbiont._runtime",
    "Score": "symbiont._search",
    "SearchRun": "symbiont._search",
    "StageTimings": "symbiont._evolve",
    "Timing": "symbiont._search",
    "Trace": "symbiont._evolve",
    "Usage": "symbiont._agents",
    "agent_from_env": "symbiont._agents",
    "default_prompt": "symbiont._search",
    "evolvable": "symbiont._decl",
    "measure": "symbiont._search",
}
# Loaded on first use of that name only: llama.cpp helpers, and the renderer (rich).
_ON_USE = {"LocalAgent": "symbiont._agents._local", "progress": "symbiont._cli._progress"}

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
            with contextlib.suppress(AttributeError, TypeError):  # builtins, slots
                obj.__module__ = __name__


_publish()


def _load() -> None:
    import importlib

    for name, module in _LAZY.items():
        globals()[name] = getattr(importlib.import_module(module), name)
    _publish()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        _load()
        return globals()[name]
    if name in _ON_USE:
        import importlib

        obj = getattr(importlib.import_module(_ON_USE[name]), name)
        obj.__module__ = __name__
        return obj
    raise AttributeError(f"module 'symbiont' has no attribute {name!r}")
