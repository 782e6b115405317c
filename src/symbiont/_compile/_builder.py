"""rustc invocation, per-profile flags and the content-hash cache.

Every build runs in a fresh directory (unique per process and per build), so concurrent builds
and concurrent processes never collide; the result is moved atomically into the cache under the
hash of its normalised source, flags and rustc version, so an identical crate is never compiled
twice, not even by another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from symbiont._codegen import RUNTIME_CRATE, CrateSource
from symbiont._compile._diagnostics import Diagnostic, Diagnostics, parse_rustc_json
from symbiont._compile._limits import BuildLimits, build_environment
from symbiont._compile._toolchain import Toolchain
from symbiont._errors import BuildError, ConfigError, ToolchainError

log = logging.getLogger("symbiont.build")

PROFILES: dict[str, tuple[str, ...]] = {
    "debug": ("-C", "opt-level=0", "-C", "debug-assertions=on", "-C", "overflow-checks=on"),
    "release": ("-C", "opt-level=3", "-C", "debug-assertions=off", "-C", "overflow-checks=off"),
}
_COMMON_FLAGS: tuple[str, ...] = (
    "--edition",
    "2021",
    "-C",
    "panic=unwind",  # catch_unwind at every entry point needs unwinding
    "-C",
    "strip=debuginfo",  # 4.3 MB -> 0.4 MB per library at no build-time cost
    "--error-format=json",
)
_BASE_FLAGS: tuple[str, ...] = ("--crate-type", "cdylib", *_COMMON_FLAGS)
if sys.platform.startswith("linux"):
    # Calls inside the library bind to the library's own definitions, never to a symbol of the
    # same name that an earlier-loaded object (libc, another revision) happens to export.
    _BASE_FLAGS += ("-C", "link-arg=-Wl,-Bsymbolic-functions")

DEFAULT_BUILD_TIMEOUT = 120.0


def default_cache_dir() -> Path:
    """``$SYMBIONT_CACHE_DIR``, else ``$XDG_CACHE_HOME/symbiont``, else ``~/.cache/symbiont``."""
    env = os.environ.get("SYMBIONT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "symbiont"


def library_suffix() -> str:
    return {"darwin": ".dylib", "win32": ".dll"}.get(sys.platform, ".so")


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildResult:
    """Outcome of one build. ``library`` is set on success, ``diagnostics`` on failure.

    ``seconds`` is the whole build as the caller saw it, ``rustc_seconds`` the compiler process
    alone (0 for a cache hit); ``timed_out`` marks a build stopped at its deadline.
    """

    key: str
    library: Path | None
    diagnostics: Diagnostics | None
    seconds: float
    rustc_seconds: float
    cached: bool
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.library is not None


def _single_error(message: str, rendered: str, raw: str = "") -> Diagnostics:
    """A build failure that is not one of rustc's own diagnostics (a deadline, a crash)."""
    diag = Diagnostic(message=message, code=None, file=None, line=None, column=None,
                      rendered=rendered)  # fmt: skip
    return Diagnostics(errors=(diag,), raw=raw)


