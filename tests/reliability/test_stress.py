"""Concurrent use: threads call the dispatchers, `rt.map` and pinned handles while another
thread evolves new revisions (scripted lanes, which activate them) and a third keeps swapping the
active revision, with a small `max_loaded` so libraries are evicted, reloaded and unmapped during
the run.

Every revision k computes `tag(x) = x * 1000 + k` and `total(xs) = sum(xs) * 1000 + k`, and
panics on `tag(0)` naming its k, so every result says which revision produced it. The test
asserts: zero wrong results (the x part is right and k belongs to a registered revision; a pinned
handle answers with exactly its revision's k; one vectorised call runs one revision throughout;
a panic names the revision whose code panicked), zero unexpected exceptions, and a substantial
number of calls and swaps. A library unmapped under a running call would crash the process.

Runs for `SYMBIONT_STRESS_SECONDS` (default 60); set it lower while iterating.
"""

from __future__ import annotations

import gc
import os
import random
import re
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

import symbiont as sb
from symbiont._load import loaded_count, reap
from symbiont.testing import ScriptedAgent

SECONDS = float(os.environ.get("SYMBIONT_STRESS_SECONDS", "60"))
MAX_LOADED = 3
SCALE = 1000
MAX_K = SCALE - 1

DECL = """
/// Tag x with the revision that computed it; zero is refused.
fn tag(x: u64) -> u64 {
    if x == 0 {
        panic!("zero input (k=0)");
    }
    x * 1000
}
/// Sum the buffer, tagged.
fn total(xs: &[u64]) -> u64 {
    xs.iter().sum::<u64>() * 1000
}
"""


def revision_code(k: int) -> str:
    return f"""fn tag(x: u64) -> u64 {{
    if x == 0 {{
        panic!("zero input (k={k})");
    }}
    x * 1000 + {k}
}}
fn total(xs: &[u64]) -> u64 {{
    let mut s = 0u64;
    for &x in xs {{
        s = s.wrapping_add(x);
    }}
    s * 1000 + {k}
}}"""


def panicking_code(k: int) -> str:
    """A candidate the check rejects: it panics on the check's input."""
    return revision_code(k).replace("if x == 0 {", "if x == 0 || x == 7 {", 1)


def fenced(code: str) -> str:
    return f"```rust\n{code}\n```"


K_OF_CODE = re.compile(r"x \* 1000 \+ (\d+)")
PANIC_K = re.compile(r"^zero input \(k=(\d+)\)$")


def panic_line(code: str) -> int:
    return next(i for i, line in enumerate(code.splitlines(), 1) if "panic!(" in line)


def k_of(code: str) -> int:
    found = K_OF_CODE.search(code)
    return int(found.group(1)) if found else 0


