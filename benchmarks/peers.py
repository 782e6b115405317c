"""symbiont next to OpenEvolve on one task, one scripted LLM: time per attempt, sorts per second.

    python benchmarks/peers.py [--quick]

The task: ``fn sort(data: &mut [f64])`` (ascending), checked against numpy's sort and timed on
10,000 uniform f64. One local ``OpenAITestServer`` plays the LLM for both systems and answers by
the prompt's content: a prompt about Rust (symbiont's) gets the next Rust candidate, any other
(OpenEvolve's, about Python) the next Python candidate. The candidates are the same six
algorithms in both languages, in the same order: bubble sort, insertion sort, merge sort, an
LSD radix sort (f64 bits mapped to order-preserving u64 keys, 8 passes of 8 bits), a wrong one
(sorts all but the last element) and one that does not compile (a type error in Rust, a syntax
error in Python).

- symbiont: ``rt.search`` with ``OpenAIAgent`` on the server, ``HillClimb``, a budget of six
  LLM requests. LLM and build (validate, rustc, load) times come from the run's store; the
  evaluation time is the evaluator's own wall time.
- OpenEvolve (the ``openevolve`` package, ``pip install symbiont[peers]``): ``run_evolution``
  with its OpenAI-compatible client on the same server, full rewrites, one worker, six
  iterations. Its evaluator runs the same check and timing loop on the Python candidates; the
  "build" is importing the candidate's module; LLM is its iteration time minus the evaluator's.

Both evaluators run the same loop: one checked sort, then fresh copies sorted until 0.2 s
have passed (at most 200 sorts); sorts per second = sorts / their time. Without ``openevolve``
installed (or when it cannot be run offline) the script says why and prints symbiont's side
with the plain-Python sorts per second of the same algorithms, measured in this process.

Wall times are medians per attempt in one run; nothing is asserted: this is a report.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _report as rep
import numpy as np

import symbiont as sb
from symbiont._store import Store
from symbiont.testing import OpenAITestServer, Text

N = 10_000
SEED = 2024

DECL = """
/// Sorts `data` in ascending order.
fn sort(data: &mut [f64]) {
    data.sort_by(|a, b| a.total_cmp(b));
}
"""

RUST: dict[str, str] = {
    "bubble sort": """\
fn sort(data: &mut [f64]) {
    let n = data.len();
    for i in 0..n {
        for j in 0..n - 1 - i {
            if data[j] > data[j + 1] {
                data.swap(j, j + 1);
            }
        }
    }
}
""",
    "insertion sort": """\
fn sort(data: &mut [f64]) {
    for i in 1..data.len() {
        let x = data[i];
        let mut j = i;
        while j > 0 && data[j - 1] > x {
            data[j] = data[j - 1];
            j -= 1;
        }
        data[j] = x;
    }
}
""",
    "merge sort": """\
fn sort(data: &mut [f64]) {
    let mut buf = data.to_vec();
    merge_sort(data, &mut buf);
}

fn merge_sort(a: &mut [f64], buf: &mut [f64]) {
    let n = a.len();
    if n < 2 {
        return;
    }
    let mid = n / 2;
    merge_sort(&mut a[..mid], &mut buf[..mid]);
    merge_sort(&mut a[mid..], &mut buf[mid..]);
    buf[..n].copy_from_slice(a);
    let (mut i, mut j) = (0, mid);
    for slot in a.iter_mut() {
        if j >= n || (i < mid && buf[i] <= buf[j]) {
            *slot = buf[i];
            i += 1;
        } else {
            *slot = buf[j];
            j += 1;
        }
    }
}
""",
    "LSD radix sort": """\
fn sort(data: &mut [f64]) {
    let n = data.len();
    let mut keys: Vec<u64> = data.iter().map(|x| key(*x)).collect();
    let mut buf = vec![0u64; n];
    for pass in 0..8 {
        let shift = 8 * pass;
        let mut counts = [0usize; 256];
        for k in &keys {
            counts[((k >> shift) & 255) as usize] += 1;
        }
        let mut sum = 0;
        for c in counts.iter_mut() {
            let here = *c;
            *c = sum;
            sum += here;
        }
        for k in &keys {
            let d = ((k >> shift) & 255) as usize;
            buf[counts[d]] = *k;
            counts[d] += 1;
        }
        std::mem::swap(&mut keys, &mut buf);
    }
    for (x, k) in data.iter_mut().zip(&keys) {
        *x = from_key(*k);
    }
}

