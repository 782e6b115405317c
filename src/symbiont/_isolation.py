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
"""

from __future__ import annotations

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
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

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
    code: str  # the candidate as sent
    compiled: str  # the layout the library was built from (same tokens)
    insertions: tuple[tuple[int, str], ...]
    check: bytes | None  # None: only load the library (it runs no code of its own then)
    check_timeout: float | None
    revision: int | None
    cache_dir: Path
    rustc: str

    def message(self) -> dict[str, Any]:
        return {
            "declarations": self.declarations,
            "library": self.library,
            "code": self.code,
            "compiled": self.compiled,
            "insertions": self.insertions,
            "check": self.check,
            "check_timeout": self.check_timeout,
            "revision": self.revision,
            "cache_dir": self.cache_dir,
            "rustc": self.rustc,
        }


class Worker:
    """One worker process and its pipes; used by one task at a time."""

    def __init__(self, memory: int | None) -> None:
        # Kept open for the worker's lifetime (closed in close()): what it printed before dying.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from symbiont._worker import main; main()", str(memory or 0)],
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

    def run(self, task: CheckTask, deadline: float) -> tuple[Any, ...] | CrashError:
        """The worker's answer, or the crash that ended it."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        fired = threading.Event()

        def expire() -> None:
            fired.set()
            self.kill()

        timer = threading.Timer(deadline, expire)
        timer.start()
        started = time.monotonic()
        try:
            write_message(self.proc.stdin, task.message())
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

    def __init__(self, *, memory: int | None, timeout: float) -> None:
        self.memory = memory
        self.timeout = timeout
        self._idle: list[Worker] = []
        self._lock = threading.Lock()
        self.crashes = 0

    def run(self, task: CheckTask) -> tuple[Any, ...] | CrashError:
        """Blocking: runs ``task`` on a worker (call it from a thread)."""
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is not None and worker.proc.poll() is not None:
            worker.close()
            worker = None
        if worker is None:
            worker = Worker(self.memory)
        answer = worker.run(task, self.timeout)
        if isinstance(answer, CrashError):
            self.crashes += 1
            worker.close()
        else:
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
