"""Evaluations fanned out: in-process, worker processes, and a local Ray cluster.

    python benchmarks/ray_eval.py [--candidates 16] [--burn 0.5]

16 candidates (already built: the builds are cache hits, so what is timed is evaluation) whose
check burns 0.5 s of CPU in Python each, run four ways in one run:

- local serial: ``rt.register(code, check=...)`` one after the other, in-process;
- ``isolation="process"``: ``rt.evolve_batch`` over 16 lanes, two worker processes;
- ``isolation="ray"`` on a local cluster with one worker CPU (a head node, ``--num-cpus=1``),
  then with two (a second ``ray start`` node joins, one CPU).

Each Ray row is timed after a warm-up batch (node workers started). Reported: wall time, the
per-evaluation difference against serial (``wall / n - serial / n``: on a loaded machine this
mixes in contention), the overhead Ray adds per evaluation measured directly (the round trip of
a trivial check, one at a time: what the driver waited beyond the check's own time, Ray minus
local worker processes), the speed-up of two Ray
CPUs over one, the CPU seconds Ray's own daemons (GCS, raylets, agents) used during the
two-CPU run, and what travels per candidate (the library's size) against building on a node
(one build's time). Targets: overhead <= 50 ms per evaluation; two CPUs >= 1.5x one. Needs the
``ray`` extra. Nothing is asserted: this is a report.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import table

BURN = 0.5
_TRIPS = 8  # one-at-a-time trivial checks per engine: the round trip an evaluation costs


def round_trip(rt: object, codes: list[str]) -> float:
    """Median seconds the driver waits for a trivial check beyond the check's own time."""
    import statistics

    for code in codes:
        rt.register(code, check=lambda fns: float(fns.run(1)))  # type: ignore[attr-defined]
    records = rt.evaluations[-len(codes) :]  # type: ignore[attr-defined]
    return statistics.median(r.seconds - (r.check_seconds or 0.0) for r in records)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray(args: list[str], env: dict[str, str]) -> None:
    ray = str(Path(sys.executable).parent / "ray")
    subprocess.run([ray, *args], env=env, capture_output=True, text=True, check=True, timeout=300)


