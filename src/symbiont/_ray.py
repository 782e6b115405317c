"""Isolated checks on a Ray cluster: ``Runtime(isolation="ray")`` (the ``ray`` extra).

The same seam as :class:`~symbiont._isolation.ProcessEngine`, with the workers on the
cluster's nodes: each check is a Ray task (one CPU) that hands the task to a worker process of
the node (``_worker.py``, the same worker as on the driver's machine), so a panic, a timeout, a
segfault or an abort of a candidate gives the same records as ``isolation="process"``, and the
Ray worker survives it.

What travels: the library the driver built (tens of kB after stripping, put into the object
store once per library) and the trampoline (once per run); a node writes them into its own
cache and needs neither rustc nor the driver's files. Shared inputs (``Runtime.share``) go into
the object store once per run; a node worker fetches each once. The check travels pickled by
cloudpickle, as with local workers.

Faults: a Ray worker or node that dies under a task is an infrastructure fault, not the
candidate's: the task runs once more (on a fresh worker, on a node that is alive), and a second
death is recorded as a crash. A task that outlives ``isolation_timeout`` by a grace period is
cancelled and recorded as a crash. A cancelled call (Ctrl-C of the driver) cancels its Ray task;
``close()`` cancels every task still running for this runtime. A node worker dies with the Ray
worker that started it (parent-death signal), so a cancelled task leaves nothing running.

Nodes are checked when the runtime connects: the same Python, symbiont and worker protocol as
the driver, the same OS and machine, and every CPU feature that a ``-C target-cpu`` or
``-C target-feature`` flag lets the compiler assume; a node that differs is refused with a
:class:`ConfigError` naming it and what differs.
"""

from __future__ import annotations

import asyncio
import atexit
import builtins
import contextlib
import logging
import platform
import subprocess
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from symbiont._errors import ConfigError, CrashError, SymbiontError
from symbiont._isolation import Answer, CheckTask, WorkerPool, decode
from symbiont._worker import PROTOCOL

log = logging.getLogger("symbiont.ray")

_GRACE = 30.0  # beyond isolation_timeout: the node's own deadline answers first
_PROBE_TIMEOUT = 120.0
_LIBRARIES_KEPT = 64


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            "isolation='ray' needs Ray: pip install 'symbiont[ray]' (or 'ray>=2.30')"
        ) from exc
    return ray


# ---------------------------------------------------------------------- on the nodes

_node_pools: dict[tuple[int | None, float], WorkerPool] = {}
_node_lock = threading.Lock()


def _node_pool(memory: int | None, timeout: float) -> WorkerPool:
    with _node_lock:
        pool = _node_pools.get((memory, timeout))
        if pool is None:
            pool = _node_pools[(memory, timeout)] = WorkerPool(
                memory=memory, timeout=timeout, die_with_parent=True
            )
        return pool


def evaluate_on_node(
    message: dict[str, Any],
    library: bytes,
    trampoline: bytes,
    shared: dict[str, Any],
    limits: tuple[int | None, float],
) -> tuple[tuple[Any, ...] | CrashError, str]:
    """The Ray task: runs ``message`` on a worker process of this node; answers the worker's
    answer (or its crash) and this node's id. ``shared`` maps keys to object refs, fetched only
    for a worker that lacks them; ``limits`` are the worker's memory and deadline."""
    import ray

    node = str(ray.get_runtime_context().get_node_id())
    message = {**message, "library_bytes": library, "trampoline_bytes": trampoline}

    def fetch(keys: list[str]) -> dict[str, Any]:
        return dict(zip(keys, ray.get([shared[k] for k in keys]), strict=True))

    return _node_pool(*limits).run(message, list(shared), fetch), node


def describe_node() -> dict[str, Any]:
    """What the driver compares with its own: interpreter, symbiont, platform, CPU flags."""
    from importlib import metadata

    try:
        version = metadata.version("symbiont")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        version = "unknown"
    try:
        import ray

        node = str(ray.get_runtime_context().get_node_id())
    except Exception:  # pragma: no cover - called outside Ray (the driver describes itself)
        node = "driver"
    return {
        "node": node,
        "host": platform.node(),
        "python": f"{sys.implementation.name} {platform.python_version()}",
        "symbiont": version,
        "protocol": PROTOCOL,
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu_flags": sorted(cpu_flags()),
    }


def cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux names them (empty elsewhere: nothing to compare)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


# ---------------------------------------------------------------------- node checks

# rustc's x86 feature names where /proc/cpuinfo says something else.
_CPUINFO_NAMES = {
    "sse3": "pni", "sse4.1": "sse4_1", "sse4.2": "sse4_2", "lzcnt": "abm", "cmpxchg16b": "cx16",
    "sha": "sha_ni", "avxvnni": "avx_vnni", "ermsb": "erms", "avx512vpopcntdq":
    "avx512_vpopcntdq", "avx512vnni": "avx512_vnni", "avx512bitalg": "avx512_bitalg",
    "avx512vbmi2": "avx512_vbmi2", "avx512bf16": "avx512_bf16", "avx512fp16": "avx512_fp16",
    "avx512vp2intersect": "avx512_vp2intersect", "bmi1": "bmi1", "rdrand": "rdrand",
}  # fmt: skip
# Features rustc lists that are no CPU flag of their own.
_NOT_CPU = {"crt-static", "x87", "fxsr", "sse", "sse2", "avx512vl", "xsave"}


def assumed_features(rustc: str, flags: Sequence[str]) -> tuple[str, ...]:
    """The CPU features ``flags`` let the compiler assume beyond the target's baseline."""
    if not any("target-cpu" in f or "target-feature" in f for f in flags):
        return ()

    def features(extra: Sequence[str]) -> set[str]:
        out = subprocess.run(
            [rustc, "--print", "cfg", *extra], capture_output=True, text=True, check=True
        ).stdout
        return {
            line.partition("=")[2].strip('"')
            for line in out.splitlines()
            if line.startswith("target_feature=")
        }

    return tuple(sorted(features(flags) - features(())))


def node_problems(
    driver: Mapping[str, Any], node: Mapping[str, Any], assumed: Sequence[str]
) -> list[str]:
    """What makes ``node`` unable to run what ``driver`` builds (empty: nothing)."""
    problems = [
        f"{what} {node[what]} (the driver has {driver[what]})"
        for what in ("python", "symbiont", "protocol", "platform")
        if node[what] != driver[what]
    ]
    flags = set(node["cpu_flags"])
    if assumed and flags:
        missing = [
            f
            for f in assumed
            if f not in _NOT_CPU and _CPUINFO_NAMES.get(f, f.replace(".", "_")) not in flags
        ]
        if missing:
            problems.append(
                f"a CPU without {', '.join(missing)}, which the rustc flags let the compiler use"
            )
    return problems