/// Order-preserving key: flip every bit of a negative number, only the sign bit otherwise.
fn key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

fn from_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}
""",
    "wrong (last element left out)": """\
fn sort(data: &mut [f64]) {
    let n = data.len();
    if n > 1 {
        data[..n - 1].sort_by(|a, b| a.total_cmp(b));
    }
}
""",
    "does not compile": """\
fn sort(data: &mut [f64]) {
    let total: u32 = data.len();
    data.sort_by(|a, b| a.total_cmp(b));
}
""",
}

PYTHON: dict[str, str] = {
    "bubble sort": """\
def sort(data):
    n = len(data)
    for i in range(n):
        for j in range(n - 1 - i):
            if data[j] > data[j + 1]:
                data[j], data[j + 1] = data[j + 1], data[j]
""",
    "insertion sort": """\
def sort(data):
    for i in range(1, len(data)):
        x = data[i]
        j = i
        while j > 0 and data[j - 1] > x:
            data[j] = data[j - 1]
            j -= 1
        data[j] = x
""",
    "merge sort": """\
def sort(data):
    data[:] = merge_sort(data)


def merge_sort(a):
    if len(a) < 2:
        return a
    mid = len(a) // 2
    left, right = merge_sort(a[:mid]), merge_sort(a[mid:])
    out = []
    i = j = 0
    while i < len(left) and j < len(right):
        if left[i] <= right[j]:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    out.extend(left[i:])
    out.extend(right[j:])
    return out
""",
    "LSD radix sort": """\
from array import array


def sort(data):
    bits = array("Q", array("d", data).tobytes())
    # Order-preserving key: flip every bit of a negative number, only the sign bit otherwise.
    keys = [(~b & 0xFFFFFFFFFFFFFFFF) if b >> 63 else b | (1 << 63) for b in bits]
    for shift in range(0, 64, 8):
        buckets = [[] for _ in range(256)]
        for k in keys:
            buckets[(k >> shift) & 255].append(k)
        keys = [k for b in buckets for k in b]
    back = array("Q", [k & ~(1 << 63) if k >> 63 else ~k & 0xFFFFFFFFFFFFFFFF for k in keys])
    data[:] = array("d", back.tobytes()).tolist()
""",
    "wrong (last element left out)": """\
def sort(data):
    if len(data) > 1:
        data[:-1] = sorted(data[:-1])
""",
    "does not compile": """\
def sort(data)
    data.sort()
""",
}

PYTHON_SEED = """\
# EVOLVE-BLOCK-START
def sort(data):
    \"\"\"Sorts the list of floats `data` in place, ascending.\"\"\"
    data.sort()
# EVOLVE-BLOCK-END
"""

# The evaluator OpenEvolve loads from a file (in its worker process); the fallback execs it
# here. The same loop as symbiont's evaluator below: one checked sort, then timed sorts.
EVALUATOR_PY = f"""\
import importlib.util
import time

import numpy as np

N = {N}
SEED = {SEED}