class Builder:
    """Compiles generated crates into shared libraries, with a content-hash cache.

    ``max_parallel`` bounds concurrent rustc processes (default: the core count); builds of the
    same key in flight at once are compiled once and shared.
    """

    def __init__(
        self,
        toolchain: Toolchain,
        *,
        profile: str = "release",
        cache_dir: Path | None = None,
        extra_flags: tuple[str, ...] = (),
        max_parallel: int | None = None,
        timeout: float = DEFAULT_BUILD_TIMEOUT,
        keep_failed: bool = False,
        limits: BuildLimits | None = BuildLimits(),  # noqa: B008 (frozen, so shared safely)
    ) -> None:
        if profile not in PROFILES:
            raise ConfigError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
        self.toolchain = toolchain
        self.profile = profile
        self.cache_dir = (cache_dir or default_cache_dir()).expanduser()
        self.flags = _BASE_FLAGS + PROFILES[profile] + tuple(extra_flags)
        self._runtime_flags = ("--crate-type", "rlib", *_COMMON_FLAGS, *PROFILES[profile],
                               *extra_flags)  # fmt: skip
        self._runtimes: dict[str, Path] = {}
        self._runtime_lock = threading.Lock()
        self.timeout = timeout
        self.keep_failed = keep_failed
        self.limits = limits
        self._libs = self.cache_dir / "lib"
        self._work = self.cache_dir / "build"
        self._libs.mkdir(parents=True, exist_ok=True)
        self._work.mkdir(parents=True, exist_ok=True)
        self._parallel = max_parallel or os.cpu_count() or 1
        self._semaphores: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}
        self._inflight: dict[str, asyncio.Future[BuildResult]] = {}
        self._flags_digest = hashlib.sha256(
            "\0".join((*self.flags, toolchain.verbose_version)).encode()
        ).hexdigest()

    def runtime_library(self, source: str) -> Path:
        """The support crate (codegen's rt.rs) compiled for this profile: once per cache.

        Blocking; raises :class:`BuildError` when it does not build (a setup problem).
        """
        digest = hashlib.sha256(
            "\0".join((source, *self._runtime_flags, self.toolchain.verbose_version)).encode()
        ).hexdigest()[:24]
        with self._runtime_lock:
            path = self._runtimes.get(digest)
            if path is not None:
                return path
            target = self.cache_dir / "runtime" / digest / f"lib{RUNTIME_CRATE}.rlib"
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(prefix=f"rt{os.getpid()}-", dir=self._work) as tmp:
                    src = Path(tmp) / "rt.rs"
                    src.write_text(source, encoding="utf-8")
                    out = Path(tmp) / target.name
                    cmd = [self.toolchain.rustc, *self._runtime_flags,
                           "--crate-name", RUNTIME_CRATE, str(src), "-o", str(out)]  # fmt: skip
                    try:
                        proc = subprocess.run(
                            self._contained(cmd), capture_output=True, text=True,
                            timeout=self.timeout, check=False, env=build_environment(),
                        )  # fmt: skip
                    except (OSError, subprocess.TimeoutExpired) as exc:
                        raise ToolchainError(
                            f"could not build symbiont's runtime support crate with "
                            f"{self.toolchain.rustc}: {exc}"
                        ) from exc
                    if proc.returncode != 0 or not out.exists():
                        diagnostics = parse_rustc_json(proc.stderr)
                        raise BuildError(
                            "symbiont's runtime support crate does not build with this rustc "
                            f"and these flags:\n{diagnostics.render()}",
                            diagnostics=diagnostics.render(),
                        )
                    os.replace(out, target)
            self._runtimes[digest] = target
            return target

    def _contained(self, cmd: list[str]) -> list[str]:
        """``cmd`` under the build limits (see ``_limits``)."""
        return cmd if self.limits is None else self.limits.command(cmd)

    def key(self, crate: CrateSource, normalised_candidate: str) -> str:
        h = hashlib.sha256()
        h.update(self._flags_digest.encode())
        h.update(crate.digest(normalised_candidate).encode())
        return h.hexdigest()[:40]

    def built_from(self, library: Path) -> str | None:
        """The candidate text ``library`` was compiled from, when the cache kept it."""
        try:
            return library.with_suffix(".rs").read_text(encoding="utf-8")
        except OSError:
            return None

    def cached(self, key: str) -> Path | None:
        path = self._libs / f"{key}{library_suffix()}"
        return path if path.exists() else None

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        sem = self._semaphores.get(loop)
        if sem is None:
            sem = self._semaphores[loop] = asyncio.Semaphore(self._parallel)
        return sem

    async def build(self, crate: CrateSource, normalised_candidate: str) -> BuildResult:
        """Build ``crate`` or return the cached library. Never raises for a bad candidate:
        compile errors and timeouts come back as a result with ``diagnostics``."""
        started = time.perf_counter()
        key = self.key(crate, normalised_candidate)
        hit = self.cached(key)
        if hit is not None:
            return BuildResult(
                key=key,
                library=hit,
                diagnostics=None,
                seconds=time.perf_counter() - started,
                rustc_seconds=0.0,
                cached=True,
            )
        pending = self._inflight.get(key)
        if pending is not None:
            shared = await asyncio.shield(pending)
            return BuildResult(
                key=key,
                library=shared.library,
                diagnostics=shared.diagnostics,
                seconds=time.perf_counter() - started,
                rustc_seconds=0.0,
                cached=shared.ok,
                timed_out=shared.timed_out,
            )
        future: asyncio.Future[BuildResult] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._compile(crate, key, started)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            # Retrieved here so an unawaited future does not log "exception never retrieved".
            future.exception()
            raise
        finally:
            del self._inflight[key]

    async def _compile(self, crate: CrateSource, key: str, started: float) -> BuildResult:
        """One real rustc run in a fresh directory; the library moves into the cache on
        success, and the directory is removed (kept on failure with ``keep_failed``)."""
        runtime = await asyncio.to_thread(self.runtime_library, crate.runtime)
        async with self._semaphore():
            workdir = Path(tempfile.mkdtemp(prefix=f"p{os.getpid()}-", dir=self._work))
            ok = False
            try:
                for name, text in crate.files.items():
                    (workdir / name).write_text(text, encoding="utf-8")
                out = workdir / f"out{library_suffix()}"
                run = await self._rustc(self._command(key, runtime, workdir, out), workdir)
                if run.timed_out:
                    message = f"the build was stopped after {self.timeout:.0f} s"
                    hint = "(is there a huge constant expression or a deeply recursive type?)"
                    diagnostics = _single_error(message, f"error: {message} {hint}")
                elif run.returncode != 0 or not out.exists():
                    diagnostics, over_time = self._failure_diagnostics(crate, run)
                    run = dataclasses.replace(run, timed_out=over_time)
                else:
                    final = self._store(crate, key, workdir, out)
                    ok = True
                    log.debug("built %s in %.3f s (rustc %.3f s)", key,
                              time.perf_counter() - started, run.seconds)  # fmt: skip
                    return BuildResult(key=key, library=final, diagnostics=None,
                                       seconds=time.perf_counter() - started,
                                       rustc_seconds=run.seconds, cached=False)  # fmt: skip
                return BuildResult(key=key, library=None, diagnostics=diagnostics,
                                   seconds=time.perf_counter() - started,
                                   rustc_seconds=run.seconds, cached=False,
                                   timed_out=run.timed_out)  # fmt: skip
            finally:
                if ok or not self.keep_failed:
                    shutil.rmtree(workdir, ignore_errors=True)

    def _command(self, key: str, runtime: Path, workdir: Path, out: Path) -> list[str]:
        return [
            self.toolchain.rustc,
            *self.flags,
            "--crate-name",
            f"symbiont_{key[:16]}",
            # A search path, not --extern: an --extern crate is in every module's prelude,
            # where candidate code could name it.
            "-L",
            f"crate={runtime.parent}",
            f"--remap-path-prefix={workdir}=",
            "lib.rs",
            "-o",
            str(out),
        ]

    async def _rustc(self, cmd: list[str], workdir: Path) -> _Run:
        """Runs rustc under the build deadline; a cancelled build leaves no rustc behind."""
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *self._contained(cmd),
            cwd=workdir,
            env=build_environment(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(), self.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return _Run(returncode=None, stderr="", seconds=time.perf_counter() - started,
                        timed_out=True)  # fmt: skip
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            # Reaped even though this task is being cancelled: no zombie rustc.
            await asyncio.shield(proc.wait())
            raise
        return _Run(returncode=proc.returncode, stderr=stderr.decode("utf-8", errors="replace"),
                    seconds=time.perf_counter() - started)  # fmt: skip

    def _failure_diagnostics(self, crate: CrateSource, run: _Run) -> tuple[Diagnostics, bool]:
        """What the LLM is shown about a failed rustc run, and whether it ran out of time."""
        # Errors are drawn on the code as written, without the inserted guards; spans in files
        # other than the crate's own are never quoted.
        diagnostics = parse_rustc_json(run.stderr, source=crate.candidate,
                                       insertions=crate.insertions,
                                       own_files=tuple(crate.files))  # fmt: skip
        code = run.returncode or 0
        # A build a limit stopped (killed by a signal, or failing without an error of its own)
        # is reported as such.
        if self.limits is not None and (code < 0 or not diagnostics.errors):
            limited = self.limits.explain(code, run.stderr, run.seconds)
            if limited is not None:
                message, over_time = limited
                return _single_error(message, f"error: {message}", raw=run.stderr), over_time
        if code == -signal.SIGKILL and not diagnostics.errors:
            message = (
                "the compiler was killed from outside the build (SIGKILL: the host ran out of "
                "memory or a process manager stopped it); your code may be fine, send it again"
            )
            diagnostics = _single_error(message, f"error: {message}", raw=run.stderr)
        elif not diagnostics.errors:
            message = f"rustc exited with status {run.returncode}"
            diagnostics = _single_error(message, f"error: {message}", raw=run.stderr)
        return diagnostics, False

    def _store(self, crate: CrateSource, key: str, workdir: Path, out: Path) -> Path:
        """Moves a built library into the cache, next to the layout it was built from: a later
        cache hit for the same tokens in another layout (another process) reports panic
        locations in this one."""
        final = self._libs / f"{key}{library_suffix()}"
        (workdir / "written.rs").write_text(crate.candidate, encoding="utf-8")
        os.replace(workdir / "written.rs", final.with_suffix(".rs"))
        os.replace(out, final)
        return final


@dataclass(frozen=True, slots=True, kw_only=True)
class _Run:
    """What one rustc process did (``returncode`` None: stopped at the deadline)."""

    returncode: int | None
    stderr: str
    seconds: float
    timed_out: bool = False