def check_nodes(ray: Any, assumed: Sequence[str]) -> list[dict[str, Any]]:
    """Describes every alive node (a zero-CPU probe pinned to each); raises ConfigError naming
    each node that cannot run the driver's libraries."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0, max_retries=1)(describe_node)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = [
        probe.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=n["NodeID"], soft=False)
        ).remote()
        for n in nodes
    ]
    try:
        reports: list[dict[str, Any]] = ray.get(refs, timeout=_PROBE_TIMEOUT)
    except Exception as exc:
        raise ConfigError(
            f"could not describe the Ray cluster's nodes ({type(exc).__name__}: {exc}): is "
            "symbiont installed on every node (in the image, or through a runtime_env)?"
        ) from exc
    driver = describe_node()
    refused = [
        f"node {r['node'][:12]} on {r['host']}: {'; '.join(p)}"
        for r in reports
        if (p := node_problems(driver, r, assumed))
    ]
    if refused:
        raise ConfigError(
            "these Ray nodes cannot run the candidates this driver builds; install the same "
            "Python and symbiont there, or drop the target-cpu flag:\n  " + "\n  ".join(refused)
        )
    return reports


# ---------------------------------------------------------------------- the driver's side


class RayEngine:
    """Isolated checks as Ray tasks on a cluster's nodes."""

    node_kind = "ray"

    def __init__(
        self,
        *,
        address: str | None,
        memory: int | None,
        timeout: float,
        max_in_flight: int | None,
        rustc: str,
        rustc_flags: Sequence[str],
        trampoline: bytes,
        trampoline_name: str,
    ) -> None:
        ray = self._ray = _import_ray()
        self._owns = not ray.is_initialized()
        if self._owns:
            try:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            except Exception as exc:
                raise ConfigError(
                    f"cannot connect to the Ray cluster at {address or 'a new local instance'}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        self.nodes = check_nodes(ray, assumed_features(rustc, rustc_flags))
        self.memory = memory
        self.timeout = timeout
        self.max_in_flight = max_in_flight or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._task = ray.remote(num_cpus=1, max_retries=0)(evaluate_on_node)
        self._trampoline = ray.put(trampoline)
        self._trampoline_name = trampoline_name
        self._shared: dict[str, Any] = {}
        self._libraries: OrderedDict[str, Any] = OrderedDict()
        self._in_flight: set[Any] = set()
        self._gate: asyncio.Semaphore | None = None
        self.crashes = 0
        self.retries = 0
        # A driver that exits (Ctrl-C, end of script) cancels what it left running.
        self._exit_hook = weakref.WeakMethod(self.close)
        atexit.register(_close_if_alive, self._exit_hook)
        log.info(
            "connected to a Ray cluster of %d node(s), %d evaluation(s) in flight at most",
            len(self.nodes), self.max_in_flight,
        )  # fmt: skip

    def share(self, key: str, value: Any) -> None:
        self._shared[key] = self._ray.put(value)

    def _library(self, task: CheckTask) -> Any:
        ref = self._libraries.get(task.key)
        if ref is None:
            ref = self._libraries[task.key] = self._ray.put(task.library.read_bytes())
            while len(self._libraries) > _LIBRARIES_KEPT:
                self._libraries.popitem(last=False)
        self._libraries.move_to_end(task.key)
        return ref

    def _message(self, task: CheckTask) -> dict[str, Any]:
        message = task.message()
        del message["library"], message["trampoline"]
        message.update(
            key=task.key,
            suffix=task.library.suffix,
            trampoline_name=self._trampoline_name,
        )
        return message

    async def run(self, task: CheckTask) -> Answer:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.max_in_flight)
        ray = self._ray
        async with self._gate:
            message = self._message(task)
            shared = {k: self._shared[k] for k in task.shared}
            library = self._library(task)
            died: Exception | None = None
            for tries in (1, 2):
                ref = self._task.remote(
                    message, library, self._trampoline, shared, (self.memory, self.timeout)
                )
                self._in_flight.add(ref)
                try:
                    raw, node = await asyncio.wait_for(
                        asyncio.wrap_future(ref.future()), self.timeout + _GRACE
                    )
                except builtins.TimeoutError:
                    ray.cancel(ref, force=True)
                    self.crashes += 1
                    return CrashError(
                        f"no answer from the Ray cluster within {self.timeout + _GRACE:g} s: "
                        "the evaluation task was cancelled",
                        signal=None, exit_code=None, stderr="",
                    )  # fmt: skip
                except asyncio.CancelledError:
                    ray.cancel(ref, force=True)
                    raise
                except ray.exceptions.RayTaskError as exc:
                    raise SymbiontError(f"the evaluation task failed on its node: {exc}") from exc
                except ray.exceptions.RayError as exc:
                    died = exc
                    if tries == 1:
                        self.retries += 1
                        log.warning("a Ray worker died under an evaluation; running it again: %s",
                                    _first_line(exc))  # fmt: skip
                    continue
                finally:
                    self._in_flight.discard(ref)
                answer = decode(raw, node=node, tries=tries)
                if isinstance(answer, CrashError):
                    self.crashes += 1
                return answer
        self.crashes += 1
        return CrashError(
            "the Ray worker evaluating this candidate died twice (a killed worker or a lost "
            f"node): {_first_line(died)}",
            signal=None, exit_code=None, stderr=str(died)[-2000:],
        )  # fmt: skip

    def close(self) -> None:
        """Cancels this runtime's tasks still running (the connection stays for others)."""
        for ref in list(self._in_flight):
            with contextlib.suppress(Exception):
                self._ray.cancel(ref, force=True)
        self._in_flight.clear()


def _first_line(exc: BaseException | None) -> str:
    return str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else "?"


def _close_if_alive(method: weakref.WeakMethod[Any]) -> None:
    close = method()
    if close is not None:
        close()