def evaluate(program_path):
    started = time.perf_counter()
    try:
        spec = importlib.util.spec_from_file_location("candidate", program_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as e:
        return {{"combined_score": 0.0, "error": repr(e),
                 "load_seconds": time.perf_counter() - started, "eval_seconds": 0.0}}
    loaded = time.perf_counter()
    src = np.random.default_rng(SEED).uniform(0.0, 1.0, N)
    expected = np.sort(src).tolist()
    data = src.tolist()
    module.sort(data)
    if data != expected:
        return {{"combined_score": 0.0, "error": "not sorted",
                 "load_seconds": loaded - started,
                 "eval_seconds": time.perf_counter() - loaded}}
    fresh = src.tolist()
    runs, spent = 0, 0.0
    while runs < 200 and spent < 0.2:
        data = fresh[:]
        t = time.perf_counter()
        module.sort(data)
        spent += time.perf_counter() - t
        runs += 1
    rate = runs / spent
    return {{"combined_score": rate, "sorts_per_second": rate,
             "load_seconds": loaded - started, "eval_seconds": time.perf_counter() - loaded}}
"""


class Script:
    """The scripted LLM: Rust prompts get the next Rust candidate, others the next Python one.
    ``served`` lists (language, candidate) in the order they went out."""

    def __init__(self) -> None:
        self._rust: Iterator[str] = iter(RUST)
        self._python: Iterator[str] = iter(PYTHON)
        self._lock = threading.Lock()
        self.served: list[tuple[str, str]] = []

    def answer(self, body: dict[str, Any]) -> Text:
        prompt = "\n".join(str(m.get("content") or "") for m in body.get("messages", []))
        rust = "```rust" in prompt or "Rust" in prompt
        with self._lock:
            name = next(self._rust if rust else self._python, None)
            if name is None:
                return Text("No more candidates.")
            self.served.append(("rust" if rust else "python", name))
        if rust:
            return Text(f"```rust\n{RUST[name]}```")
        return Text(f"```python\n# EVOLVE-BLOCK-START\n{PYTHON[name]}# EVOLVE-BLOCK-END\n```")

    def last(self, language: str) -> str:
        with self._lock:
            names = [n for lang, n in self.served if lang == language]
        return names[-1] if names else "seed"


def time_sorts(fn: Callable[[np.ndarray], object], src: np.ndarray) -> tuple[bool, float]:
    """(sorted right, sorts per second): the same loop as ``EVALUATOR_PY``, on numpy arrays."""
    data = src.copy()
    fn(data)
    if not np.array_equal(data, np.sort(src)):
        return False, 0.0
    runs, spent = 0, 0.0
    while runs < 200 and spent < 0.2:
        data = src.copy()
        started = time.perf_counter()
        fn(data)
        spent += time.perf_counter() - started
        runs += 1
    return True, runs / spent


def run_symbiont(server: OpenAITestServer, script: Script, tmp: Path) -> dict[str, Any]:
    src = np.random.default_rng(SEED).uniform(0.0, 1.0, N)
    rates: dict[str, float] = {}
    evals: list[float] = []

    def evaluate(fns: Any) -> float:
        started = time.perf_counter()
        try:
            ok, rate = time_sorts(fns.sort, src)
        finally:
            evals.append(time.perf_counter() - started)
        name = script.last("rust")
        rates[name] = rate
        if not ok:
            raise sb.Reject("not sorted: the result differs from numpy's sort")
        return rate

    rt = sb.Runtime(DECL, cache_dir=tmp / "cache")
    agent = sb.OpenAIAgent(base_url=server.base_url, model="m")
    started = time.perf_counter()
    result = rt.search(
        agent,
        "Make `sort` as fast as possible on 10,000 uniform f64.",
        evaluate=evaluate,
        budget=sb.Budget(attempts=len(RUST)),
        store=tmp / "runs.db",
        name="peers",
    )
    wall = time.perf_counter() - started
    store = Store(tmp / "runs.db")
    try:
        attempts = store.attempts(store.require_run(result.name).id)
    finally:
        store.close()
    timings = [a["timings"] for a in attempts]
    if timings and isinstance(timings[0], str):
        timings = [json.loads(t) for t in timings]
    return {
        "attempts": len(attempts),
        "wall": wall,
        "llm": [t["llm"] for t in timings],
        "build": [t["validate"] + t["build"] + t["load"] for t in timings],
        "eval": evals[1:],  # the seed's evaluation precedes the first attempt
        "rates": rates,
    }


def openevolve_missing() -> str | None:
    try:
        import openevolve  # noqa: F401
    except ImportError as e:
        return f"openevolve is not installed ({e}); pip install 'symbiont[peers]'"
    return None


def run_openevolve(server: OpenAITestServer, tmp: Path) -> dict[str, Any]:
    from openevolve import run_evolution
    from openevolve.config import Config, LLMModelConfig

    config = Config()
    config.max_iterations = len(PYTHON)
    config.random_seed = SEED
    config.diff_based_evolution = False  # the scripted replies are whole programs
    config.language = "python"
    config.log_level = "WARNING"
    config.llm.models = [
        LLMModelConfig(
            name="m",
            api_base=server.base_url,
            api_key="none",
            weight=1.0,
            temperature=0.7,
            max_tokens=4096,
            timeout=60,
            retries=0,
            retry_delay=0,
        )
    ]
    config.llm.evaluator_models = []
    config.database.num_islands = 1
    config.database.in_memory = True
    config.evaluator.parallel_evaluations = 1
    config.evaluator.cascade_evaluation = False
    config.evaluator.timeout = 120
    config.evolution_trace.enabled = True
    config.evolution_trace.include_failures = True
    trace = tmp / "trace.jsonl"
    config.evolution_trace.output_path = str(trace)
    config.evolution_trace.buffer_size = 1
    started = time.perf_counter()
    run_evolution(
        PYTHON_SEED,
        EVALUATOR_PY,
        config=config,
        iterations=len(PYTHON),
        output_dir=str(tmp / "openevolve"),
        cleanup=False,
    )
    wall = time.perf_counter() - started
    llm, build, evals, rates = [], [], [], {}
    for line in trace.read_text().splitlines() if trace.exists() else []:
        row = json.loads(line)
        metrics = row.get("child_metrics") or {}
        code = row.get("child_code") or row.get("llm_response") or ""
        name = next((n for n, c in PYTHON.items() if c in code), "?")
        load = float(metrics.get("load_seconds", 0.0))
        ev = float(metrics.get("eval_seconds", 0.0))
        spent = float((row.get("metadata") or {}).get("iteration_time", 0.0))
        llm.append(max(0.0, spent - load - ev))
        build.append(load)
        evals.append(ev)
        rates[name] = float(metrics.get("sorts_per_second", 0.0))
    return {
        "attempts": len(llm),
        "wall": wall,
        "llm": llm,
        "build": build,
        "eval": evals,
        "rates": rates,
    }


def plain_python_rates() -> dict[str, float]:
    """The Python candidates timed here by the same evaluator code OpenEvolve would run."""
    scope: dict[str, Any] = {}
    exec(EVALUATOR_PY, scope)
    rates = {}
    with tempfile.TemporaryDirectory(prefix="symbiont-bench-peers-") as d:
        for name, code in PYTHON.items():
            path = Path(d) / f"c{len(rates)}.py"
            path.write_text(code)
            rates[name] = float(scope["evaluate"](str(path)).get("sorts_per_second", 0.0))
    return rates


def rate_cell(rate: float | None, system: str) -> object:
    if rate is None:  # never evaluated: symbiont refuses a candidate that does not build
        return "build failed" if system.startswith("symbiont") else "-"
    return "rejected" if rate == 0 else rate


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="accepted; the run is one pass")
    parser.parse_args()
    rep.machine()
    logging.getLogger("openevolve").setLevel(logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="symbiont-bench-peers-"))
    script = Script()
    systems: dict[str, dict[str, Any]] = {}
    why_not: str | None = openevolve_missing()
    try:
        with OpenAITestServer(iter(lambda: script.answer, None)) as server:
            systems["symbiont (Rust)"] = run_symbiont(server, script, tmp)
            if why_not is None:
                try:
                    systems["OpenEvolve (Python)"] = run_openevolve(server, tmp)
                except Exception as e:  # a report, not a failure: say what went wrong
                    why_not = f"OpenEvolve failed: {type(e).__name__}: {e}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if why_not is not None or not systems.get("OpenEvolve (Python)", {}).get("attempts"):
        why_not = why_not or "OpenEvolve recorded no iteration in its trace"
        print(f"OpenEvolve not compared: {why_not}")
        print("closest honest comparison: the same algorithms in plain Python, timed here")
        systems["plain Python (same evaluator)"] = {"rates": plain_python_rates()}

    rep.table(
        ["per attempt (median s)", "attempts", "LLM", "build", "evaluation", "run wall / att."],
        [
            (
                name,
                s["attempts"],
                med(s["llm"]),
                med(s["build"]),
                med(s["eval"]),
                s["wall"] / max(1, s["attempts"]),
            )
            for name, s in systems.items()
            if "attempts" in s
        ],
    )
    print()
    names = list(systems)
    rows = []
    for cand in RUST:
        cells = [systems[n]["rates"].get(cand) for n in names]
        ratio = cells[0] / cells[1] if len(cells) > 1 and cells[0] and cells[1] else None
        rows.append(
            (
                cand,
                *(rate_cell(c, n) for c, n in zip(cells, names, strict=True)),
                "-" if ratio is None else f"{ratio:,.0f}x",
            )
        )
    rep.table(["sorts of 10,000 f64 per s", *names, "ratio"], rows)


if __name__ == "__main__":
    main()
