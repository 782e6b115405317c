"""The isolated-evaluation worker: started as ``python -c "...; main()" LIMIT``.

Reads tasks from stdin and answers on stdout, each message a 4-byte big-endian length followed
by a pickle. A task loads one candidate library, runs the check on it (if any) and answers
``("ok", score)`` or ``("failed", failure)`` (a ``Failure`` record). Whatever the candidate
does to this process (abort, segfault, out of memory, exit) only ends this process: the parent
sees the pipe close and records a crash. ``LIMIT`` is the address-space limit in bytes (0: none).
"""

from __future__ import annotations

import os
import pickle
import resource
import struct
import sys
from typing import IO, Any


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


def _run(task: dict[str, Any]) -> tuple[Any, ...]:
    import cloudpickle

    from symbiont._checks import check_failure, run_check_sync
    from symbiont._compile import find_toolchain
    from symbiont._decl import evolvable
    from symbiont._load import Library, RevisionTable, trampoline

    decls = evolvable(task["declarations"])
    tramp = trampoline(find_toolchain(task["rustc"]), task["cache_dir"])
    lib = Library(
        task["library"],
        decls.functions,
        api=int(tramp.api()),
        code=task["compiled"],
        insertions=task["insertions"],
    )
    lib.revision = task["revision"]
    fns, maps = RevisionTable(decls, tramp, "symbiont.fns").pinned(
        lib, "candidate under check (isolated)", task["check_timeout"]
    )
    if task["check"] is None:  # loading it was the test
        return ("ok", None)
    check = cloudpickle.loads(task["check"])
    try:
        score = run_check_sync(check, fns, maps)
    except Exception as exc:
        return ("failed", check_failure(exc, task["code"], task["compiled"]))
    return ("ok", score)


def main() -> None:
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 0
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
