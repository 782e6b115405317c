"""The command agent: any program (a CLI coding agent, a script) used as the LLM.

This module owns running that program once per request under a deadline, the plain-text
rendering of the conversation it reads on stdin, and the cleanup of the whole process group
when the deadline passes, the caller cancels, the interpreter exits or the host is killed.

Tying the program's life to the host: on Linux the program is started by a tiny launcher
(``python -I -S -c``, about 15 ms to start) that asks the kernel to signal it when the host
dies (``prctl(PR_SET_PDEATHSIG)``), checks that the host has not already died in between,
starts the program and waits for it; on the host's death it kills the whole process group, so
even a SIGKILL'd host leaves neither the program nor what the program started. ``preexec_fn``
could set the signal without a launcher but is unsafe in a threaded host (symbiont always has
its loop thread); ``setpriv --pdeathsig`` needs util-linux 2.33 or newer, cannot reach the
program's own children and does not close the race with a host that dies before the signal is
set; the interpreter running symbiont is always there. A normal exit (Ctrl-C included) also
kills the process groups still running.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from symbiont import _config
from symbiont._agents._protocol import Message, Reply, Request, Usage
from symbiont._errors import AgentError, ConfigError, TransientAgentError

logger = logging.getLogger("symbiont.agents")

DEFAULT_TIMEOUT = 600.0
"""Seconds one run of the program may take (coding agents think for minutes)."""

_STDERR_TAIL_LINES = 20
_STDERR_TAIL_CHARS = 2000

# argv: host pid, program, its arguments. The launcher stays as the program's parent: when the
# host dies the kernel sends it SIGTERM, and it kills the whole process group (the program and
# anything the program started). It exits as the program did. Exit statuses 126/127 with the
# marker on stderr report a program that cannot run, as a shell would.
_LAUNCHER_MARK = "symbiont-launcher:"
_LAUNCHER = f"""
import ctypes, os, signal, sys
def sweep():
    # Descendants that left the group (setsid daemons) were re-parented to this subreaper.
    me = os.getpid()
    for _ in range(1000):
        try:
            with open(f"/proc/{{me}}/task/{{me}}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            return
        if not kids:
            return
        for kid in kids:
            try:
                os.kill(kid, signal.SIGKILL)
                os.waitpid(kid, 0)
            except OSError:
                pass
def die(*_):
    sweep()
    os.killpg(0, signal.SIGKILL)
signal.signal(signal.SIGTERM, die)
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    os.killpg(0, signal.SIGKILL)
try:
    pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
except FileNotFoundError:
    os.write(2, b"{_LAUNCHER_MARK} not found")
    os._exit(127)
except PermissionError:
    os.write(2, b"{_LAUNCHER_MARK} not executable")
    os._exit(126)
status = os.waitpid(pid, 0)[1]
sweep()
if os.WIFSIGNALED(status):
    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
os._exit(os.waitstatus_to_exitcode(status))
"""


def _launcher_argv(argv: Sequence[str]) -> list[str]:
    if not sys.platform.startswith("linux") or not sys.executable:
        return list(argv)
    return [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(os.getpid()), *argv]


# Process groups of programs still running, killed at interpreter exit (after Ctrl-C, say).
_live_groups: set[int] = set()
_live_lock = threading.Lock()
_atexit_registered = False


def _track(pgid: int) -> None:
    global _atexit_registered
    with _live_lock:
        _live_groups.add(pgid)
        if not _atexit_registered:
            atexit.register(_kill_live_groups)
            _atexit_registered = True


def _untrack(pgid: int) -> None:
    with _live_lock:
        _live_groups.discard(pgid)


def _kill_live_groups() -> None:
    with _live_lock:
        groups = list(_live_groups)
        _live_groups.clear()
    for pgid in groups:
        _signal_group(pgid, signal.SIGKILL)


def render_conversation(messages: Sequence[Message]) -> str:
    """The conversation as the command agent writes it to the program's stdin.

    Each message is a header line ``### SYSTEM``, ``### USER`` or ``### ASSISTANT``, then the
    content, then a blank line::

        ### SYSTEM
        You write Rust.

        ### USER
        Implement `fn step(counter: &mut usize)`.

    """
    return "".join(f"### {m.role.upper()}\n{m.content.rstrip(chr(10))}\n\n" for m in messages)


class CommandAgent:
    """Runs a program per request: the conversation on stdin, the reply on stdout.

    ``command`` is an argument list or a string split like a shell would (``shlex``; no shell
    runs, so pipes and ``$VARS`` are not interpreted). The program receives the conversation
    rendered by :func:`render_conversation`:

    .. code-block:: text

        ### SYSTEM
        <system prompt>

        ### USER
        <first user message>

        ### ASSISTANT
        <an earlier reply>

        ### USER
        <the correction to answer>

    and everything it prints on stdout (decoded as UTF-8, invalid bytes replaced) is the reply.
    ``env`` adds variables to the inherited environment; ``cwd`` is its working directory.

    Errors: a non-zero exit raises :class:`~symbiont.AgentError` with the status and the last
    lines of stderr; passing ``timeout`` seconds (default 10 minutes) kills the program and
    everything it started (it runs in its own session) and raises
    :class:`~symbiont.TransientAgentError`; a missing program raises
    :class:`~symbiont.AgentError` naming it. Token counts are unknown: usage is zero tokens
    and one request.
    """

    name: str

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        tools: Sequence[object] = (),
    ) -> None:
        if tools:
            raise ConfigError(
                "CommandAgent has no tool support: the program reads the conversation as text "
                "and runs its own tools; give tools to OpenAIAgent (or ScriptedAgent in tests)"
            )
        if isinstance(command, str):
            try:
                argv = shlex.split(command)
            except ValueError as exc:
                raise ConfigError(f"CommandAgent: cannot split command {command!r}: {exc}") from exc
        else:
            argv = [os.fspath(arg) for arg in command]
        if not argv or not argv[0]:
            raise ConfigError("CommandAgent: command is empty; give the program to run")
        _config.seconds("CommandAgent: timeout", timeout)
        self.argv: tuple[str, ...] = tuple(argv)
        self.timeout = float(timeout)
        self.env: dict[str, str] | None = dict(env) if env is not None else None
        self.cwd = os.fspath(cwd) if cwd is not None else None
        self.name = f"command:{os.path.basename(self.argv[0])}"

    def __repr__(self) -> str:
        # The environment may hold secrets: only its variable names are shown.
        env = f", env=<{', '.join(sorted(self.env))}>" if self.env else ""
        cwd = f", cwd={self.cwd!r}" if self.cwd else ""
        return f"CommandAgent({shlex.join(self.argv)!r}, timeout={self.timeout:g}{env}{cwd})"

    async def complete(self, request: Request) -> Reply:
        """Run the program once with the rendered conversation and return what it printed."""
        program = self.argv[0]
        stdin = render_conversation(request.messages).encode("utf-8")
        env = {**os.environ, **self.env} if self.env is not None else None
        started = time.monotonic()
        try:
            process = await asyncio.create_subprocess_exec(
                *_launcher_argv(self.argv),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=self.cwd,
                # Its own session, so a deadline can kill the program and its children as one
                # process group (a CLI agent typically spawns tools and sub-shells).
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            if self.cwd is not None and not os.path.isdir(self.cwd):
                raise AgentError(
                    f"command agent: working directory {self.cwd!r} does not exist"
                ) from exc
            raise AgentError(
                f"command agent: program {program!r} not found: install it, put it on PATH "
                "or give its full path"
            ) from exc
        except PermissionError as exc:
            raise AgentError(
                f"command agent: program {program!r} cannot be executed: make it executable "
                "(chmod +x) or run it through its interpreter"
            ) from exc
        except OSError as exc:
            raise AgentError(f"command agent: cannot start {program!r}: {exc}") from exc

        _track(process.pid)
        try:
            async with asyncio.timeout(self.timeout):
                stdout, stderr = await _exchange(process, stdin)
        except _TooMuchOutput as exc:
            await _kill_group(process)
            raise TransientAgentError(
                f"command agent: {program!r} printed more than {MAX_OUTPUT_BYTES} bytes; "
                "killed it (a reply is code, not a data dump)"
            ) from exc
        except TimeoutError as exc:
            await _kill_group(process)
            logger.info(
                "%s: %r timed out after %g s; killed it and its children "
                "(raise CommandAgent(timeout=...) or SYMBIONT_LLM_TIMEOUT if it is just slow)",
                self.name, program, self.timeout,
            )  # fmt: skip
            raise TransientAgentError(
                f"command agent: {program!r} timed out after {self.timeout:g} s (killed; raise "
                "CommandAgent(timeout=...) or SYMBIONT_LLM_TIMEOUT if it is just slow)"
            ) from exc
        except BaseException:
            # Cancelled by the caller (or worse): leave no process behind.
            await _kill_group(process)
            raise
        finally:
            _untrack(process.pid)
        # The program exited, but children it left in the background may still run. The kernel
        # does not reuse a pid while it still names a live process group, so this reaches only
        # those leftovers (or nobody).
        _signal_group(process.pid, signal.SIGKILL)

        elapsed = time.monotonic() - started
        status = process.returncode
        if status in (126, 127) and stderr.startswith(_LAUNCHER_MARK.encode()):
            if status == 127:
                raise AgentError(
                    f"command agent: program {program!r} not found: install it, put it on PATH "
                    "or give its full path"
                )
            raise AgentError(
                f"command agent: program {program!r} cannot be executed: make it executable "
                "(chmod +x) or run it through its interpreter"
            )
        if status != 0:
            raise AgentError(
                f"command agent: {program!r} {_describe_exit(status)} after {elapsed:.1f} s"
                f"{_stderr_tail(stderr)}"
            )
        logger.debug("%s answered in %.2f s (%d bytes)", self.name, elapsed, len(stdout))
        return Reply(
            text=stdout.decode("utf-8", errors="replace"),
            usage=Usage(requests=1),
            finish_reason=None,
        )


MAX_OUTPUT_BYTES = 16 * 1024 * 1024
"""Bytes the program may print on stdout for one reply; more is an error, not a reply."""

_STDERR_KEPT_BYTES = 64 * 1024
# Once the program has exited, its pipes are read for at most this long: a daemon it started
# may hold them open for ever.
_DRAIN_SECONDS = 2.0


class _TooMuchOutput(Exception):
    pass


async def _exchange(process: asyncio.subprocess.Process, stdin: bytes) -> tuple[bytes, bytes]:
    """Feeds ``stdin`` and reads stdout and stderr until the program exits, then what is left
    in the pipes. Unlike ``communicate()`` it does not wait for the pipes to close: a
    background child the program left holding stdout would hold the reply until the deadline.
    """
    assert process.stdin and process.stdout and process.stderr
    out, err = bytearray(), bytearray()

    async def feed(pipe: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            pipe.write(stdin)
            await pipe.drain()
        with contextlib.suppress(ConnectionError):
            pipe.close()

    async def collect(pipe: asyncio.StreamReader, into: bytearray, cap: int | None) -> None:
        while chunk := await pipe.read(1 << 16):
            into += chunk
            if cap is not None and len(into) > cap:
                # Stop the program, then read on (discarding) to the end of the pipe: asyncio
                # wakes `process.wait()` only once every pipe is closed, and a full pipe nobody
                # reads never reaches its end.
                _signal_group(process.pid, signal.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_DRAIN_SECONDS):
                        while await pipe.read(1 << 16):
                            pass
                raise _TooMuchOutput
            if cap is None and len(into) > 2 * _STDERR_KEPT_BYTES:
                del into[:-_STDERR_KEPT_BYTES]  # only the tail is ever shown

    readers = asyncio.gather(
        feed(process.stdin),
        collect(process.stdout, out, MAX_OUTPUT_BYTES),
        collect(process.stderr, err, None),
    )
    exited: asyncio.Future[int] = asyncio.ensure_future(process.wait())
    pending: set[asyncio.Future[Any]] = {readers, exited}
    try:
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if readers.done():
            readers.result()  # raises _TooMuchOutput
            await exited
        else:
            # Exited: its group dies with it, so only an escaped daemon can keep a pipe open.
            _signal_group(process.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_DRAIN_SECONDS):
                    await asyncio.shield(readers)
            if readers.done():
                readers.result()
    finally:
        for task in (readers, exited):
            task.cancel()
        await asyncio.wait(pending)
        if not readers.cancelled():
            readers.exception()  # retrieved: raised above, or of no interest any more
    return bytes(out), bytes(err)


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    _signal_group(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    # Reap it, so no zombie stays behind; shielded so a second cancellation cannot skip it.
    # Bounded: asyncio reports the exit only once the pipes are closed, and an escaped daemon
    # may hold one open (the child watcher reaps the process itself either way).
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_DRAIN_SECONDS * 2):
            await asyncio.shield(process.wait())


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    # The group id is the program's pid (start_new_session made it a session leader).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _describe_exit(status: int | None) -> str:
    if status is None:
        return "did not report an exit status"
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"was killed by {name}"
    return f"exited with status {status}"


def _stderr_tail(stderr: bytes) -> str:
    text = stderr.decode("utf-8", errors="replace").rstrip()
    if not text:
        return " (stderr was empty)"
    lines = text.splitlines()[-_STDERR_TAIL_LINES:]
    tail = "\n".join(lines)
    if len(tail) > _STDERR_TAIL_CHARS:
        tail = "..." + tail[-_STDERR_TAIL_CHARS:]
    return f"; last lines of stderr:\n{tail}"
