"""The public surface is a decision: this pins it."""

from __future__ import annotations

import subprocess
import sys

import symbiont as sb

EXPECTED = [
    "Agent", "AgentError", "AttemptTrace", "Best", "Budget", "BuildError", "BuildLimits",
    "CandidateError", "Cell", "CommandAgent", "ConfigError", "ContextOverflowError",
    "CrashError", "DeclarationError", "Declarations", "Event", "EvolveError", "EvolveInfo",
    "Functions", "HillClimb", "Islands", "Lanes", "LocalAgent", "Message", "OpenAIAgent",
    "Options", "PanicError", "Pareto", "Policy", "PromptContext", "Reject", "Reply", "Request",
    "ResumeError", "Revision", "RevisionError", "RevisionHandle", "Runtime", "Score",
    "SearchRun", "StageTimings", "StoreError", "SymbiontError", "TimeoutError", "Timing",
    "ToolCallRecord", "ToolchainError", "Trace", "TransientAgentError", "Usage",
    "agent_from_env", "code_of", "default_prompt", "evolvable", "measure", "progress", "tools",
]  # fmt: skip


def test_all_is_pinned_and_sorted() -> None:
    assert sb.__all__ == EXPECTED
    assert sorted(sb.__all__) == sb.__all__
    for name in sb.__all__:
        assert getattr(sb, name) is not None


def test_every_exported_error_is_a_symbiont_error() -> None:
    errors = [getattr(sb, n) for n in sb.__all__ if n.endswith("Error")]
    assert len(errors) == 16
    for err in errors:
        assert issubclass(err, sb.SymbiontError), err
    assert issubclass(sb.TimeoutError, TimeoutError)
    assert issubclass(sb.PanicError, RuntimeError)
    assert issubclass(sb.DeclarationError, ValueError)
    assert issubclass(sb.TransientAgentError, sb.AgentError)


def test_import_is_light() -> None:
    code = (
        "import sys, symbiont; heavy = [m for m in ('openai', 'numpy', 'llama_cpp', "
        "'tree_sitter_rust', 'rich', 'ray', 'starlette', 'uvicorn') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_dir_shows_only_the_public_names() -> None:
    code = "import symbiont; print(sorted(dir(symbiont)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == repr(sorted(EXPECTED))


def test_public_classes_name_the_public_module() -> None:
    assert repr(sb.PanicError) == "<class 'symbiont.PanicError'>"
    assert sb.Runtime.__module__ == "symbiont"
    for name in sb.__all__:
        obj = getattr(sb, name)
        if isinstance(obj, type):
            assert obj.__module__ == "symbiont", name


def test_a_lazy_name_names_the_public_module_when_first_resolved() -> None:
    # In a fresh interpreter: each name's first access is the one that loads it.
    code = (
        "import symbiont as sb\n"
        "print(sb.Budget.__module__, sb.progress.__module__, sb.default_prompt.__module__,\n"
        "      sb.Options.__module__, sb.tools.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["symbiont"] * 4 + ["symbiont.tools"]


def test_importing_a_layer_first_does_not_break_the_lazy_names() -> None:
    # Importing `symbiont._load` sets the package attribute `_load`: the lazy loader must not
    # be named like any layer.
    code = (
        "import symbiont._load, symbiont._search\nimport symbiont as sb\nprint(sb.Runtime.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Runtime"


def test_every_public_name_is_either_eager_or_lazy() -> None:
    lazy = set(sb._LAZY) | set(sb._ON_USE) | set(sb._MODULES)
    eager = {n for n in sb.__all__ if n.endswith("Error")}
    assert lazy | eager == set(sb.__all__) and not lazy & eager


def test_a_store_command_imports_no_layer_below_the_store() -> None:
    # `symbiont show` must start fast: reading a run store needs neither asyncio nor the
    # agents, the compiler or the loader.
    code = (
        "import sys\nfrom symbiont._cli import main\n"
        "main(['runs', '--store', '/nonexistent/runs.db'])\n"
        "print(sorted(m for m in ('asyncio', 'symbiont._runtime', 'symbiont._agents', "
        "'symbiont._load', 'symbiont._compile') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
