"""A command agent's program that misbehaves: it leaves a child holding its stdout, starts a
daemon in a session of its own, or prints without end. Real processes, real pipes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

import symbiont as sb
from symbiont._agents import Message, Request

REQUEST = Request(messages=(Message(role="user", content="Write the code."),))

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux launcher")


def reply(script: str, timeout: float = 60) -> sb.Reply:
    return asyncio.run(sb.CommandAgent(["sh", "-c", script], timeout=timeout).complete(REQUEST))


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_a_background_child_holding_stdout_does_not_hold_the_reply(tmp_path: Path) -> None:
    # communicate() waited for the pipe to close: the reply came only at the deadline, as a
    # timeout error.
    pid_file = tmp_path / "pid"
    got = reply(f"cat >/dev/null; echo done; sleep 300 & echo $! > {pid_file}")
    assert got.text == "done\n"
    assert not alive(int(pid_file.read_text()))


def test_a_daemon_in_its_own_session_dies_with_the_program(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    daemon = f"exec setsid sh -c 'echo $$ > {pid_file}; exec sleep 300' </dev/null >/dev/null 2>&1"
    got = reply(f"cat >/dev/null; ({daemon}) & sleep 0.5; echo done")
    assert got.text == "done\n"
    pid = int(pid_file.read_text())
    assert not alive(pid), f"the daemon {pid} survived"


def test_a_program_printing_without_end_is_stopped() -> None:
    with pytest.raises(sb.TransientAgentError, match="printed more than"):
        reply("cat >/dev/null; yes aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
