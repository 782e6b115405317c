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
    _store     the SQLite run store: runs, revisions, attempts, evaluations, events
    _validate  reply -> code extraction, edit replies, parse, signature check, policy scan
    _agents    OpenAI-compatible, local llama.cpp (+ grammar), command agent, tool loop
    _evolve    the constrained-generation loop, retry ladder, traces, batch lanes
    _checks    running a user's check; _isolation/_worker run it in a worker process
    _search    rounds of lanes toward a score: strategies, budgets, evaluations, resume
    _options   the validated options of a Runtime
    _runtime   the Runtime, which orchestrates all of the above
    _cli       the `symbiont` command
    tools      ready-made tools for agents, built on a Runtime (public)

Nothing in _decl.._load, nor the store, knows an LLM exists.
"""

import contextlib
import sys
import sysconfig
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
    from symbiont import tools
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
    from symbiont._agents._local import LocalAgent
    from symbiont._cli._progress import progress
    from symbiont._compile import BuildLimits
    from symbiont._decl import Declarations, evolvable
    from symbiont._evolve import AttemptTrace, EvolveInfo, StageTimings, Trace
    from symbiont._load import Cell, Functions, Revision, RevisionHandle, code_of
    from symbiont._options import Options
    from symbiont._prompts import PromptContext, default_prompt
    from symbiont._runtime import Runtime
    from symbiont._search import (
        Best,
        Budget,
        Event,
        HillClimb,
        Islands,
        Lanes,
        Pareto,
        Reject,
        Score,
        SearchRun,
        Timing,
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
    "BuildLimits": "symbiont._compile",
    "Cell": "symbiont._load",
    "CommandAgent": "symbiont._agents",
    "Declarations": "symbiont._decl",
    "Event": "symbiont._events",
    "EvolveInfo": "symbiont._evolve",
    "Functions": "symbiont._load",
    "HillClimb": "symbiont._search",
    "Islands": "symbiont._search",
    "Lanes": "symbiont._search",
    "Message": "symbiont._agents",
    "OpenAIAgent": "symbiont._agents",
    "Options": "symbiont._options",
    "Pareto": "symbiont._search",
    "Policy": "symbiont._validate",
    "PromptContext": "symbiont._prompts",
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
    "ToolCallRecord": "symbiont._agents",
    "Trace": "symbiont._evolve",
    "Usage": "symbiont._agents",
    "agent_from_env": "symbiont._agents",
    "default_prompt": "symbiont._prompts",
    "evolvable": "symbiont._decl",
    "code_of": "symbiont._load",
    "measure": "symbiont._search",
}
# Loaded on first use of that name only: llama.cpp helpers, and the renderer (rich).
_ON_USE = {"LocalAgent": "symbiont._agents._local", "progress": "symbiont._cli._progress"}
# Public modules, imported on first use (``sb.tools.call(rt)``).
_MODULES = {"tools": "symbiont.tools"}

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentError",
    "AttemptTrace",
    "Best",
    "Budget",
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
    "Options",
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
    "ToolCallRecord",
    "ToolchainError",
    "Trace",
    "TransientAgentError",
    "Usage",
    "agent_from_env",
    "code_of",
    "default_prompt",
    "evolvable",
    "measure",
    "progress",
    "tools",
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

# The native glue needs a CPython with the GIL: refuse another interpreter at import, as the
# loader does when it is imported (the names above load it lazily); it words the refusal.
if sysconfig.get_config_var("Py_GIL_DISABLED") or sys.implementation.name != "cpython":
    import symbiont._load  # noqa: F401  # raises ToolchainError naming the problem


def _resolve_lazy_names() -> None:
    import importlib

    for name, module in _LAZY.items():
        globals()[name] = getattr(importlib.import_module(module), name)
    _publish()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        _resolve_lazy_names()
        return globals()[name]
    if name in _ON_USE:
        import importlib

        obj = getattr(importlib.import_module(_ON_USE[name]), name)
        obj.__module__ = __name__
        return obj
    if name in _MODULES:
        import importlib

        return importlib.import_module(_MODULES[name])
    raise AttributeError(f"module 'symbiont' has no attribute {name!r}")
