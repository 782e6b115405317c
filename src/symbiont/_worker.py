"""The isolated-evaluation worker: started as ``python -c "...; main()" LIMIT``.

Reads tasks from stdin and answers on stdout, each message a 4-byte big-endian length followed
by a pickle. A task loads one candidate library, runs the check on it (if any) and answers
``("ok", evaluation)`` (a dict: ``score``, ``metrics``, ``feedback``, ``pid``, ``seconds``),
``("failed", failure)`` (a ``Failure`` record), ``("raised", error)`` (an evaluation's own
error, for the caller's policy: only when the task asks for an evaluation) or ``("error",
text)`` (a broken setup). Whatever the candidate does to this process (abort, segfault, out of
memory, exit) only ends this process: the parent sees the pipe close and records a crash.
``LIMIT`` is the address-space limit in bytes (0: none); a second argument, the parent's pid,
makes the worker die with its parent (0: it does not).

The library and the trampoline arrive as paths (a worker on the driver's machine) or as bytes
(a worker on a cluster node, which has no rustc and no copy of the driver's cache): bytes are
written once into this machine's cache under their content key. Shared inputs
(:class:`Shared`) arrive once per worker and stay in its registry for every later task.
"""

from __future__ import annotations

import os
import pickle
import resource
import struct
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

PROTOCOL = 2
"""Bumped whenever a task or an answer changes shape: a driver and a node must agree on it."""

_SHARED: dict[str, Any] = {}


class Shared:
    """A handle on an input every evaluation shares (``Runtime.share(name, value)``).

    A check captures the handle and reads ``handle.value``. Pickling the handle carries only its
    name and key: the value travels once per worker (once per run into Ray's object store), not
    inside every pickled check.
    """

    __slots__ = ("key", "name")

    def __init__(self, name: str, key: str) -> None:
        self.name = name
        self.key = key

    @property
    def value(self) -> Any:
        try:
            return _SHARED[self.key]
        except KeyError:
            raise LookupError(
                f"the shared input {self.name!r} is not available in this process: "
                "create it with the runtime that evaluates (rt.share) before the check runs"
            ) from None

    def __reduce__(self) -> tuple[Any, ...]:
        return (Shared, (self.name, self.key))

    def __repr__(self) -> str:
        return f"<shared input {self.name!r}>"


def install_shared(key: str, value: Any) -> None:
    """Makes ``value`` what handles with ``key`` read in this process."""
    _SHARED[key] = value


def has_shared(key: str) -> bool:
    return key in _SHARED


def read_message(stream: IO[bytes]) -> Any:
    head = stream.read(4)
    if len(head) < 4:
        raise EOFError
    (size,) = struct.unpack(">I", head)
    body = stream.read(size)
    if len(body) < size:
        raise EOFError
    return pickle.loads(body)


def write_message(stream: IO[bytes], obj: Any) -> None:
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack(">I", len(body)) + body)
    stream.flush()


def _materialise(data: bytes, target: Path) -> Path:
    """Writes ``data`` to ``target`` once (content-keyed names: an existing file is the same)."""
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    return target


def _node_cache() -> Path:
    from symbiont._compile import default_cache_dir

    return default_cache_dir() / "shipped"


def _evaluation(result: object) -> tuple[float | None, dict[str, float], str | None]:
    """What an evaluation returned: a number, a dict of metrics (``"score"`` is the score, a
    ``"feedback"`` string is kept) or an object with ``value``, ``metrics`` and ``feedback``."""
    from symbiont._checks import _score

    if isinstance(result, Mapping):
        feedback = result.get("feedback")
        metrics = {
            str(k): float(v)
            for k, v in result.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        return metrics.get("score"), metrics, feedback if isinstance(feedback, str) else None
    if hasattr(result, "value") and hasattr(result, "metrics"):
        value = float(result.value)
        metrics = {str(k): float(v) for k, v in dict(result.metrics).items()}
        feedback = getattr(result, "feedback", None)
        return value, metrics, feedback if isinstance(feedback, str) else None
    return _score(result), {}, None


def _run(task: dict[str, Any]) -> tuple[Any, ...]:
    import cloudpickle

    from symbiont._checks import check_failure, run_check_raw
    from symbiont._decl import evolvable
    from symbiont._errors import PanicError, TimeoutError
    from symbiont._load import Library, RevisionTable, trampoline_from

    for key, value in task.get("shared", {}).items():
        install_shared(key, value)
    if "library_bytes" in task:
        name = f"{task['key']}{task['suffix']}"
        library = _materialise(task["library_bytes"], _node_cache() / "lib" / name)
        tramp_path = _materialise(
            task["trampoline_bytes"], _node_cache() / "trampoline" / task["trampoline_name"]
        )
    else:
        library, tramp_path = task["library"], task["trampoline"]
    decls = evolvable(task["declarations"])
    tramp = trampoline_from(tramp_path)
    lib = Library(
        library,
        decls.functions,
        api=int(tramp.api()),
        code=task["compiled"],
        insertions=task["insertions"],
    )
    lib.revision = task["revision"]
    fns, maps = RevisionTable(decls, tramp, "symbiont.fns").pinned(
        lib, "candidate under check (isolated)", task["check_timeout"]
    )
    started = time.perf_counter()
    answer: dict[str, Any] = {"score": None, "metrics": {}, "feedback": None, "pid": os.getpid()}
    if task["check"] is None:  # loading it was the test
        return ("ok", {**answer, "seconds": 0.0})
    check = cloudpickle.loads(task["check"])
    evaluation = task.get("returns") == "evaluation"
    try:
        result = run_check_raw(check, fns, maps)
        if evaluation:
            score, metrics, feedback = _evaluation(result)
        else:
            from symbiont._checks import _score

            score, metrics, feedback = _score(result), {}, None
    except (AssertionError, PanicError, TimeoutError) as exc:
        return ("failed", check_failure(exc, task["code"], task["compiled"]))
    except Exception as exc:
        if evaluation and isinstance(getattr(exc, "feedback", None), str):
            # A rejection that carries its own feedback for the LLM.
            return ("failed", check_failure(AssertionError(exc.feedback), task["code"]))  # type: ignore[attr-defined]
        if evaluation:
            text = "".join(traceback.format_exception(exc))
            return ("raised", {"type": type(exc).__name__, "message": str(exc), "traceback": text})
        return ("failed", check_failure(exc, task["code"], task["compiled"]))
    seconds = time.perf_counter() - started
    return ("ok", {**answer, "score": score, "metrics": metrics, "feedback": feedback,
                   "seconds": seconds})  # fmt: skip


def _die_with_parent(parent: int) -> None:
    """On a cluster node: end with the Ray worker that started this one, so a cancelled or
    killed task leaves no evaluation running (Linux; elsewhere the worker ends at its next
    read of the closed pipe)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def main() -> None:
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if len(sys.argv) > 2 and sys.argv[2] != "0":
        _die_with_parent(int(sys.argv[2]))
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    stdin = sys.stdin.buffer
    # The protocol gets a private copy of fd 1, and fd 1 itself becomes stderr: whatever the
    # check or the native code prints (Rust's println! writes to fd 1) cannot corrupt it.
    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    hello = read_message(stdin)
    sys.path[:] = hello["sys_path"]
    write_message(stdout, ("ready",))
    while True:
        try:
            task = read_message(stdin)
        except EOFError:
            return
        try:
            answer = _run(task)
        except Exception as exc:  # a broken setup, not a candidate failure
            answer = ("error", f"{type(exc).__name__}: {exc}")
        write_message(stdout, answer)


if __name__ == "__main__":
    main()