def _processes() -> dict[int, tuple[int, bytes, float]]:
    """pid -> (parent, command line, CPU seconds) of every process."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        found[int(entry.name)] = (int(fields[1]), cmd, (int(fields[11]) + int(fields[12])) / tick)
    return found


def _cluster_pids(marks: list[bytes]) -> set[int]:
    procs = _processes()
    mine = {p for p, (_, cmd, _) in procs.items() if b"ray" in cmd and any(m in cmd for m in marks)}
    while True:
        children = {p for p, (pp, _, _) in procs.items() if pp in mine} - mine
        if not children:
            return mine
        mine |= children


def _daemon_cpu(marks: list[bytes]) -> float:
    """CPU seconds of the cluster's daemons so far (not its workers)."""
    procs = _processes()
    return sum(
        procs[p][2]
        for p in _cluster_pids(marks)
        if p in procs and b"default_worker" not in procs[p][1] and b"_worker" not in procs[p][1]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--burn", type=float, default=BURN)
    args = parser.parse_args()
    try:
        import ray
    except ImportError:
        print("needs the ray extra: pip install 'symbiont[ray]'")
        return
    import symbiont as sb
    from symbiont.testing import ScriptedAgent

    n, burn = args.candidates, args.burn
    cache = Path(tempfile.mkdtemp(prefix="sb-ray-bench-"))
    os.environ["SYMBIONT_CACHE_DIR"] = str(cache)
    decl = "fn run(n: u64) -> u64 { n }"
    codes = [f"fn run(n: u64) -> u64 {{ n + {k} }}" for k in range(1, 2 * n + 3)]
    trivial = [f"fn run(n: u64) -> u64 {{ n * {k} }}" for k in range(2, 2 + 3 * _TRIPS)]

    def check(fns: sb.Functions) -> float:
        end = time.process_time() + burn
        while time.process_time() < end:
            pass
        return float(fns.run(0))

    def batch(rt: sb.Runtime, chosen: list[str]) -> float:
        agent = ScriptedAgent([f"```rust\n{c}\n```" for c in chosen])
        started = time.perf_counter()
        results = rt.evolve_batch(agent, ["Add."] * len(chosen), check=check)
        wall = time.perf_counter() - started
        assert all(isinstance(r, sb.EvolveInfo) for r in results), results
        return wall

    # Build everything once (the cache serves every runtime below), and time one build.
    builder = sb.Runtime(decl)
    started = time.perf_counter()
    builder.register(codes[0])
    one_build = time.perf_counter() - started
    for code in codes[1:] + trivial:
        builder.register(code)
    size = builder.revisions[-1].library.stat().st_size

    rows = []
    serial_rt = sb.Runtime(decl)
    started = time.perf_counter()
    for code in codes[:n]:
        serial_rt.register(code, check=check)
    serial = time.perf_counter() - started
    rows.append(("local serial (in-process)", serial, None))

    proc_rt = sb.Runtime(decl, isolation="process")
    batch(proc_rt, codes[n : n + 2])  # warm-up: start the workers
    rows.append(('isolation="process" (2 workers)', batch(proc_rt, codes[:n]), None))
    trips = {"process": round_trip(proc_rt, trivial[:_TRIPS])}
    proc_rt.close()

    temp = Path(tempfile.mkdtemp(prefix="sbray-", dir="/tmp"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_ADDRESS": ""}  # fmt: skip
    port, second = _free_port(), _free_port()
    marks = [str(temp).encode(), f"={port}".encode(), f":{port}".encode(), f"={second}".encode()]
    common = ["--num-cpus=1", "--object-store-memory=80000000", "--disable-usage-stats"]
    try:
        _ray(["start", "--head", f"--port={port}", f"--temp-dir={temp}",
              "--include-dashboard=false", *common], env)  # fmt: skip
        address = f"127.0.0.1:{port}"
        ray_rt = sb.Runtime(decl, isolation="ray", ray_address=address)
        batch(ray_rt, codes[n : n + 1])
        rows.append(("Ray, 1 worker CPU", batch(ray_rt, codes[:n]), None))
        trips["Ray"] = round_trip(ray_rt, trivial[_TRIPS : 2 * _TRIPS])
        ray_rt.close()
        _ray(["start", f"--address={address}", f"--node-manager-port={second}", *common], env)
        deadline = time.monotonic() + 60
        while ray.cluster_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        ray_rt = sb.Runtime(decl, isolation="ray", ray_address=address)
        batch(ray_rt, codes[n : n + 2])
        daemons = _daemon_cpu(marks)
        wall2 = batch(ray_rt, codes[:n])
        daemons = _daemon_cpu(marks) - daemons
        rows.append(("Ray, 2 worker CPUs (2 nodes)", wall2, daemons))
        ray_rt.close()
    finally:
        ray.shutdown()
        pids = _cluster_pids(marks)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            time.sleep(2)
        shutil.rmtree(temp, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)

    print(f"{n} candidates, a check burning {burn:g} s CPU each; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")  # fmt: skip
    table(
        ["mode", "wall s", "per evaluation ms", "overhead vs serial ms", "daemon CPU s"],
        [
            (
                name,
                f"{wall:.2f}",
                f"{wall / n * 1e3:.0f}",
                f"{(wall - serial) / n * 1e3:+.0f}",
                "" if d is None else f"{d:.2f}",
            )
            for name, wall, d in rows
        ],
    )
    one, two = rows[2][1], rows[3][1]
    overhead = (trips["Ray"] - trips["process"]) * 1e3
    print(
        f"\nround trip of a trivial check (driver wait minus the check's own time, median of "
        f"{_TRIPS}): process {trips['process'] * 1e3:.1f} ms, Ray {trips['Ray'] * 1e3:.1f} ms"
    )
    print(f"library shipped per candidate: {size / 1024:.0f} KiB; building it instead: "
          f"{one_build * 1e3:.0f} ms of a node's CPU (and rustc on every node)")  # fmt: skip
    print(f"target: Ray overhead <= 50 ms per evaluation: {overhead:.0f} ms "
          f"{'MET' if overhead <= 50 else 'NOT MET'}")  # fmt: skip
    print(f"target: two Ray CPUs >= 1.5x one: {one / two:.2f}x "
          f"{'MET' if one / two >= 1.5 else 'NOT MET'}")  # fmt: skip


if __name__ == "__main__":
    main()
