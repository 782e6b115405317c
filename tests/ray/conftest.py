"""A two-node Ray cluster on this machine (a head and a second ``ray start`` node, one CPU
each), started once for the ``ray`` tests and stopped at the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the ray tests need the ray extra")

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    address: str
    env: dict[str, str]
    second_port: int  # the second node's raylet port: how a test finds it to kill it

    def raylet_pids(self, port: int) -> list[int]:
        """The raylet processes listening on ``port`` (the one of a node)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"raylet") and f"--node_manager_port={port}".encode() in cmd:
                found.append(int(entry.name))
        return found


def _ray(args: list[str], env: dict[str, str]) -> None:
    out = subprocess.run(
        [str(BIN / "ray"), *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"ray {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    temp = Path(tempfile.mkdtemp(prefix="sbray-", dir="/tmp"))
    env = {
        **os.environ,
        # Nodes import the symbiont under test and build nothing of their own.
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
        "RAY_ADDRESS": "",
    }
    port = _free_port()
    second = _free_port()
    common = ["--num-cpus=1", "--object-store-memory=80000000", "--disable-usage-stats"]
    _ray(
        [
            "start",
            "--head",
            f"--port={port}",
            f"--temp-dir={temp}",
            "--include-dashboard=false",
            f"--node-manager-port={_free_port()}",
            f"--object-manager-port={_free_port()}",
            *common,
        ],
        env,
    )
    address = f"127.0.0.1:{port}"
    try:
        _ray(
            [
                "start",
                f"--address={address}",
                f"--node-manager-port={second}",
                f"--object-manager-port={_free_port()}",
                *common,
            ],
            env,
        )
        yield Cluster(address=address, env=env, second_port=second)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        # `ray stop` would end every Ray on this machine (another test run's too): end ours
        # by the processes that carry our temp dir or our ports.
        _stop(temp, (port, second))
        shutil.rmtree(temp, ignore_errors=True)


def _processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        found[int(entry.name)] = (ppid, cmd)
    return found


def _stop(temp: Path, ports: tuple[int, ...]) -> None:
    """Ends the processes of this cluster: those naming its temp dir or ports, and their
    descendants (Ray's agents rename themselves), by pid."""
    marks = [str(temp).encode(), *(f"={p}".encode() for p in ports), f":{ports[0]}".encode()]
    procs = _processes()
    mine = {
        pid
        for pid, (_, cmd) in procs.items()
        if pid != os.getpid() and b"ray" in cmd and any(m in cmd for m in marks)
    }
    grew = True
    while grew:
        children = {pid for pid, (ppid, _) in procs.items() if ppid in mine} - mine
        grew = bool(children)
        mine |= children
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in mine:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        time.sleep(2)
