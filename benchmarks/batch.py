"""Batch lanes overlap their LLM waits and their builds: 8 lanes against a 1 s endpoint.

    python benchmarks/batch.py [--quick] [--lanes 8] [--delay 1.0]

`rt.evolve_batch(agent, [prompt] * 8)` with an `OpenAIAgent` talking to `OpenAITestServer`
(a real HTTP server, the real `openai` client) whose every reply arrives after a fixed 1 s
delay. Each lane gets a different valid candidate (the counter function with its own constant),
so every lane builds for real (fresh temporary cache directory). Measured in the same run:

- the build time of one such candidate (`rt.register(code)`, a cache miss);
- one lane alone (1 s of waiting plus one build, the floor of any lane);
- 8 lanes at once.

Target: 8 lanes take <= 1.5 s + the build time of one candidate (not 8 x (1 s + build)).
The 8 builds share the machine's cores (`max_parallel_builds` defaults to the core count), so
on 2 cores they need about 4 build times after the replies arrive: the table shows that floor.
Medians over repetitions, interleaved. Nothing is asserted: this is a report.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import _report as rep

import symbiont as sb
from symbiont.testing import OpenAITestServer, Text

DECL = """
/// Advance the counter.
fn step(counter: &mut usize) {
    *counter += 1;
}
"""
PROMPT = "Increment by a constant in 5..20."


def candidate(k: int) -> str:
    return f"fn step(counter: &mut usize) {{\n    *counter += {k};\n}}\n"


def reply(k: int) -> str:
    return f"```rust\n{candidate(k)}```"


@dataclass
class Batch:
    """One batch: wall seconds, and per lane the LLM and build stages and when its reply came
    (seconds after the batch started)."""

    wall: float
    llm: list[float]
    build: list[float]
    arrived: list[float]


def run_lanes(rt: sb.Runtime, replies: list[str], delay: float) -> Batch:
    with OpenAITestServer([Text(r, delay=delay) for r in replies]) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, model="m")
        epoch, started = time.time(), time.perf_counter()
        results = rt.evolve_batch(agent, [PROMPT] * len(replies))
        wall = time.perf_counter() - started
    batch = Batch(wall=wall, llm=[], build=[], arrived=[])
    for r in results:
        if not isinstance(r, sb.EvolveInfo) or not r.new or r.attempts != 1:
            raise RuntimeError(f"a lane did not register a new revision at once: {r!r}")
        (first,) = r.trace.attempts
        batch.llm.append(r.timings.llm)
        batch.build.append(r.timings.build)
        batch.arrived.append(first.started + first.timings.llm - epoch)
    return batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repetition instead of 3")
    parser.add_argument("--lanes", type=int, default=8)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds per reply (1.0)")
    args = parser.parse_args()
    reps = 1 if args.quick else 3
    lanes, delay = args.lanes, args.delay
    rep.machine()

    ks = itertools.count(1000)  # every candidate of the run has its own constant: all build
    tmp = Path(tempfile.mkdtemp(prefix="symbiont-bench-batch-"))
    try:
        rt = sb.Runtime(DECL, cache_dir=tmp)
        run_lanes(rt, [reply(next(ks))], 0.0)  # warm-up: imports, the HTTP client, rustc
        builds: list[float] = []
        single: list[float] = []
        batches: list[Batch] = []
        for _ in range(reps):
            started = time.perf_counter()
            rt.register(candidate(next(ks)))
            builds.append(time.perf_counter() - started)
            single.append(run_lanes(rt, [reply(next(ks))], delay).wall)
            batches.append(run_lanes(rt, [reply(next(ks)) for _ in range(lanes)], delay))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    build = rep.median(builds)
    cores = os.cpu_count() or 1
    waves = math.ceil(lanes / cores)
    b, s = rep.median([x.wall for x in batches]), rep.median(single)
    llm = [v for x in batches for v in x.llm]
    lane_builds = [v for x in batches for v in x.build]
    last_reply = rep.median([max(x.arrived) for x in batches])
    print(f"\n{lanes} lanes, every reply after {delay:.1f} s, {reps} rep(s), medians")
    rep.table(
        ["what", "s"],
        [
            ("build of one candidate (rt.register, cache miss)", build),
            (f"one lane ({delay:.0f} s reply + build)", s),
            (f"{lanes} lanes (evolve_batch)", b),
            (
                f"  a lane's LLM stage inside the batch (median; max {max(llm):.2f})",
                rep.median(llm),
            ),
            ("  the last reply arrived after", last_reply),
            (
                f"  a lane's build stage inside the batch (median of {len(lane_builds)}; "
                f"max {max(lane_builds):.2f})",
                rep.median(lane_builds),
            ),
            (
                f"  floor: {delay:.0f} s + {lanes} builds on {cores} cores ({waves} waves)",
                delay + waves * build,
            ),
            (f"  {lanes} lanes one after another (estimate: {lanes} x one lane)", lanes * s),
        ],
    )
    print(f"{lanes} lanes vs one lane: {b / s:.2f}x the time for {lanes}x the revisions\n")
    limit = 1.5 * delay + build
    rep.target(
        f"{lanes} lanes <= {1.5 * delay:.1f} s + one build ({limit:.2f} s)",
        f"{b:.2f} s",
        b <= limit,
    )


if __name__ == "__main__":
    main()
