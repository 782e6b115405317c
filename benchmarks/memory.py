"""Memory over thousands of evolutions: revision libraries are unloaded past `max_loaded`.

    python benchmarks/memory.py [--quick] [--evolutions 2000] [--unbounded 300]

A scripted agent answers every lane with a distinct candidate (the counter function with its
own constant), so every evolution builds, loads and registers a new revision. Lanes run in
batches of 16 (`rt.evolve_batch`, builds in parallel); after each batch one of its revisions
is activated. Process RSS (VmRSS from /proc/self/status) is read at the start (after revision
0), after the warm-up (the first 50 evolutions) and every 100, with `loaded_count()` (libraries
mapped). Each configuration runs in its own fresh process, so neither inherits the other's heap:

- `Runtime(max_loaded=64)` (the default), 2,000 evolutions (`--quick`: 200);
- `Runtime(max_loaded=None)` (nothing unloaded), 300 evolutions (`--quick`: 100), to show what
  unloading saves.

Target: RSS growth <= 50 MB over the 2,000 evolutions, from after the warm-up to the end.
Every build goes to a temporary cache directory deleted at the end (the libraries take about
0.4 MB each on disk). The run is long (every evolution is a real rustc build): progress is
printed every 100. Nothing is asserted: this is a report.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import _report as rep

import symbiont as sb
from symbiont._load import loaded_count
from symbiont.testing import ScriptedAgent

DECL = """
/// Advance the counter.
fn step(counter: &mut usize) {
    *counter += 1;
}
"""
PROMPT = "Increment by a constant in 5..20."
BATCH = 16
WARM_UP = 50


def replies() -> Iterator[str]:
    for k in itertools.count(2):
        yield f"```rust\nfn step(counter: &mut usize) {{\n    *counter += {k};\n}}\n```"


def child(max_loaded: int | None, evolutions: int, report: Path) -> None:
    """One configuration, in this process: progress on stdout, the figures as JSON in
    ``report``."""
    tmp = Path(tempfile.mkdtemp(prefix="symbiont-bench-memory-"))
    try:
        rt = sb.Runtime(DECL, cache_dir=tmp, max_loaded=max_loaded)
        agent = ScriptedAgent(replies())
        points: list[dict[str, float]] = []

        def sample(done: int) -> None:
            points.append(
                {
                    "evolutions": done,
                    "rss_mb": rep.rss_mb(),
                    "loaded": loaded_count(),
                    "seconds": time.perf_counter() - started,
                }
            )

        started = time.perf_counter()
        sample(0)
        marks = sorted({WARM_UP, *range(100, evolutions, 100), evolutions})
        done = 0
        for mark in marks:
            while done < mark:
                # Batches stop at the marks, so every sample is taken at a round count.
                size = min(BATCH, mark - done)
                results = rt.evolve_batch(agent, [PROMPT] * size)
                numbers = []
                for r in results:
                    if not isinstance(r, sb.EvolveInfo) or not r.new:
                        raise RuntimeError(f"an evolution did not register a new revision: {r!r}")
                    numbers.append(r.revision)
                rt.activate(numbers[len(numbers) // 2])
                # The scripted agent records every request; that is the test double's memory,
                # not the runtime's.
                agent.requests.clear()
                done += size
            sample(done)
            p = points[-1]
            print(
                f"  max_loaded={max_loaded}: {done} evolutions, RSS {p['rss_mb']:.1f} MB, "
                f"{p['loaded']:.0f} libraries mapped, {p['seconds']:.0f} s",
                flush=True,
            )
        disk = sum(f.stat().st_size for f in (tmp / "lib").iterdir()) / len(rt.revisions)
        data = {"points": points, "revisions": len(rt.revisions), "disk_mb": disk / 1e6}
        report.write_text(json.dumps(data))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Run:
    """What one configuration's process reported."""

    def __init__(self, max_loaded: int | None, evolutions: int) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.json"
            cmd = [
                sys.executable,
                __file__,
                "--child",
                str(max_loaded),
                "--evolutions",
                str(evolutions),
                "--report",
                str(report),
            ]
            subprocess.run(cmd, check=True)
            data = json.loads(report.read_text())
        self.points: list[dict[str, float]] = data["points"]
        self.revisions: int = data["revisions"]
        self.disk_mb: float = data["disk_mb"]

    def at(self, evolutions: float) -> dict[str, float] | None:
        return next((p for p in self.points if p["evolutions"] == evolutions), None)

    def growth(self) -> tuple[float, float]:
        """RSS growth in MB from the warm-up to the end, and the evolutions it spans."""
        warm, end = self.at(WARM_UP), self.points[-1]
        assert warm is not None
        return end["rss_mb"] - warm["rss_mb"], end["evolutions"] - WARM_UP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 and 100 evolutions")
    parser.add_argument("--evolutions", type=int, default=None, help="with unloading (2000)")
    parser.add_argument("--unbounded", type=int, default=None, help="max_loaded=None (300)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(None if args.child == "None" else int(args.child), args.evolutions, args.report)
        return
    bounded_n = args.evolutions or (200 if args.quick else 2000)
    unbounded_n = args.unbounded or (100 if args.quick else 300)
    rep.machine()

    print(f"max_loaded=64, {bounded_n} evolutions in batches of {BATCH}:", flush=True)
    bounded = Run(64, bounded_n)
    print(f"max_loaded=None, {unbounded_n} evolutions:", flush=True)
    unbounded = Run(None, unbounded_n)

    counts = sorted({p["evolutions"] for run in (bounded, unbounded) for p in run.points})
    rows = []
    for n in counts:
        row: list[object] = [int(n)]
        for run in (bounded, unbounded):
            p = run.at(n)
            row += [p["rss_mb"], int(p["loaded"])] if p else ["", ""]
        rows.append(row)
    print("\nRSS and mapped libraries by evolutions done (each configuration in its own process)")
    rep.table(
        ["evolutions", "RSS MB, max_loaded=64", "mapped", "RSS MB, max_loaded=None", "mapped"],
        rows,
    )
    growth_b, span_b = bounded.growth()
    growth_u, span_u = unbounded.growth()
    end_b, end_u = bounded.points[-1], unbounded.points[-1]
    print(
        f"\ngrowth after warm-up: max_loaded=64 {growth_b:+.1f} MB over {span_b:.0f} "
        "evolutions; max_loaded=None "
        f"{growth_u:+.1f} MB over {span_u:.0f} ({growth_u / span_u * 1000:+.0f} MB per 1,000)"
    )
    same = bounded.at(end_u["evolutions"])
    if same is not None:
        print(
            f"at {end_u['evolutions']:.0f} evolutions: {same['rss_mb']:.1f} MB with unloading, "
            f"{end_u['rss_mb']:.1f} MB without"
        )
    print(
        f"{bounded.revisions} revisions registered; {bounded.disk_mb:.2f} MB per library on "
        f"disk; {end_b['seconds']:.0f} s for {end_b['evolutions']:.0f} evolutions\n"
    )
    rep.target(
        f"RSS growth <= 50 MB over {span_b:.0f} evolutions after warm-up",
        f"{growth_b:+.1f} MB",
        growth_b <= 50,
    )


if __name__ == "__main__":
    main()
