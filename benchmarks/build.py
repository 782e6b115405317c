"""Build latency: how much of a build is rustc, how much is symbiont; cache hits against builds.

    python benchmarks/build.py [--quick] [--builds N]

The counter function `fn step(counter: &mut usize) { *counter += K; }` is registered with
`rt.register(code)` N times (K differs every time, so every build is a real cache miss) in a
runtime with a fresh temporary cache directory (profile "release", the default). Each build's
wall time is split into:

- rustc: `BuildResult.rustc_seconds`, the compiler process as the builder sees it (spawned by
  asyncio, output read, exit awaited);
- the harness overhead, everything else: validation, crate generation (with the guards),
  hashing, build directory and files, moving the library into the cache, loading it,
  registration and the hop to the background event loop.

The runtime's stages are timed by wrapping the functions it calls (`validate_code`,
`generate`, `Builder.build`, `Library`) for the duration of the run; nothing else changes. As a
reference, the same crate is also compiled by rustc run directly (`subprocess.run`, same flags,
same files). Cache hits are timed on the same code in a second runtime sharing the cache
directory (the library is unloaded from the first one first, so the hit really loads it) and
again in that runtime (the existing revision is reused).

Containment costs, in the same run: builds of a third runtime with `build_limits=None` and
rustc given the host's whole environment (the builder's `build_environment` swapped for the
host's for those builds) against the default (limits applied by the launcher, scrubbed
environment); and cache hits registered in a runtime with `isolation="process"`, where a
worker loads each new library before the host does (the per-attempt cost of that order when
there is no check: with a check the worker loaded it before too).

Targets: harness overhead <= 10% of a build; a cache hit >= 50x faster than a build; the
build limits and scrubbed environment within noise (<= 5%) (medians).
Nothing is asserted: this is a report.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _report as rep

import symbiont as sb
import symbiont._compile._builder as builder_module
import symbiont._runtime as runtime_module
from symbiont._codegen import RUNTIME_CRATE, generate
from symbiont._compile import BuildResult
from symbiont._decl._syntax import normalise_source
from symbiont._evolve import run_sync
from symbiont._load import loaded_count

DECL = """
/// Advance the counter.
fn step(counter: &mut usize) {
    *counter += 1;
}
"""


def candidate(k: int) -> str:
    return f"fn step(counter: &mut usize) {{\n    *counter += {k};\n}}\n"


class Probe:
    """Times the stages the runtime runs, by wrapping the functions it looks up at call time."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = defaultdict(float)
        self.results: list[BuildResult] = []
        self._saved: dict[str, Any] = {}

    def reset(self) -> None:
        self.stages.clear()
        self.results.clear()

    def _timed(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.stages[stage] += time.perf_counter() - started

        return wrapper

    def install(self, *runtimes: sb.Runtime) -> None:
        for name, stage in (
            ("validate_code", "validate"),
            ("generate", "generate"),
            ("Library", "load"),
        ):
            original = getattr(runtime_module, name)
            self._saved[name] = original
            setattr(runtime_module, name, self._timed(stage, original))
        for rt in runtimes:
            builder = rt._builder
            build = builder.build

            async def timed_build(crate: Any, normalised: str, _build: Any = build) -> BuildResult:
                result: BuildResult = await _build(crate, normalised)
                self.results.append(result)
                self.stages["builder"] += result.seconds
                return result

            # An instance attribute shadows the method for this runtime's builder only.
            builder.build = timed_build  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        for name, original in self._saved.items():
            setattr(runtime_module, name, original)


def mapped(library: Path) -> bool:
    return str(library) in Path("/proc/self/maps").read_text()


EMPTY = '#[no_mangle]\npub extern "C" fn f() {}\n'


def direct_rustc(rt: sb.Runtime, code: str | None, workdir: Path) -> float:
    """Seconds for rustc run by subprocess.run with the builder's own flags, on the crate the
    runtime would build for ``code`` (the floor any harness pays), or on an empty cdylib
    (``code=None``: what the generated glue adds to every build)."""
    builder = rt._builder
    extern: list[str] = []
    if code is None:
        files = {"lib.rs": EMPTY}
    else:
        crate = generate(rt.declarations, code, guards=rt.guards)
        files = crate.files
        support = builder.runtime_library(crate.runtime)  # built once, linked by every revision
        extern = [
            "--extern",
            f"{RUNTIME_CRATE}={support}",
            "-L",
            f"dependency={support.parent}",
        ]
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    for name, text in files.items():
        (workdir / name).write_text(text, encoding="utf-8")
    cmd = [
        builder.toolchain.rustc,
        *builder.flags,
        "--crate-name",
        "direct",
        *extern,
        "lib.rs",
        "-o",
        str(workdir / "out.so"),
    ]
    started = time.perf_counter()
    subprocess.run(cmd, cwd=workdir, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer builds")
    parser.add_argument("--builds", type=int, default=None, help="builds (default 20, quick 6)")
    args = parser.parse_args()
    n = args.builds or (6 if args.quick else 20)
    rep.machine()

    tmp = Path(tempfile.mkdtemp(prefix="symbiont-bench-build-"))
    try:
        first = sb.Runtime(DECL, cache_dir=tmp / "cache")
        second = sb.Runtime(DECL, cache_dir=tmp / "cache")  # revision 0 is a cache hit here
        unbounded = sb.Runtime(DECL, cache_dir=tmp / "cache-unbounded", build_limits=None)
        isolated = sb.Runtime(DECL, cache_dir=tmp / "cache", isolation="process")
        scrubbed = builder_module.build_environment
        probe = Probe()
        probe.install(first, second)
        # Warm-up, untimed: page cache for rustc and its libraries, the tree-sitter parser.
        first.register(candidate(1000))
        unbounded.register(candidate(1000))
        isolated.register(candidate(1000))  # starts the worker
        direct_rustc(first, candidate(1001), tmp / "direct")

        rows: dict[str, list[float]] = defaultdict(list)
        stages: dict[str, list[float]] = defaultdict(list)
        unmapped_before_hit: list[bool] = []
        for i in range(n):
            code = candidate(2 + i)  # a new constant: a new key, a real build

            probe.reset()
            started = time.perf_counter()
            number = first.register(code)
            total = time.perf_counter() - started
            (result,) = probe.results
            assert not result.cached
            rows["build (cache miss): first.register(code)"].append(total)
            stages["rustc (BuildResult.rustc_seconds)"].append(result.rustc_seconds)
            stages["harness overhead (total - rustc)"].append(total - result.rustc_seconds)
            stages["  validate (validate_code)"].append(probe.stages["validate"])
            stages["  generate (codegen, guards)"].append(probe.stages["generate"])
            stages["  builder, around rustc (hash, files, cache)"].append(
                result.seconds - result.rustc_seconds
            )
            stages["  load (dlopen, init, entry points)"].append(probe.stages["load"])
            stages["  rest (event-loop hop, registration, reap)"].append(
                total
                - sum(probe.stages[s] for s in ("validate", "generate", "load"))
                - result.seconds
            )

            # The same build without limits and with the host's environment.
            builder_module.build_environment = lambda: dict(os.environ)  # type: ignore[assignment]
            try:
                started = time.perf_counter()
                unbounded.register(candidate(30_000 + i))
                rows["build without limits, host environment"].append(time.perf_counter() - started)
            finally:
                builder_module.build_environment = scrubbed

            rows["rustc run directly (subprocess.run)"].append(
                direct_rustc(first, candidate(10_000 + i), tmp / "direct")
            )
            rows["rustc on an empty cdylib (same flags)"].append(
                direct_rustc(first, None, tmp / "direct")
            )

            first.unload(number)  # so that the second runtime's hit really maps the library
            unmapped_before_hit.append(not mapped(first.revisions[number].library))
            probe.reset()
            started = time.perf_counter()
            second.register(code)
            rows["cache hit, another runtime: second.register(code)"].append(
                time.perf_counter() - started
            )
            assert probe.results[0].cached
            started = time.perf_counter()
            second.register(code)
            rows["cache hit, same runtime (existing revision)"].append(
                time.perf_counter() - started
            )
            started = time.perf_counter()
            isolated.register(code)
            rows["cache hit, isolated runtime (a worker loads it first)"].append(
                time.perf_counter() - started
            )
            crate = generate(first.declarations, code, guards=first.guards)
            started = time.perf_counter()
            run_sync(first._builder.build(crate, normalise_source(code)))
            rows["cache hit, Builder.build alone"].append(time.perf_counter() - started)
        probe.uninstall()
        isolated.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    build = rep.median(rows["build (cache miss): first.register(code)"])
    print(f"\n{n} builds of the counter function, profile release, medians")
    rep.table(
        ["what", "ms", "share of a build", "x faster than a build"],
        [
            *(
                (name, rep.median(v) * 1e3, f"{rep.median(v) / build:.1%}", build / rep.median(v))
                for name, v in rows.items()
            ),
        ],
    )
    print("\nwhere a build's time goes (median of each part; the parts' medians need not add up)")
    rep.table(
        ["part", "ms", "share of a build"],
        [(name, rep.median(v) * 1e3, f"{rep.median(v) / build:.1%}") for name, v in stages.items()],
    )
    direct = rep.median(rows["rustc run directly (subprocess.run)"])
    rustc = rep.median(stages["rustc (BuildResult.rustc_seconds)"])
    empty = rep.median(rows["rustc on an empty cdylib (same flags)"])
    print(
        f"\nrustc as the builder sees it is {(rustc - direct) * 1e3:+.1f} ms against rustc run "
        "directly (asyncio spawn and exit notification, included in rustc above);\n"
        f"the generated crate (glue, rt.rs, guards) costs rustc {(direct - empty) * 1e3:.0f} ms "
        f"more than an empty cdylib ({empty * 1e3:.0f} ms)."
    )
    print(
        f"library unmapped before each hit in another runtime: {all(unmapped_before_hit)}; "
        f"libraries mapped at the end: {loaded_count()}\n"
    )

    free = rep.median(rows["build without limits, host environment"])
    hit_iso = rep.median(rows["cache hit, isolated runtime (a worker loads it first)"])
    hit_other = rep.median(rows["cache hit, another runtime: second.register(code)"])
    print(
        f"isolation: a worker loading each new library before the host costs "
        f"{(hit_iso - hit_other) * 1e3:.1f} ms per attempt without a check "
        f"({hit_iso * 1e3:.2f} ms against {hit_other * 1e3:.2f} ms for the same cache hit "
        "in-process); with a check the worker loaded it anyway.\n"
    )

    overhead = rep.median(stages["harness overhead (total - rustc)"])
    hit = rep.median(rows["cache hit, another runtime: second.register(code)"])
    rep.target(
        "harness overhead <= 10% of a build",
        f"{overhead * 1e3:.1f} ms of {build * 1e3:.0f} ms = {overhead / build:.1%}",
        overhead / build <= 0.10,
    )
    rep.target(
        "build limits + scrubbed environment within 5% of a build without them",
        f"{build * 1e3:.0f} ms with, {free * 1e3:.0f} ms without ({build / free - 1:+.1%})",
        build / free - 1 <= 0.05,
    )
    rep.target(
        "cache hit >= 50x faster than a build",
        f"{build / hit:.0f}x ({hit * 1e3:.2f} ms vs {build * 1e3:.0f} ms)",
        build / hit >= 50,
    )


if __name__ == "__main__":
    main()
