"""The public surface is a decision: this pins it."""

from __future__ import annotations

import subprocess
import sys

import symbiont as sb

EXPECTED = [
    "Agent", "AgentError", "AttemptTrace", "BuildError", "BuildLimits", "CandidateError", "Cell",
    "CommandAgent", "ConfigError", "ContextOverflowError", "CrashError", "DeclarationError",
    "Declarations",
    "EvolveError", "EvolveInfo", "Functions", "LocalAgent", "Message", "OpenAIAgent", "Options",
    "PanicError", "Policy", "Reply", "Request", "Revision", "RevisionError", "RevisionHandle",
    "Runtime", "StageTimings", "SymbiontError", "TimeoutError", "ToolCallRecord",
    "ToolchainError", "Trace", "TransientAgentError", "Usage", "agent_from_env", "evolvable",
    "tools",
]  # fmt: skip


def test_all_is_pinned_and_sorted() -> None:
    assert sb.__all__ == EXPECTED
    assert sorted(sb.__all__) == sb.__all__
    for name in sb.__all__:
        assert getattr(sb, name) is not None


def test_every_exported_error_is_a_symbiont_error() -> None:
    errors = [getattr(sb, n) for n in sb.__all__ if n.endswith("Error")]
    assert len(errors) == 14
    for err in errors:
        assert issubclass(err, sb.SymbiontError), err
    assert issubclass(sb.TimeoutError, TimeoutError)
    assert issubclass(sb.PanicError, RuntimeError)
    assert issubclass(sb.DeclarationError, ValueError)
    assert issubclass(sb.TransientAgentError, sb.AgentError)


def test_import_is_light() -> None:
    code = (
        "import sys, symbiont; heavy = [m for m in ('openai', 'numpy', 'llama_cpp', "
        "'tree_sitter_rust', 'rich', 'ray') if m in sys.modules]; print(heavy)"
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
