"""The search layer's overheads: the store per attempt, the CLI on a big run, a round of lanes.

    python benchmarks/search.py [--quick]

Measured in one run:

- store overhead per attempt: one committed ``attempts`` row (a 2 KB prompt, a 1 KB reply,
  timings), as the search writes it after every LLM request. Target <= 1 ms.
- ``symbiont show RUN`` and ``symbiont log RUN -n 50`` on a run of 10,000 attempts and 2,000
  revisions, each as a fresh process (interpreter start included, as a user sees it), next
  to ``python -c pass`` and ``python -c "import symbiont"`` (which every command pays) and
  to the command's own work measured in process. Target < 200 ms each.
- the wall time of one round of ``Lanes(8)`` against ``OpenAITestServer`` answering every
  request after 1 s (the real ``openai`` client over HTTP; each lane gets its own code, so all
  8 build for real), next to the build time of one candidate. Target <= 1 s + the builds:
  the 8 requests overlap, and the 8 builds share the cores (the table shows that floor).

Medians over repetitions. Nothing is asserted: this is a report.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _report as rep

import symbiont as sb
from symbiont._store import Store
from symbiont.testing import OpenAITestServer, Text

PROMPT = "x" * 2000
REPLY = "```rust\n" + "fn value() -> u32 { 1 }\n" * 40 + "```"


def attempt_row(store: Store, run_id: int, i: int) -> None:
    store.add_attempt(
        run_id,
        round=1 + i // 8,
        lane=i % 8,
        attempt=1,
        messages=[{"role": "system", "content": "rules"}, {"role": "user", "content": PROMPT}],
        reply=REPLY,
        model="m",
        prompt_tokens=500,
        completion_tokens=250,
        cost=0.001,
        timings={"llm": 1.0, "validate": 0.001, "build": 0.1, "load": 0.001, "check": 0.01},
        outcome="failed" if i % 3 else "registered",
        decision="retry",
        failure_kind="compile_error" if i % 3 else None,
        feedback="error[E0308]: mismatched types" if i % 3 else None,
        revision=None,
        started=time.time(),
    )


def new_run(store: Store, name: str) -> int:
    return store.create_run(
        name=name,
        task="bench",
        declarations="fn value() -> u32 { 1 }",
        settings={},
        argv=["python"],
        cwd="/",
        declarations_hash="d",
        evaluator_hash="e",
    ).id


def store_overhead(tmp: Path, n: int) -> float:
    store = Store(tmp / "overhead.db")
    run_id = new_run(store, "overhead")
    samples = []
    for i in range(n):
        started = time.perf_counter()
        attempt_row(store, run_id, i)
        samples.append(time.perf_counter() - started)
    store.close()
    return rep.median(samples)


def big_run(tmp: Path) -> Path:
    path = tmp / "big.db"
    store = Store(path)
    run_id = new_run(store, "big")
    for i in range(10_000):
        attempt_row(store, run_id, i)
    for n in range(2_000):
        store.add_revision(
            run_id,
            number=n,
            code=f"fn value() -> u32 {{ {n} }}",
            content_hash=f"h{n}",
            parent=max(0, n - 1),
            round=n // 2,
            lane=n % 8,
            island=None,
            score=float(n),
            metrics={"score": float(n)},
            spread=None,
            feedback=None,
            status="scored",
        )
    store.update_run(
        run_id,
        status="finished",
        stop_reason="rounds",
        rounds=1250,
        best_revision=1999,
        best_score=1999.0,
    )
    store.close()
    return path


def cli_seconds(args: list[str], reps: int) -> float:
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return rep.median(samples)


def in_process_seconds(args: list[str], reps: int) -> float:
    """The command's own work, without the interpreter start and ``import symbiont``."""
    import contextlib
    import io

    from symbiont._cli import main as cli

    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            cli(args)
        samples.append(time.perf_counter() - started)
    return rep.median(samples)


