"""`symbiont runs | show | best | log | diff | export | plot | resume`: reading the run store.

Listings are plain text (fast to start, no control characters) or JSON with ``--json``; they
read the store through ``symbiont._store`` only, so no compiler, agent or numpy is loaded.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from symbiont._errors import StoreError
from symbiont._failures import from_facts
from symbiont._store import REDACTED, RunRow, Store, default_store_path


def _store(args: argparse.Namespace) -> Store:
    path = Path(args.store) if args.store else default_store_path()
    if not path.exists():
        raise StoreError(f"no store at {path}: run a search first, or pass --store PATH")
    return Store(path)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


# Control characters (ANSI escapes, newlines) and bidi overrides in a name, a panic message
# or a feedback line would drive the terminal or reorder what it shows: they print escaped.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _safe(value: Any) -> str:
    return _UNSAFE.sub(lambda m: repr(m.group())[1:-1], str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_safe(c) for c in headers]] + [[_safe(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _run_dict(run: RunRow) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "stop_reason": run.stop_reason,
        "rounds": run.rounds,
        "attempts": run.attempts,
        "best_revision": run.best_revision,
        "best_score": run.best_score,
        "tokens": run.tokens,
        "cost": run.cost,
        "created": run.created,
        "updated": run.updated,
    }


def _emit_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def cmd_runs(args: argparse.Namespace) -> int:
    runs = _store(args).runs()
    if args.json:
        _emit_json([_run_dict(r) for r in runs])
        return 0
    now = time.time()
    rows = [
        (
            r.name,
            r.status,
            r.rounds,
            _num(r.best_score),
            r.tokens,
            f"{r.cost:.4f}",
            _age(now - r.updated),
        )
        for r in runs
    ]
    print(_table(("name", "status", "rounds", "best", "tokens", "cost", "age"), rows))
    return 0


def _per_round(store: Store, run_id: int) -> list[dict[str, Any]]:
    attempts = store.query(
        "SELECT round, count(*) AS attempts, sum(prompt_tokens + completion_tokens) AS tokens, "
        "sum(cost) AS cost, sum(failure_kind IS NOT NULL) AS failures, "
        "count(DISTINCT lane) AS lanes FROM attempts WHERE run_id = ? GROUP BY round",
        (run_id,),
    )
    revisions = {
        r["round"]: r
        for r in store.query(
            "SELECT round, count(*) AS revisions, max(score) AS high, min(score) AS low "
            "FROM revisions WHERE run_id = ? GROUP BY round",
            (run_id,),
        )
    }
    out = []
    for a in attempts:
        rev = revisions.get(a["round"])
        out.append(
            {
                "round": a["round"],
                "lanes": a["lanes"],
                "attempts": a["attempts"],
                "failures": a["failures"],
                "tokens": a["tokens"],
                "cost": a["cost"],
                "revisions": rev["revisions"] if rev else 0,
                "high": rev["high"] if rev else None,
                "low": rev["low"] if rev else None,
            }
        )
    return out


def cmd_show(args: argparse.Namespace) -> int:
    store = _store(args)
    run = store.require_run(args.run)
    rounds = _per_round(store, run.id)
    if args.json:
        _emit_json(
            {
                **_run_dict(run),
                "task": run.task,
                "settings": run.settings,
                "argv": run.argv,
                "rounds_table": rounds,
            }
        )
        return 0
    s = run.settings
    stop = f", {run.stop_reason}" if run.stop_reason else ""
    print(_safe(f"run {run.name} ({run.status}{stop})"))
    print(_safe(f"task: {run.task.strip().splitlines()[0] if run.task.strip() else ''}"))
    print(
        f"strategy: {s.get('strategy', {}).get('name')}  budget: "
        + ", ".join(f"{k}={v}" for k, v in s.get("budget", {}).items() if v is not None)
    )
    direction = "max" if s.get("maximize", True) else "min"
    print(
        f"best: revision {run.best_revision} {s.get('objective', 'score')}="
        f"{_num(run.best_score)} ({direction})"
    )
    print(f"rounds {run.rounds}, attempts {run.attempts}, tokens {run.tokens}, cost {run.cost:.4f}")
    print()
    rows = [
        (
            r["round"],
            r["lanes"],
            r["attempts"],
            r["failures"],
            r["revisions"],
            _num(r["high"]),
            r["tokens"],
            f"{r['cost']:.4f}",
        )
        for r in rounds
    ]
    print(
        _table(
            ("round", "lanes", "attempts", "failures", "revisions", "high", "tokens", "cost"), rows
        )
    )
    return 0


def _revision(store: Store, run: RunRow, number: int | None) -> dict[str, Any]:
    if number is None:
        number = run.best_revision if run.best_revision is not None else 0
    # A number past SQLite's 64-bit integers names no revision (not an OverflowError).
    in_range = -(2**63) <= number < 2**63
    rows = (
        store.query("SELECT * FROM revisions WHERE run_id = ? AND number = ?", (run.id, number))
        if in_range
        else []
    )
    if not rows:
        raise StoreError(f"run {run.name!r} has no revision {number}")
    d = dict(rows[0])
    d["metrics"] = json.loads(d["metrics"])
    return d


def cmd_best(args: argparse.Namespace) -> int:
    store = _store(args)
    run = store.require_run(args.run)
    if run.best_revision is None:
        print(f"run {run.name!r} has no scored revision yet", file=sys.stderr)
        return 1
    rev = _revision(store, run, None)
    if args.json:
        _emit_json(
            {
                k: rev[k]
                for k in (
                    "number",
                    "score",
                    "metrics",
                    "spread",
                    "parent",
                    "round",
                    "lane",
                    "island",
                    "code",
                )
            }
        )
        return 0
    metrics = ", ".join(f"{k}={_num(v)}" for k, v in sorted(rev["metrics"].items()))
    print(
        _safe(
            f"revision {rev['number']} score={_num(rev['score'])} ({metrics}) round {rev['round']}"
        )
    )
    if args.code:
        print(rev["code"].rstrip())
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    store = _store(args)
    run = store.require_run(args.run)
    attempts = store.attempts(run.id, last=args.n)
    if args.json:
        _emit_json(attempts)
        return 0
    rows = []
    for a in attempts:
        what = a["failure_kind"] or a["outcome"]
        # The failure's own one-line summary ("panic in `f` on line 3: ..."), from its facts;
        # runs recorded before facts were stored show the feedback's first line.
        failure = from_facts(a["failure"]) if a["failure"] is not None else None
        note = [failure.summary] if failure else (a["feedback"] or "").strip().splitlines()
        rows.append(
            (
                a["round"],
                a["lane"],
                a["attempt"],
                what,
                "-" if a["revision"] is None else a["revision"],
                a["prompt_tokens"] + a["completion_tokens"],
                note[0][:80] if note else "",
            )
        )
    print(_table(("round", "lane", "try", "outcome", "rev", "tokens", "feedback"), rows))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    store = _store(args)
    run = store.require_run(args.run)
    a, b = _revision(store, run, args.a), _revision(store, run, args.b)
    sys.stdout.writelines(
        difflib.unified_diff(
            a["code"].splitlines(keepends=True),
            b["code"].splitlines(keepends=True),
            fromfile=f"revision {args.a}",
            tofile=f"revision {args.b}",
        )
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    store = _store(args)
    run = store.require_run(args.run)
    rev = _revision(store, run, args.rev)
    sys.stdout.write(rev["code"] if rev["code"].endswith("\n") else rev["code"] + "\n")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("symbiont plot needs matplotlib: pip install 'symbiont[plot]'", file=sys.stderr)
        return 2
    store = _store(args)
    run = store.require_run(args.run)
    revs = store.revisions(run.id)
    scored = [r for r in revs if r["score"] is not None]
    maximize = run.settings.get("maximize", True)
    objectives = run.settings.get("strategy", {}).get("objectives")
    panels = 2 if objectives and len(objectives) >= 2 else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), squeeze=False)
    ax = axes[0][0]
    ax.scatter(
        [r["number"] for r in scored], [r["score"] for r in scored], s=12, label="revision score"
    )
    best: list[float] = []
    rounds = sorted({r["round"] for r in scored})
    for rnd in rounds:
        upto = [r["score"] for r in scored if r["round"] <= rnd]
        best.append(max(upto) if maximize else min(upto))
    # Best so far per round, drawn at the last revision of the round.
    last_of = [max(r["number"] for r in scored if r["round"] == rnd) for rnd in rounds]
    ax.step(last_of, best, where="post", color="C1", label="best so far (per round)")
    ax.set_xlabel("revision")
    ax.set_ylabel(run.settings.get("objective", "score"))
    ax.set_title(run.name)
    ax.legend()
    if panels == 2:
        x, y = list(objectives)[:2]
        pts = [r for r in scored if x in r["metrics"] and y in r["metrics"]]
        ax2 = axes[0][1]
        ax2.scatter([r["metrics"][x] for r in pts], [r["metrics"][y] for r in pts], s=12)
        ax2.set_xlabel(x)
        ax2.set_ylabel(y)
        ax2.set_title("metrics of every revision")
    fig.tight_layout()
    fig.savefig(args.output)
    print(f"wrote {args.output}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    store = _store(args)
    run = store.require_run(args.run)
    if not run.argv:
        print(f"run {run.name!r} has no stored command line", file=sys.stderr)
        return 2
    if REDACTED in run.argv:
        print(
            f"run {run.name!r} was started with a secret on its command line, which was not "
            f"stored: {' '.join(run.argv)}\nput the secret in the environment (API_KEY) and "
            "run that command again with SYMBIONT_RESUME set to the run's name",
            file=sys.stderr,
        )
        return 2
    # The stored command line is data, re-run as it was: resume is switched on through the
    # environment (search() reads SYMBIONT_RESUME for the run of that name).
    try:
        command = _resume_command(run)
    except StoreError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    env = {**os.environ, "SYMBIONT_RESUME": run.name}
    print(_safe(f"resuming {run.name}: {' '.join(command)} (in {run.cwd})"), file=sys.stderr)
    try:
        return subprocess.run(command, cwd=run.cwd, env=env, check=False).returncode
    except OSError as exc:
        print(f"cannot re-run {run.name!r} in {run.cwd}: {exc}", file=sys.stderr)
        return 2


# Interpreter options a stored command line may carry; `-c` (a program as text) never.
_PY_FLAGS = frozenset(
    ["-u", "-O", "-OO", "-B", "-E", "-s", "-S", "-I", "-P", "-q", "-b", "-bb", "-d", "-v"]
)
_PY_FLAGS_WITH_VALUE = frozenset(("-X", "-W"))


def _resume_command(run: RunRow) -> list[str]:
    """The command that resumes ``run``: this interpreter running the stored script or module
    with its stored arguments. The store is a plain file anyone may edit or share, so its
    program (``argv[0]``) is never executed, and only a Python command line of the shape
    ``python [options] script|-m module [args]`` is accepted."""
    stored = list(run.argv)
    rest = stored[1:]
    out = [sys.executable]
    refuse = (
        f"run {run.name!r} has a stored command line symbiont will not re-run "
        f"({' '.join(stored)!r}): resume re-runs only a Python script or module; "
        "run your script again with SYMBIONT_RESUME set to the run's name instead"
    )
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag in _PY_FLAGS:
            out.append(flag)
        elif flag in _PY_FLAGS_WITH_VALUE and rest:
            out += [flag, rest.pop(0)]
        elif flag == "-m" and rest and rest[0].replace(".", "").replace("_", "").isalnum():
            return [*out, flag, *rest]
        else:
            raise StoreError(refuse)
    if not rest or not (Path(run.cwd) / rest[0]).is_file():
        raise StoreError(refuse)
    return [*out, *rest]


def add_commands(sub: Any) -> None:
    """Registers the run commands on the `symbiont` parser's subparsers."""

    def parser(name: str, help: str, *, listing: bool = True) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help)
        p.add_argument("--store", help="the store file (default: runs.db in the cache dir)")
        if listing:
            p.add_argument("--json", action="store_true", help="print JSON")
        return p

    p = parser("runs", "list the runs of a store")
    p.set_defaults(func=cmd_runs)
    p = parser("show", "a run's summary and per-round table")
    p.add_argument("run", help="run name or id")
    p.set_defaults(func=cmd_show)
    p = parser("best", "a run's best revision")
    p.add_argument("run")
    p.add_argument("--code", action="store_true", help="print its code too")
    p.set_defaults(func=cmd_best)
    p = parser("log", "a run's attempts (LLM requests), oldest first")
    p.add_argument("run")
    p.add_argument("-n", type=int, default=None, help="only the last N")
    p.set_defaults(func=cmd_log)
    p = parser("diff", "unified diff of two revisions of a run", listing=False)
    p.add_argument("run")
    p.add_argument("a", type=int)
    p.add_argument("b", type=int)
    p.set_defaults(func=cmd_diff)
    p = parser("export", "print a revision's code (default: the best)", listing=False)
    p.add_argument("run")
    p.add_argument("rev", type=int, nargs="?")
    p.set_defaults(func=cmd_export)
    p = parser("plot", "plot scores per revision and the best per round", listing=False)
    p.add_argument("run")
    p.add_argument("-o", "--output", default="run.png", help="image file (default run.png)")
    p.set_defaults(func=cmd_plot)
    p = parser("resume", "re-run a run's command line with resume switched on", listing=False)
    p.add_argument("run")
    p.set_defaults(func=cmd_resume)
