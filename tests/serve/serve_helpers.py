"""Helpers of the `symbiont serve` tests: a scripted run whose replies attack the page, and
the app served by a real uvicorn on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import symbiont as sb
from symbiont.testing import ScriptedAgent

DECL = "fn value() -> u32 { 1 }"
# Replies an LLM could write that a careless page would run: each must show as text.
XSS = (
    "<script>window.__pwned = 'script'</script></pre><pre>"
    "<a href=\"javascript:window.__pwned='link'\">click</a>"
    "<img src=x onerror=\"window.__pwned='img';alert(1)\">"
)
HUGE_LINE = "y" * 5_000_000


def code(n: int, comment: str = "") -> str:
    return f"```rust\nfn value() -> u32 {{\n    // {comment}\n    {n}\n}}\n```"


def value(fns: sb.Functions) -> float:
    return float(fns.value())


def scripted_run(store: Path, *, name: str = "demo", gate: threading.Event | None = None) -> None:
    """A 3-round hill climb: round 1 answers the XSS reply, a 5 MB line and a compile error
    before a registered revision whose comment is HTML; rounds 2 and 3 grow the value (waiting
    for ``gate`` first, when given)."""

    def later(n: int) -> Any:
        def answer(request: Any) -> str:
            if gate is not None:
                gate.wait(120)
            return code(n, "step")

        return answer

    script = [
        XSS,
        HUGE_LINE,
        '```rust\nfn value() -> u32 { "no" }\n```',
        code(10, "</pre><script>window.__pwned='code'</script>"),
        later(20),
        later(30),
    ]
    rt = sb.Runtime(DECL, profile="debug")
    rt.search(
        ScriptedAgent(script),
        "Grow.",
        evaluate=value,
        budget=sb.Budget(rounds=3),
        store=store,
        name=name,
        attempts_per_lane=5,
    )


@contextmanager
def served(store: Path, *, interval: float = 0.3) -> Iterator[str]:
    """The app on a real uvicorn in a thread, on a free port of 127.0.0.1; yields its URL."""
    import uvicorn

    from symbiont._serve import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(store, interval=interval), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