def round_of_lanes(lanes: int, delay: float) -> tuple[float, float]:
    """(seconds of one round of ``lanes`` lanes, seconds of one candidate's build)."""
    tmp = Path(tempfile.mkdtemp(prefix="symbiont-bench-search-"))
    try:
        rt = sb.Runtime("fn value() -> u32 { 1 }", cache_dir=tmp / "cache", profile="debug")
        started = time.perf_counter()
        rt.register("fn value() -> u32 { 777777 }")
        build = time.perf_counter() - started

        def answer(body: dict[str, Any]) -> Text:
            # Every lane has its own sampling seed: its own constant, so every lane builds.
            return Text(f"```rust\nfn value() -> u32 {{ {body['seed']} }}\n```", delay=delay)

        marks: dict[str, float] = {}

        def on_event(event: sb.Event) -> None:
            if event.kind in ("round_started", "round_ended"):
                marks[event.kind] = time.perf_counter()

        with OpenAITestServer(iter(lambda: answer, None)) as server:
            agent = sb.OpenAIAgent(base_url=server.base_url, model="m")
            rt.search(
                agent,
                "Grow.",
                evaluate=lambda fns: float(fns.value()),
                strategy=sb.Lanes(lanes),
                budget=sb.Budget(rounds=1),
                store=tmp / "runs.db",
                on_event=on_event,
            )
        return marks["round_ended"] - marks["round_started"], build
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    reps = 1 if args.quick else 3
    cli_reps = 3 if args.quick else 7
    rep.machine()
    tmp = Path(tempfile.mkdtemp(prefix="symbiont-bench-search-"))
    try:
        per_attempt = store_overhead(tmp, 500 if args.quick else 2000)
        db = big_run(tmp)
        start = cli_seconds(["-c", "pass"], cli_reps)
        imported = cli_seconds(["-c", "import symbiont"], cli_reps)
        show_own = in_process_seconds(["show", "big", "--store", str(db)], cli_reps)
        log_own = in_process_seconds(["log", "big", "-n", "50", "--store", str(db)], cli_reps)
        show = cli_seconds(["-m", "symbiont", "show", "big", "--store", str(db)], cli_reps)
        log = cli_seconds(
            ["-m", "symbiont", "log", "big", "-n", "50", "--store", str(db)], cli_reps
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    round_of_lanes(1, 0.0)  # warm-up: the openai client's import and first connection
    rounds = [round_of_lanes(8, 1.0) for _ in range(reps)]
    wall = rep.median([r[0] for r in rounds])
    build = rep.median([r[1] for r in rounds])
    cores = os.cpu_count() or 1
    waves = math.ceil(8 / cores)

    rep.table(
        ["what", "ms"],
        [
            ("store: one committed attempt row", per_attempt * 1e3),
            ("python -c pass (interpreter start)", start * 1e3),
            ("python -c 'import symbiont'", imported * 1e3),
            ("show: the command's own work (in process)", show_own * 1e3),
            ("log -n 50: the command's own work (in process)", log_own * 1e3),
            ("symbiont show (10,000 attempts)", show * 1e3),
            ("symbiont log -n 50 (10,000 attempts)", log * 1e3),
            ("build of one candidate (debug)", build * 1e3),
            ("one round of Lanes(8), replies after 1 s", wall * 1e3),
            (
                f"  floor: 1 s + 8 builds on {cores} cores ({waves} waves)",
                (1.0 + waves * build) * 1e3,
            ),
        ],
    )
    rep.target(
        "store overhead <= 1 ms per attempt", f"{per_attempt * 1e3:.3f} ms", per_attempt <= 1e-3
    )
    rep.target("symbiont show < 200 ms", f"{show * 1e3:.0f} ms", show < 0.2)
    rep.target("symbiont log -n 50 < 200 ms", f"{log * 1e3:.0f} ms", log < 0.2)
    rep.target(
        "8-lane round <= 1 s + the builds",
        f"{wall:.2f} s (floor {1 + waves * build:.2f})",
        wall <= 1.0 + waves * build + 0.25,
    )


if __name__ == "__main__":
    main()
