"""Faults on a real local Ray cluster: a killed Ray worker, a lost node, an interrupted driver.
The node-loss test runs last (the cluster has one node after it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import symbiont as sb

pytestmark = pytest.mark.ray

DECL = "fn run(n: u64) -> u64 { n }"


def slow_check(marks: str, seconds: float):  # type: ignore[no-untyped-def]
    """A check that leaves ``<pid of its Ray worker>`` in ``marks`` and then takes a while."""

    def check(fns: sb.Functions) -> float:
        ray_worker = os.getppid()  # the node worker's parent is the Ray worker
        Path(marks, f"{ray_worker}.{os.getpid()}").write_text("")
        time.sleep(seconds)
        return float(fns.run(1))

    return check


def kill_ray_workers(marks: Path, count: int, stop: threading.Event) -> list[int]:
    """Kills the Ray worker of each of the first ``count`` evaluations that start."""
    killed: list[int] = []
    while len(killed) < count and not stop.is_set():
        for mark in sorted(marks.iterdir()):
            pid = int(mark.name.split(".")[0])
            if pid not in killed:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.05)
    return killed


@pytest.fixture(scope="module")
def rt(cluster):  # type: ignore[no-untyped-def]
    runtime = sb.Runtime(DECL, isolation="ray", ray_address=cluster.address)
    yield runtime
    runtime.close()


@pytest.mark.parametrize(("kills", "outcome"), [(1, "ok"), (2, "crash")])
def test_a_killed_worker_is_retried_once_then_a_crash(
    rt: sb.Runtime, tmp_path: Path, kills: int, outcome: str
) -> None:
    stop = threading.Event()
    killed: list[int] = []
    killer = threading.Thread(target=lambda: killed.extend(kill_ray_workers(tmp_path, kills, stop)))
    killer.start()
    code = f"fn run(n: u64) -> u64 {{ n + {kills} }}"
    try:
        if outcome == "ok":
            rt.register(code, check=slow_check(str(tmp_path), 2.0))
        else:
            with pytest.raises(sb.CandidateError) as info:
                rt.register(code, check=slow_check(str(tmp_path), 2.0))
            assert info.value.failure.kind == "crash"
            assert "died twice" in str(info.value.failure.crash)
    finally:
        stop.set()
        killer.join()
    assert len(killed) == kills
    record = rt.evaluations[-1]
    assert record.outcome == outcome
    if outcome == "ok":
        assert record.tries == 2 and record.score == float(1 + kills)
    # The node workers of the killed Ray workers died with them.
    for mark in tmp_path.iterdir():
        ray_worker, node_worker = map(int, mark.name.split("."))
        if ray_worker in killed:
            assert not _alive(node_worker)


def _alive(pid: int) -> bool:
    time.sleep(0.5)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


DRIVER = """
import os, sys, time
from pathlib import Path
import symbiont as sb
from symbiont.testing import ScriptedAgent

marks = sys.argv[2]

def check(fns):
    Path(marks, f"{os.getppid()}.{os.getpid()}").write_text("")
    time.sleep(60)
    Path(marks, "finished").write_text("")
    return 1.0

rt = sb.Runtime("fn run(n: u64) -> u64 { n }", isolation="ray", ray_address=sys.argv[1])
agent = ScriptedAgent([f"```rust\\nfn run(n: u64) -> u64 {{ n + {k} }}\\n```" for k in (1, 2)])
print("started", flush=True)
rt.evolve_batch(agent, ["Add."] * 2, check=check)
print("not interrupted", flush=True)
"""


def test_ctrl_c_of_the_driver_cancels_its_tasks_on_the_cluster(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marks = tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER))
    proc = subprocess.Popen(
        [sys.executable, str(script), cluster.address, str(marks)],
        env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        started = [tuple(map(int, m.name.split("."))) for m in marks.iterdir()]
        assert len(started) == 2  # one evaluation on each node
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "KeyboardInterrupt" in err and "not interrupted" not in out
    # Every evaluation of that driver stopped: its Ray workers and node workers are gone.
    for ray_worker, node_worker in started:
        for _ in range(40):
            if not (_alive(ray_worker) or _alive(node_worker)):
                break
        assert not _alive(ray_worker) and not _alive(node_worker)
    assert not (marks / "finished").exists()


def test_a_lost_node_leaves_the_run_going_on_the_others(
    rt: sb.Runtime, cluster, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from symbiont.testing import ScriptedAgent

    agent = ScriptedAgent([f"```rust\nfn run(n: u64) -> u64 {{ n + {k} }}\n```" for k in (5, 6)])
    done: list[object] = []
    batch = threading.Thread(
        target=lambda: done.extend(
            rt.evolve_batch(agent, ["Add."] * 2, check=slow_check(str(tmp_path), 4.0))
        )
    )
    batch.start()
    deadline = time.monotonic() + 120
    while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    raylets = cluster.raylet_pids(cluster.second_port)
    assert len(raylets) == 1
    os.kill(raylets[0], signal.SIGKILL)
    batch.join(timeout=240)
    assert not batch.is_alive()
    assert all(isinstance(r, sb.EvolveInfo) for r in done), done
    records = rt.evaluations[-2:]
    assert sorted(r.tries for r in records) == [1, 2]  # the one on the lost node ran again
    assert len({r.node for r in records}) == 1  # on the node that is left
