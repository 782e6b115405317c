"""Isolated evaluation: checks run in worker processes, so a crash is a record, not the end.

``Runtime(isolation="process")`` sends each candidate's check to a worker (``_worker.py``),
which loads the candidate's library and runs the check there; a candidate is loaded into the
host only after it passed in a worker (without a check, after a worker loaded it), so code that
runs when the library is loaded ends a worker, not the host. A segfault, abort,
out-of-memory, ``exit`` or kill of the worker becomes a :class:`~symbiont.CrashError` carried by
a ``crash`` failure record (fed back to the LLM like any other failure); the worker is
discarded and a fresh one starts for the next check. Each worker runs under an address-space
limit (``worker_memory``), and a worker that does not answer within ``isolation_timeout`` is
killed.

Where the workers run is an :class:`Engine`: :class:`ProcessEngine` (this machine) or
``RayEngine`` (``_ray.py``: the same workers on the nodes of a Ray cluster). The runtime sees
one seam, ``await engine.run(task)``, answering an :class:`Evaluation`, a :class:`Failure`, a
:class:`Raised` or a :class:`CrashError`, whichever engine ran it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from symbiont._errors import CrashError, SymbiontError
from symbiont._failures import Failure
from symbiont._worker import read_message, write_message

_STDERR_TAIL = 2000


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


_MEANING = {
    "SIGABRT": "the process aborted (a panic while panicking, a failed allocation, or abort())",
    "SIGSEGV": "invalid memory access (segmentation fault)",
    "SIGBUS": "invalid memory access (bus error)",
    "SIGKILL": "the process was killed (out of memory, or past its deadline)",
    "SIGILL": "an illegal instruction (often a failed assertion in native code)",
    "SIGFPE": "an arithmetic fault",
}


@dataclass(frozen=True, slots=True)
class CheckTask:
    """Everything a worker needs to evaluate one candidate."""

    declarations: str
    library: Path
    key: str  # the library's content key (names it in a node's cache)
    trampoline: Path
    code: str  # the candidate as sent
    compiled: str  # the layout the library was built from (same tokens)
    insertions: tuple[tuple[int, str], ...]
    check: bytes | None  # None: only load the library (it runs no code of its own then)
    check_timeout: float | None
    revision: int | None
    shared: tuple[str, ...] = ()  # keys of the shared inputs the worker must hold
    returns: str = "score"  # "evaluation": metrics and feedback too, evaluation errors raised

    def message(self) -> dict[str, Any]:
        """The task as a worker on this machine reads it (paths into this machine's cache)."""
        return {
            "declarations": self.declarations,
            "library": self.library,
            "trampoline": self.trampoline,
            "code": self.code,
            "compiled": self.compiled,
            "insertions": self.insertions,
            "check": self.check,
            "check_timeout": self.check_timeout,
            "revision": self.revision,
            "returns": self.returns,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """A check or an evaluation that ran to its end in a worker.

    ``score`` is what the check returned (None: no score); ``metrics`` and ``feedback`` are
    filled when the task asked for an evaluation (a dict of metrics, or an object with
    ``value``, ``metrics`` and ``feedback``). ``node`` is where it ran (``"local"``, or a Ray
    node id), ``worker`` the worker's process id, ``seconds`` the check's own time in the
    worker, ``tries`` 2 when the first worker died under it and it ran again elsewhere.
    """

    score: float | None
    metrics: Mapping[str, float] = field(default_factory=dict)
    feedback: str | None = None
    node: str = "local"
    worker: int = 0
    seconds: float = 0.0
    tries: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Raised:
    """An evaluation's own error (not the candidate's failure), for the caller's policy: the
    exception's type name, message and formatted traceback from the worker."""

    type: str
    message: str
    traceback: str
    node: str = "local"


Answer = Evaluation | Failure | Raised | CrashError


class Engine(Protocol):
    """Where isolated checks run.

    ``run(task)`` evaluates one candidate in a worker and answers its :class:`Evaluation`, the
    candidate's :class:`Failure`, an evaluation's own error (:class:`Raised`) or the
    :class:`CrashError` that ended the worker (the worker is replaced). It raises
    :class:`SymbiontError` for a broken setup (a worker that cannot start). At most
    ``max_in_flight`` tasks run at once; the others wait their turn, and each caller gets its
    answer as soon as its task completes. ``share(key, value)`` declares an input that every
    later task may read; ``close()`` stops the workers and cancels what is still running.
    """

    node_kind: str

    async def run(self, task: CheckTask) -> Answer: ...

    def share(self, key: str, value: Any) -> None: ...

    def close(self) -> None: ...


def decode(raw: tuple[Any, ...] | CrashError, *, node: str, tries: int = 1) -> Answer:
    """A worker's answer as the record it stands for."""
    if isinstance(raw, CrashError):
        return raw
    if raw[0] == "ok":
        found: dict[str, Any] = raw[1]
        return Evaluation(
            score=found["score"],
            metrics=found["metrics"],
            feedback=found["feedback"],
            node=node,
            worker=found["pid"],
            seconds=found["seconds"],
            tries=tries,
        )
    if raw[0] == "failed":
        failure: Failure = raw[1]
        return failure
    if raw[0] == "raised":
        return Raised(node=node, **raw[1])
    raise SymbiontError(f"the isolation worker failed: {raw[1]}")


class Worker:
    """One worker process and its pipes; used by one task at a time."""

    def __init__(self, memory: int | None, *, die_with_parent: bool = False) -> None:
        # Kept open for the worker's lifetime (closed in close()): what it printed before dying.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self.shared: set[str] = set()  # the shared inputs this worker holds
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from symbiont._worker import main; main()",
                str(memory or 0),
                str(os.getpid()) if die_with_parent else "0",
            ],
            env=worker_environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,  # a Ctrl-C in the terminal is the parent's to handle
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            write_message(self.proc.stdin, {"sys_path": list(sys.path)})
            reply = read_message(self.proc.stdout)
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            reply = exc
        if reply != ("ready",):
            stderr = self.stderr_tail()
            self.close()
            raise SymbiontError(f"the isolation worker did not start ({reply!r}): {stderr[-500:]}")

    def stderr_tail(self) -> str:
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - _STDERR_TAIL))
        return self._stderr.read().decode("utf-8", errors="replace").strip()

    def run(self, message: dict[str, Any], deadline: float) -> tuple[Any, ...] | CrashError:
        """The worker's answer to ``message`` (a task), or the crash that ended it."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        fired = threading.Event()

        def expire() -> None:
            fired.set()
            self.kill()

        timer = threading.Timer(deadline, expire)
        timer.start()
        started = time.monotonic()
        try:
            write_message(self.proc.stdin, message)
            answer: tuple[Any, ...] = read_message(self.proc.stdout)
            return answer
        except (EOFError, OSError, pickle.UnpicklingError, ValueError):
            # The worker died, or wrote something that is not the protocol: either way it is
            # finished. Make sure of it before reading its status.
            self.kill()
        finally:
            timer.cancel()
            # The timer may fire just as the answer arrives (cancel() cannot stop a timer that
            # is already calling expire): the answer stands, but the worker is being killed and
            # must look dead to the pool, or the next task would be blamed for its death.
            timer.join()
            if fired.is_set():
                self.proc.wait()
        code = self.proc.wait()
        late = time.monotonic() - started >= deadline
        return self._crash(code, late, deadline)

    def _crash(self, code: int, late: bool, deadline: float) -> CrashError:
        stderr = self.stderr_tail()
        if code < 0:
            name = signal_name(-code)
            meaning = _MEANING.get(name, "the process was stopped by a signal")
            if late:
                meaning = f"no answer within {deadline:g} s: the worker was killed"
            return CrashError(
                f"the evaluation worker died with {name}: {meaning}",
                signal=name,
                exit_code=None,
                stderr=stderr,
            )
        return CrashError(
            f"the evaluation worker exited with status {code} (did the code call exit?)",
            signal=None,
            exit_code=code,
            stderr=stderr,
        )

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
                self.proc.wait()
        self._stderr.close()


class WorkerPool:
    """Idle workers, reused; a crashed worker is discarded and replaced on demand."""

    def __init__(
        self, *, memory: int | None, timeout: float, die_with_parent: bool = False
    ) -> None:
        self.memory = memory
        self.die_with_parent = die_with_parent
        self.timeout = timeout
        self._idle: list[Worker] = []
        self._lock = threading.Lock()
        self.crashes = 0

    def run(
        self,
        message: dict[str, Any],
        shared: Collection[str] = (),
        fetch: Callable[[list[str]], Mapping[str, Any]] | None = None,
    ) -> tuple[Any, ...] | CrashError:
        """Blocking: runs the task ``message`` on a worker (call it from a thread). The worker
        must hold the shared inputs ``shared``: those it lacks are fetched (``fetch(keys)``)
        and sent with the task, once per worker."""
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is not None and worker.proc.poll() is not None:
            worker.close()
            worker = None
        if worker is None:
            worker = Worker(self.memory, die_with_parent=self.die_with_parent)
        missing = [k for k in shared if k not in worker.shared]
        if missing:
            assert fetch is not None
            message = {**message, "shared": dict(fetch(missing))}
        answer = worker.run(message, self.timeout)
        if isinstance(answer, CrashError):
            self.crashes += 1
            worker.close()
        else:
            worker.shared.update(missing)
            with self._lock:
                self._idle.append(worker)
        return answer

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()


_SECRET = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|CREDENTIALS?)$|^(BASE_URL|OPENAI_|ANTHROPIC_)")


def worker_environment() -> dict[str, str]:
    """The environment of a worker: the parent's, minus anything that looks like a secret
    (workers run the code isolation exists for), and with Rust backtraces off (a dying worker's
    backtrace is slow to print and useless to the LLM)."""
    env = {k: v for k, v in os.environ.items() if not _SECRET.search(k.upper())}
    env["RUST_BACKTRACE"] = "0"
    return env


def crash_failure(crash: CrashError) -> Failure:
    return Failure(kind="crash", message=str(crash), details=crash.stderr[-800:], crash=crash)


class ProcessEngine:
    """Isolated checks in worker processes on this machine (``isolation="process"``)."""

    node_kind = "local"

    def __init__(self, *, memory: int | None, timeout: float, max_in_flight: int | None) -> None:
        self.pool = WorkerPool(memory=memory, timeout=timeout)
        self.max_in_flight = max_in_flight or os.cpu_count() or 1
        self._values: dict[str, Any] = {}
        self._gate: asyncio.Semaphore | None = None

    def share(self, key: str, value: Any) -> None:
        self._values[key] = value

    async def run(self, task: CheckTask) -> Answer:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.max_in_flight)
        async with self._gate:
            raw = await asyncio.to_thread(self.pool.run, task.message(), task.shared, self._fetch)
        return decode(raw, node="local")

    def _fetch(self, keys: list[str]) -> dict[str, Any]:
        return {k: self._values[k] for k in keys}

    def close(self) -> None:
        self.pool.close()
