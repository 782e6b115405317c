"""What rustc may use: resource limits and a scrubbed environment for every build.

The code rustc compiles is untrusted, and compiling it runs it in part (const evaluation,
macro expansion) with whatever the compiler process can reach. The policy scan refuses what is
known to be dangerous; these limits make the next miss cheap: a build cannot take more than
its share of memory, disk or CPU, fork without bound, or read a secret from its environment.

The limits are set by a launcher that lowers them in its own process and then ``exec``s rustc,
so they apply to rustc and to every process it starts (the linker) and never to the host.
``preexec_fn`` would do the same from the host's side, but it runs Python between ``fork`` and
``exec`` and can deadlock a threaded host (builds run while lanes, watchdogs and HTTP clients
hold locks). The launcher is util-linux's ``prlimit`` when it is installed (a C program: no
measurable cost), else the running Python in isolated mode (``-I -S``, about 10 ms).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from dataclasses import dataclass
from functools import cache

from symbiont._errors import ConfigError

# What the toolchain needs: finding rustc and the linker (PATH), rustup's own state and the
# toolchain the user selected (HOME, RUSTUP_*, CARGO_HOME), scratch space and locale, and the
# few variables some installs and platforms cannot link without. Nothing else from the host
# (API keys, tokens, RUSTC_BOOTSTRAP, RUSTFLAGS-style switches) reaches the compiler.
_KEEP = frozenset(
    {
        "PATH",
        "HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "CARGO_HOME",
        "TMPDIR",
        "TMP",
        "TEMP",
        "LANG",
        "LANGUAGE",
        "LD_LIBRARY_PATH",  # toolchains installed outside the system paths (conda, nix)
        "SDKROOT",  # macOS: where the linker finds the system libraries
        "DEVELOPER_DIR",
        "MACOSX_DEPLOYMENT_TARGET",
        "SYSTEMROOT",  # Windows: needed by any process
        "USERPROFILE",
    }
)
_FIXED = {
    "RUSTC_ICE": "0",  # a compiler crash writes no report file into the build directory
    "RUST_BACKTRACE": "0",  # nor a backtrace into the diagnostics
}


def build_environment(host: dict[str, str] | None = None) -> dict[str, str]:
    """The environment rustc runs with: the variables in ``_KEEP`` and ``LC_*`` from ``host``
    (default: this process's), and no others."""
    source = os.environ if host is None else host
    env = {k: v for k, v in source.items() if k in _KEEP or k.startswith("LC_")}
    env.update(_FIXED)
    return env


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildLimits:
    """Resource limits of each rustc run (and of the linker it starts); None lifts one.

    - ``memory``: address space in bytes (4 GiB). A normal build needs under 1 GiB; a huge
      constant is refused by the compiler ("tried to allocate more memory than available")
      instead of paging the machine.
    - ``output``: the largest file rustc or the linker may write, in bytes (256 MiB; a
      library is well under 1 MiB).
    - ``cpu_seconds``: CPU time (60 s, summed over rustc's threads); a build past it is
      stopped and reported like a build timeout. The wall-clock ``build_timeout`` still applies.
    - ``processes``: how many more processes and threads the build may start beyond those
      running on the machine when it starts (256). Linux only, and not enforced for root with
      CAP_SYS_ADMIN or CAP_SYS_RESOURCE (as in most containers and CI): the other limits are.

    Defaults fit a 2-core, 24 GiB machine running one build per core with room to spare.
    """

    memory: int | None = 4 << 30
    output: int | None = 256 << 20
    cpu_seconds: int | None = 60
    processes: int | None = 256

    def __post_init__(self) -> None:
        for name in ("memory", "output", "cpu_seconds", "processes"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                raise ConfigError(f"BuildLimits.{name} must be an int >= 1 or None, got {value!r}")

    def rlimits(self) -> dict[str, tuple[int, int]]:
        """``prlimit`` resource name -> (soft, hard), for the limits that are set."""
        out: dict[str, tuple[int, int]] = {}
        if self.memory is not None:
            out["as"] = (self.memory, self.memory)
        if self.output is not None:
            out["fsize"] = (self.output, self.output)
        if self.cpu_seconds is not None:
            # SIGXCPU at the soft limit; SIGKILL a little later if it is ignored.
            out["cpu"] = (self.cpu_seconds, self.cpu_seconds + 5)
        tasks = _running_tasks() if self.processes is not None else None
        if self.processes is not None and tasks is not None:
            out["nproc"] = (tasks + self.processes, tasks + self.processes)
        return out

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run under these limits."""
        limits = self.rlimits()
        if not limits or sys.platform == "win32":  # no rlimits there
            return argv
        prlimit = _prlimit()
        if prlimit is not None:
            spec = [f"--{name}={soft}:{hard}" for name, (soft, hard) in limits.items()]
            return [prlimit, *spec, "--", *argv]
        spec = [f"{name}={soft}:{hard}" for name, (soft, hard) in limits.items()]
        return [sys.executable, "-I", "-S", "-c", _LAUNCHER, *spec, "--", *argv]

    def explain(
        self, returncode: int, stderr: str, seconds: float | None = None
    ) -> tuple[str, bool] | None:
        """Why a build ended, when a limit ended it: (message, whether it counts as a
        timeout). None when no limit was involved. ``seconds`` is the build's wall time."""
        by_signal = -returncode if returncode < 0 else None
        # The hard CPU limit kills with SIGKILL; so do the OOM killer and a user's `kill -9`,
        # which must not be reported to the LLM as its code's fault. The CPU limit cannot have
        # been reached before the build ran cpu_seconds spread over every core.
        spent = seconds is None or (
            self.cpu_seconds is not None and seconds * (os.cpu_count() or 1) >= self.cpu_seconds
        )
        if by_signal == signal.SIGXCPU or (
            by_signal == signal.SIGKILL and self.cpu_seconds is not None and spent
        ):
            return (
                f"the build used its CPU-time limit of {self.cpu_seconds} s and was stopped "
                "(is there a long-running constant evaluation or a deeply recursive type?)",
                True,
            )
        if by_signal == signal.SIGXFSZ or (self.output is not None and "File too large" in stderr):
            return (
                f"the build wrote a file larger than its limit of {_size(self.output)} "
                "(is there a huge constant or static table?)",
                False,
            )
        if self.memory is not None and (
            "memory allocation of" in stderr or "out of memory" in stderr.lower()
        ):
            return (
                f"the build ran out of its memory limit of {_size(self.memory)} "
                "(is there a huge constant or array?)",
                False,
            )
        return None


# The fallback launcher: `python -I -S -c _LAUNCHER as=S:H ... -- rustc args...`.
_LAUNCHER = """
import os, resource, signal, sys
# Python ignores these two, and exec would pass that on to rustc: a write past the file-size
# limit must end the build as it does under prlimit.
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
args = sys.argv[1:]
split = args.index("--")
for spec in args[:split]:
    name, _, value = spec.partition("=")
    soft, _, hard = value.partition(":")
    which = getattr(resource, {"as": "RLIMIT_AS", "fsize": "RLIMIT_FSIZE", "cpu": "RLIMIT_CPU",
                               "nproc": "RLIMIT_NPROC"}[name], None)
    try:
        if which is not None:
            resource.setrlimit(which, (int(soft), int(hard)))
    except (ValueError, OSError):
        pass  # a limit this OS does not take (RLIMIT_AS on macOS): the others still apply
os.execvp(args[split + 1], args[split + 1:])
"""


@cache
def _prlimit() -> str | None:
    if not sys.platform.startswith("linux"):
        return None
    return shutil.which("prlimit")


def _running_tasks() -> int | None:
    """Processes and threads on the machine now (Linux), an upper bound on the user's."""
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return int(f.read().split()[3].split("/")[1])
    except (OSError, IndexError, ValueError):
        return None


def _size(value: int | None) -> str:
    if value is None:
        return "none"
    if value >= 1 << 30 and value % (1 << 30) == 0:
        return f"{value >> 30} GiB"
    return f"{value >> 20} MiB"
