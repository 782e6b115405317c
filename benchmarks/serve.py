"""`symbiont serve` on a big run: 10,000 attempts and 2,000 revisions on 4 islands.

    python benchmarks/serve.py [--quick]

The store is written directly through the store API (no LLM, no builds). Measured in one run:

- the run page's data (``GET /api/runs/NAME``: every attempt as a point, every revision with
  its metrics, the per-round table), served by the real app over HTTP on uvicorn: median of
  several requests. Target < 300 ms.
- the page interactive in headless Chromium (Debian's, driven by Playwright): from the start of
  navigation until the run page has drawn its charts, lineage and Pareto front (the page marks
  that moment). Median of several fresh loads. Target < 1.5 s.

Nothing is asserted: this is a report.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import _report as rep

from symbiont._store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "serve"))
CHROMIUM = "/usr/bin/chromium"
KINDS = [None, None, "compile_error", "panic", "timeout", "check_failed", "crash", "no_code"]
CODE = "fn value(x: u64) -> u64 {\n" + "    let y = x * 3 + 1;\n" * 20 + "    y\n}\n"


def synthetic_store(path: Path, attempts: int, revisions: int) -> None:
    rng = random.Random(7)
    store = Store(path)
    run = store.create_run(
        name="big", task="make it fast", declarations="fn value(x: u64) -> u64 { x }",
        settings={"strategy": {"name": "islands", "objectives": {"speed": "max", "size": "min"}},
                  "budget": {"rounds": None, "attempts": None, "tokens": None}, "maximize": True,
                  "objective": "score"},
        argv=["python", "big.py"], cwd="/", declarations_hash="d", evaluator_hash="e",
    )  # fmt: skip
    per_round = attempts // (revisions - 1)
    numbers = [0]
    store.add_revision(
        run.id, number=0, code=CODE, content_hash="h0", parent=None, round=0, lane=None,
        island=0, score=1.0, metrics={"speed": 1.0, "size": 100.0}, spread=None, feedback=None,
        status="scored",
    )  # fmt: skip
    for i in range(attempts):
        rnd, lane = 1 + i // per_round, i % 4
        registered = (i + 1) % per_round == 0 and len(numbers) < revisions
        kind = None if registered else KINDS[rng.randrange(len(KINDS))]
        number = None
        if registered:
            number = len(numbers)
            parent = numbers[max(0, len(numbers) - 1 - rng.randrange(8))]
            score = 1.0 + number * 0.01 + rng.random()
            store.add_revision(
                run.id, number=number, code=CODE.replace("3", str(number)),
                content_hash=f"h{number}", parent=parent, round=rnd, lane=lane, island=lane,
                score=score, metrics={"speed": score, "size": 100.0 - rng.random() * score * 10},
                spread=None, feedback=None, status="scored",
            )  # fmt: skip
            numbers.append(number)
        store.add_attempt(
            run.id, round=rnd, lane=lane, attempt=1 + i % 3,
            messages=[{"role": "system", "content": "rules " * 300},
                      {"role": "user", "content": "improve " * 250}],
            reply="```rust\n" + CODE + "```", model="m", prompt_tokens=600, completion_tokens=200,
            cost=0.001, timings={"llm": 1.0, "build": 0.1},
            outcome="registered" if registered else "failed",
            decision="registered" if registered else "retry", failure_kind=kind,
            feedback=None if registered else "error[E0308]: mismatched types", revision=number,
            started=time.time(),
        )  # fmt: skip
    store.update_run(run.id, status="finished", stop_reason="budget", rounds=rnd,
                     best_revision=len(numbers) - 1, best_score=2.0)  # fmt: skip
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from serve_helpers import served

    rep.machine()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.db"
        t = time.perf_counter()
        synthetic_store(path, 10_000, 2_000)
        print(f"store written in {time.perf_counter() - t:.1f} s")
        reps = 3 if args.quick else 7
        with served(path, interval=60) as url:
            data = []
            for _ in range(reps):
                t = time.perf_counter()
                with urllib.request.urlopen(url + "/api/runs/big") as r:
                    size = len(r.read())
                data.append(time.perf_counter() - t)
            ready = []
            if Path(CHROMIUM).exists():
                from playwright.sync_api import sync_playwright

                with sync_playwright() as p:
                    browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                    for _ in range(reps):
                        page = browser.new_page(viewport={"width": 1200, "height": 900})
                        page.goto(url + "/#/run/big")
                        page.wait_for_selector("body[data-ready=run]", timeout=60_000)
                        ready.append(page.evaluate("window.__symbiontReady") / 1000)
                        page.close()
                    browser.close()
    rep.table(
        ("what", "median", "reps"),
        [
            (f"run page data ({size / 1e6:.2f} MB JSON)", f"{rep.median(data) * 1000:.0f} ms",
             reps),
            ("page interactive (Chromium)",
             f"{rep.median(ready) * 1000:.0f} ms" if ready else "no chromium", len(ready)),
        ],
    )  # fmt: skip
    rep.target("run page data < 300 ms", f"{rep.median(data) * 1000:.0f} ms",
               rep.median(data) < 0.3)  # fmt: skip
    if ready:
        rep.target("page interactive < 1.5 s", f"{rep.median(ready):.2f} s",
                   rep.median(ready) < 1.5)  # fmt: skip


if __name__ == "__main__":
    main()
