"""CommandAgent running real small Python programs."""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from symbiont._agents import Agent, CommandAgent, Message, Reply, Request, Usage
from symbiont._agents._command import render_conversation
from symbiont._errors import AgentError, ConfigError, TransientAgentError

CONVERSATION = Request(
    messages=(
        Message(role="system", content="You write Rust."),
        Message(role="user", content="Implement step.\nKeep it short."),
        Message(role="assistant", content="fn step() {}"),
        Message(role="user", content="Again."),
    )
)

EXPECTED_STDIN = (
    "### SYSTEM\nYou write Rust.\n\n"
    "### USER\nImplement step.\nKeep it short.\n\n"
    "### ASSISTANT\nfn step() {}\n\n"
    "### USER\nAgain.\n\n"
)


def program(tmp_path: Path, source: str, name: str = "prog.py") -> list[str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return [sys.executable, str(path)]


def complete(agent: CommandAgent, request: Request = CONVERSATION) -> Reply:
    return asyncio.run(agent.complete(request))


def is_gone(pid: int) -> bool:
    # A killed grandchild is re-parented; until its new parent reaps it, it is a zombie.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if is_gone(pid):
            return True
        time.sleep(0.02)
    return is_gone(pid)


def test_stdin_is_the_rendered_conversation(tmp_path: Path) -> None:
    argv = program(tmp_path, "import sys; sys.stdout.write(sys.stdin.read())")
    agent = CommandAgent(argv)
    reply = complete(agent)
    assert reply.text == EXPECTED_STDIN == render_conversation(CONVERSATION.messages)
    assert reply.usage == Usage(prompt_tokens=0, completion_tokens=0, requests=1)


def test_reply_is_stdout(tmp_path: Path) -> None:
    argv = program(
        tmp_path,
        """
        import sys
        sys.stdin.read()
        print("fn step(counter: &mut usize) { *counter += 7; }")
        print("done", file=sys.stderr)
        """,
    )
    # A string command is split like a shell would, without running one.
    agent = CommandAgent(shlex.join(argv))
    assert isinstance(agent, Agent)
    assert agent.name == f"command:{os.path.basename(sys.executable)}"
    reply = complete(agent)
    assert reply.text == "fn step(counter: &mut usize) { *counter += 7; }\n"


def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    argv = program(tmp_path, "import sys; sys.stdout.buffer.write(b'ok \\xff end')")
    assert complete(CommandAgent(argv)).text == "ok \ufffd end"


def test_env_is_added_and_cwd_is_used(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    argv = program(
        tmp_path,
        "import os; print(os.environ['SYMBIONT_TEST_VAR'], 'PATH' in os.environ, os.getcwd())",
    )
    agent = CommandAgent(argv, env={"SYMBIONT_TEST_VAR": "hello"}, cwd=str(workdir))
    value, has_path, cwd = complete(agent).text.split()
    assert (value, has_path) == ("hello", "True")
    assert os.path.samefile(cwd, workdir)
    assert "hello" not in repr(agent)


def test_nonzero_exit_reports_status_and_stderr_tail(tmp_path: Path) -> None:
    argv = program(
        tmp_path,
        """
        import sys
        for i in range(100):
            print(f"log line {i}", file=sys.stderr)
        print("fatal: model overloaded", file=sys.stderr)
        sys.exit(3)
        """,
    )
    with pytest.raises(AgentError) as info:
        complete(CommandAgent(argv))
    error = info.value
    assert type(error) is AgentError
    message = str(error)
    assert "exited with status 3" in message
    assert "fatal: model overloaded" in message
    assert "log line 99" in message
    assert "log line 0\n" not in message


def test_timeout_kills_the_program_and_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    argv = program(
        tmp_path,
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open({str(pids)!r}, "w") as f:
            f.write(f"{{__import__('os').getpid()}} {{child.pid}}")
        time.sleep(60)
        """,
    )
    started = time.monotonic()
    with pytest.raises(TransientAgentError) as info:
        complete(CommandAgent(argv, timeout=1.0))
    assert time.monotonic() - started < 5.0
    assert "timed out after 1 s" in str(info.value)
    program_pid, grandchild_pid = map(int, pids.read_text().split())
    assert wait_gone(program_pid)
    assert wait_gone(grandchild_pid)


def test_timeout_is_logged_before_the_request_is_sent_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    argv = program(tmp_path, "import time; time.sleep(60)")
    caplog.set_level(logging.INFO, logger="symbiont.agents")
    with pytest.raises(TransientAgentError):
        complete(CommandAgent(argv, timeout=0.5))
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert any(
        "timed out after 0.5 s" in line and "CommandAgent(timeout=" in line for line in lines
    )


HOST = """
import asyncio, sys
from symbiont._agents import CommandAgent, Message, Request
agent = CommandAgent(sys.argv[1:])
asyncio.run(agent.complete(Request(messages=(Message(role="user", content="hi"),))))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT])
def test_a_killed_host_leaves_no_agent_process_behind(tmp_path: Path, sig: signal.Signals) -> None:
    # The program starts a child of its own too: both must go with the host.
    pids = tmp_path / "pids"
    argv = program(
        tmp_path,
        f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        with open({str(pids)!r} + ".tmp", "w") as f:
            f.write(f"{{os.getpid()}} {{child.pid}}")
        os.rename({str(pids)!r} + ".tmp", {str(pids)!r})
        time.sleep(120)
        """,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    host = subprocess.Popen([sys.executable, "-c", HOST, *argv], env=env,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not pids.exists():
            assert host.poll() is None, "the host ended before the agent started"
            assert time.monotonic() < deadline, "the agent program never started"
            time.sleep(0.02)
        program_pid, child_pid = map(int, pids.read_text().split())
        host.send_signal(sig)
        host.wait(timeout=30)
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
    assert wait_gone(program_pid, 10.0)
    assert wait_gone(child_pid, 10.0)


def test_cancellation_kills_the_program(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    argv = program(
        tmp_path,
        f"""
        import os, time
        with open({str(pid_file)!r}, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)
        """,
    )

    async def cancel_midway() -> None:
        task = asyncio.create_task(CommandAgent(argv).complete(CONVERSATION))
        while not pid_file.exists() or not pid_file.read_text():
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(cancel_midway(), 10))
    assert wait_gone(int(pid_file.read_text()))


def test_missing_program_names_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-agent")
    with pytest.raises(AgentError) as info:
        complete(CommandAgent([missing, "--flag"]))
    assert type(info.value) is AgentError
    assert missing in str(info.value)
    assert "PATH" in str(info.value)


def test_missing_program_on_path(tmp_path: Path) -> None:
    with pytest.raises(AgentError, match="symbiont-no-such-program-xyz"):
        complete(CommandAgent("symbiont-no-such-program-xyz --model big"))


def test_missing_working_directory(tmp_path: Path) -> None:
    argv = program(tmp_path, "print('hi')")
    with pytest.raises(AgentError, match="working directory"):
        complete(CommandAgent(argv, cwd=str(tmp_path / "absent")))


@pytest.mark.parametrize(
    ("command", "timeout"),
    [("", 600.0), ([], 600.0), ("agent 'unclosed", 600.0), ("agent", 0.0), ("agent", -1.0)],
)
def test_invalid_configuration(command: str | list[str], timeout: float) -> None:
    with pytest.raises(ConfigError):
        CommandAgent(command, timeout=timeout)