@dataclass
class Tally:
    """What every thread saw; the lists stay small (errors are capped)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: int = 0
    map_calls: int = 0
    handle_calls: int = 0
    panics: int = 0
    activations: int = 0
    lanes: int = 0
    seen_k: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append(text)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


class Stress:
    def __init__(self, rt: sb.Runtime, seconds: float) -> None:
        self.rt = rt
        self.deadline = time.monotonic() + seconds
        self.tally = Tally()
        # k values some lane was asked to build: a superset of those that can be registered.
        self.started_k: set[int] = {0}
        self.next_k = 1

    def running(self) -> bool:
        return time.monotonic() < self.deadline and len(self.tally.errors) < 20

    def guarded(self, body: Callable[[random.Random], None]) -> Callable[[int], None]:
        def run(seed: int) -> None:
            rng = random.Random(seed)
            try:
                while self.running():
                    body(rng)
            except BaseException:
                self.tally.error(f"{body.__name__} crashed:\n{traceback.format_exc()}")

        return run

    def check_k(self, k: int, where: str) -> None:
        if k not in self.started_k:
            self.tally.error(f"{where}: k={k} was never built")
        with self.tally.lock:
            self.tally.seen_k.add(k)

    # -- callers --------------------------------------------------------------------------

    def call_dispatchers(self, rng: random.Random) -> None:
        tag, total = self.rt.fns.tag, self.rt.fns.total
        buf = np.arange(1, 1001, dtype=np.uint64)
        s = int(buf.sum())
        n = 0
        for i in range(2000):
            x = rng.randrange(1, 1 << 40)
            y = tag(x)
            if y // SCALE != x:
                self.tally.error(f"tag({x}) = {y}: wrong x part")
            self.check_k(y % SCALE, f"tag({x})")
            n += 1
            if i % 50 == 0:
                y = total(buf)
                if y // SCALE != s:
                    self.tally.error(f"total(1..=1000) = {y}: wrong sum")
                self.check_k(y % SCALE, "total")
                n += 1
            if i % 500 == 0:
                self.expect_panic(tag)
        self.tally.add(calls=n)
        # Two threads calling 15 ns builtins back to back can keep handing the GIL to each
        # other and starve every other thread for seconds; a real caller does other work too.
        time.sleep(0)

    def expect_panic(self, fn: Callable[[int], int]) -> None:
        try:
            fn(0)
        except sb.PanicError as exc:
            found = PANIC_K.match(exc.message)
            if found is None or exc.file != "candidate.rs" or exc.revision is None:
                self.tally.error(f"unexpected panic report: {exc!r}")
                return
            k = int(found.group(1))
            self.check_k(k, "panic")
            # The revision the error names is the one whose code panicked, at that line.
            code = self.rt.code(exc.revision)
            if k_of(code) != k or exc.line != panic_line(code):
                self.tally.error(f"panic with k={k} at line {exc.line} attributed to {code!r}")
            self.tally.add(panics=1)
        else:
            self.tally.error("tag(0) returned instead of panicking")

    def call_map(self, rng: random.Random) -> None:
        xs = np.arange(1, 200_001, dtype=np.uint64) * np.uint64(rng.randrange(1, 1 << 20))
        ys = self.rt.map.tag(xs, threads=rng.choice((1, 2)))
        if not np.array_equal(ys // SCALE, xs):
            self.tally.error("map: wrong x parts")
        ks = np.unique(ys % SCALE)
        if len(ks) != 1:
            self.tally.error(f"map: one call ran several revisions: k in {ks.tolist()}")
        for k in ks.tolist():
            self.check_k(int(k), "map")
        self.tally.add(map_calls=1)

    def call_handles(self, rng: random.Random) -> None:
        revisions = self.rt.revisions
        rev = rng.choice(revisions)
        handle = self.rt.revision(rev.number)  # loads the library again if it was evicted
        k = k_of(rev.code)
        for _ in range(200):
            x = rng.randrange(1, 1 << 40)
            if handle.fns.tag(x) != x * SCALE + k:
                self.tally.error(f"revision {rev.number} (k={k}) gave a wrong tag({x})")
        ys = handle.map.tag(np.arange(1, 10_001, dtype=np.uint64))
        if not np.array_equal(ys % SCALE, np.full(10_000, k, dtype=np.uint64)):
            self.tally.error(f"revision {rev.number}'s map did not run revision {rev.number}")
        self.tally.add(handle_calls=201)

    # -- swappers -------------------------------------------------------------------------

    def take_k(self) -> int:
        k = self.next_k
        self.next_k = k % MAX_K + 1  # past 999 the codes repeat: existing revisions match
        with self.tally.lock:
            self.started_k.add(k)
        return k

    def evolve(self, rng: random.Random) -> None:
        lane = self.tally.lanes
        if lane % 4 == 3:
            ks = [self.take_k(), self.take_k()]
            agent = ScriptedAgent([fenced(revision_code(k)) for k in ks])
            results = self.rt.evolve_batch(agent, ["Tag it."] * 2)
            for r in results:
                if not isinstance(r, sb.EvolveInfo):
                    self.tally.error(f"batch lane failed: {r!r}")
            self.tally.add(lanes=2)
            return
        k = self.take_k()
        script = [fenced(revision_code(k))]
        if lane % 5 == 1:  # a candidate the check rejects first: the check path runs too
            script.insert(0, fenced(panicking_code(self.take_k())))
        info = self.rt.evolve(
            ScriptedAgent(script), "Tag it.", check=lambda fns: fns.tag(7) == 7 * SCALE + k
        )
        if k_of(self.rt.code(info.revision)) != k:
            self.tally.error(f"lane for k={k} registered revision {info.revision}")
        self.tally.add(lanes=1, activations=1)

    def activate(self, rng: random.Random) -> None:
        rev = rng.choice(self.rt.revisions)
        self.rt.activate(rev.number)
        self.tally.add(activations=1)
        time.sleep(0.002)


@pytest.fixture
def stress() -> Stress:
    rt = sb.Runtime(DECL, max_loaded=MAX_LOADED, backoff=(0.01, 0.1))
    return Stress(rt, SECONDS)


@pytest.mark.timeout(int(SECONDS * 3) + 180)
def test_calls_stay_correct_while_revisions_are_evolved_swapped_and_evicted(
    stress: Stress,
) -> None:
    rt = stress.rt
    baseline = loaded_count()
    workers = [
        (stress.call_dispatchers, 2),
        (stress.call_map, 1),
        (stress.call_handles, 1),
        (stress.evolve, 1),
        (stress.activate, 1),
    ]
    threads = [
        threading.Thread(target=stress.guarded(body), args=(seed,), name=body.__name__)
        for seed, (body, copies) in enumerate(
            (body, copies) for body, copies in workers for _ in range(copies)
        )
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SECONDS + 120)
    elapsed = time.monotonic() - started
    stuck = [t.name for t in threads if t.is_alive()]
    tally = stress.tally

    assert not stuck, f"threads still running after the run: {stuck}"
    assert tally.errors == [], "\n\n".join(tally.errors)

    # Every k a call saw belongs to a revision that was registered.
    registered = {k_of(r.code) for r in rt.revisions}
    assert tally.seen_k <= registered, (
        f"results from unregistered code: {tally.seen_k - registered}"
    )

    # A substantial run: many calls and swaps, more revisions than stay loaded.
    print(
        f"\nstress: {elapsed:.0f} s, {tally.calls} dispatcher calls, {tally.map_calls} map calls,"
        f" {tally.handle_calls} handle calls, {tally.panics} panics, {tally.lanes} lanes,"
        f" {len(rt.revisions)} revisions, {tally.activations} activations,"
        f" {len(tally.seen_k)} revisions seen by callers"
    )
    assert tally.calls >= 2_000 * SECONDS
    assert tally.map_calls >= 5 * SECONDS and tally.handle_calls >= 200 * SECONDS
    assert tally.panics >= 4 * SECONDS
    assert tally.activations >= 20 * SECONDS
    assert tally.lanes >= max(3, SECONDS / 6)
    assert len(rt.revisions) > MAX_LOADED + 2, "too few revisions for eviction to happen"
    assert len(tally.seen_k) > MAX_LOADED, "the callers did not see the swaps"

    # Memory stays bounded: once the handles are gone, at most max_loaded libraries (plus the
    # one a finished check may still hold until the next collection) remain mapped.
    gc.collect()
    reap()
    assert loaded_count() - baseline <= MAX_LOADED + 1
    # And the runtime is still in one piece.
    rt.activate(0)
    assert rt.fns.tag(5) == 5000
