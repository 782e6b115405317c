"""The ASGI app behind `symbiont serve`: JSON over the store, one static page.

Every text an LLM wrote (code, replies, feedback, prompts that quote them) leaves here as JSON
string data or as ``text/plain`` with ``nosniff``; the page puts it in the DOM as text only,
and the Content-Security-Policy forbids inline script, so a reply that is HTML stays text.
Long texts are cut here (a 5 MB line would freeze the page); the full text is one link away.
"""

from __future__ import annotations

import difflib
import json
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

from symbiont._cli._runs import _per_round, _revision, _run_dict
from symbiont._errors import StoreError
from symbiont._store import RunRow, Store

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
TEXT_LIMIT = 20_000
"""Characters of one text sent inline; past that the page shows a "show all" link."""
STATIC = Path(__file__).parent / "static"
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Outcome classes the page colours; the rest (no code, parse error, ...) are "other".
_KINDS = {
    "compile_error": "compile_error",
    "build_timeout": "compile_error",
    "panic": "panic",
    "timeout": "timeout",
    "check_failed": "check_failed",
    "crash": "crash",
}


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: they travel as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _cut(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    return {"text": text[:TEXT_LIMIT], "length": len(text), "cut": len(text) > TEXT_LIMIT}


def kind_of(outcome: str, failure_kind: str | None) -> str:
    """The outcome class of an attempt as the page colours it."""
    if failure_kind is None:
        return "registered" if outcome == "registered" else "other"
    return _KINDS.get(failure_kind, "other")


def stamp(store: Store, run: RunRow) -> dict[str, Any]:
    revisions = store.query("SELECT count(*) FROM revisions WHERE run_id = ?", (run.id,))[0][0]
    return {
        "updated": run.updated,
        "status": run.status,
        "attempts": run.attempts,
        "revisions": revisions,
    }


def run_data(store: Store, run: RunRow) -> dict[str, Any]:
    """Everything the run page draws, in one answer (columns as arrays: 10,000 attempts)."""
    maximize = bool(run.settings.get("maximize", True))
    revs = []
    for row in store.query(
        "SELECT number, parent, round, lane, island, score, status, metrics FROM revisions "
        "WHERE run_id = ? ORDER BY number",
        (run.id,),
    ):
        d = dict(row)
        d["metrics"] = json.loads(d["metrics"])
        revs.append(d)
    score_of = {r["number"]: r["score"] for r in revs}
    # Best score so far at the end of each round.
    top: dict[int, float] = {}
    for r in revs:
        s = r["score"]
        if s is not None and math.isfinite(s):
            old = top.get(r["round"])
            top[r["round"]] = s if old is None else (max(s, old) if maximize else min(s, old))
    best: list[list[Any]] = []
    current: float | None = None
    for rnd in sorted({r["round"] for r in revs}):
        s = top.get(rnd)
        if s is not None and (current is None or (s > current if maximize else s < current)):
            current = s
        best.append([rnd, current])
    cols: dict[str, list[Any]] = {
        k: [] for k in ("id", "round", "lane", "attempt", "kind", "revision", "score", "tokens")
    }
    for a in store.query(
        "SELECT id, round, lane, attempt, outcome, failure_kind, revision, "
        "prompt_tokens + completion_tokens AS tokens FROM attempts WHERE run_id = ? ORDER BY id",
        (run.id,),
    ):
        cols["id"].append(a["id"])
        cols["round"].append(a["round"])
        cols["lane"].append(a["lane"])
        cols["attempt"].append(a["attempt"])
        cols["kind"].append(kind_of(a["outcome"], a["failure_kind"]))
        cols["revision"].append(a["revision"])
        cols["score"].append(score_of.get(a["revision"]) if a["revision"] is not None else None)
        cols["tokens"].append(a["tokens"])
    strategy = run.settings.get("strategy") or {}
    objectives = strategy.get("objectives")
    if isinstance(objectives, list):
        objectives = {name: "max" for name in objectives}
    return {
        **_run_dict(run),
        "task": run.task,
        "strategy": strategy.get("name"),
        "objective": run.settings.get("objective") or "score",
        "maximize": maximize,
        "budget": run.settings.get("budget") or {},
        "seconds": run.updated - run.created,
        "objectives": objectives,
        "rounds_table": _per_round(store, run.id),
        "best_per_round": best,
        "revisions": revs,
        "points": cols,
    }


def _diff(a: str, b: str, a_name: str, b_name: str) -> list[list[str]]:
    lines = difflib.unified_diff(
        a.splitlines(), b.splitlines(), fromfile=a_name, tofile=b_name, lineterm=""
    )
    out = []
    for line in lines:
        head = line[:1]
        kind = (
            "meta"
            if line.startswith(("---", "+++", "@@"))
            else {"+": "add", "-": "del"}.get(head, "same")
        )
        out.append([kind, line[:TEXT_LIMIT]])
    return out


def revision_data(store: Store, run: RunRow, number: int, against: int | None) -> dict[str, Any]:
    rev = _revision(store, run, number)
    other = rev["parent"] if against is None else against
    diff = None
    if other is not None:
        base = _revision(store, run, other)
        diff = {
            "against": other,
            "lines": _diff(base["code"], rev["code"], f"revision {other}", f"revision {number}"),
        }
    attempts = []
    if rev["round"] > 0:
        rows = store.attempts(run.id, full=True, round=rev["round"], lane=rev["lane"])
        upto = next((a["id"] for a in rows if a["revision"] == number), None)
        for a in rows:
            if upto is not None and a["id"] > upto:
                break
            attempts.append(
                {
                    "id": a["id"],
                    "attempt": a["attempt"],
                    "kind": kind_of(a["outcome"], a["failure_kind"]),
                    "outcome": a["outcome"],
                    "decision": a["decision"],
                    "failure_kind": a["failure_kind"],
                    "model": a["model"],
                    "prompt_tokens": a["prompt_tokens"],
                    "completion_tokens": a["completion_tokens"],
                    "cost": a["cost"],
                    "timings": a["timings"],
                    "started": a["started"],
                    "prompt": [
                        {"role": m.get("role", ""), "content": _cut(str(m.get("content", "")))}
                        for m in a["prompt"]
                    ],
                    "reply": _cut(a["reply"]),
                    "feedback": _cut(a["feedback"]),
                }
            )
    evaluations = [
        dict(e)
        for e in store.query(
            "SELECT round, lane, repeat, purpose, score, seconds, outcome FROM evaluations "
            "WHERE run_id = ? AND revision = ? ORDER BY id",
            (run.id, number),
        )
    ]
    numbers = [
        r[0] for r in store.query("SELECT number FROM revisions WHERE run_id = ?", (run.id,))
    ]
    return {
        "run": run.name,
        "number": rev["number"],
        "parent": rev["parent"],
        "round": rev["round"],
        "lane": rev["lane"],
        "island": rev["island"],
        "score": rev["score"],
        "spread": rev["spread"],
        "status": rev["status"],
        "metrics": rev["metrics"],
        "feedback": _cut(rev["feedback"]),
        "code": _cut(rev["code"]),
        "diff": diff,
        "attempts": attempts,
        "evaluations": evaluations,
        "revisions": sorted(numbers),
    }


def attempt_text(store: Store, run: RunRow, attempt_id: int, field: str) -> str:
    """The whole of one text of an attempt (``reply``, ``feedback`` or ``prompt``)."""
    if field not in ("reply", "feedback", "prompt"):
        raise StoreError(f"an attempt has no text {field!r}: reply, feedback or prompt")
    rows = store.query(
        f"SELECT {field} FROM attempts WHERE run_id = ? AND id = ?", (run.id, attempt_id)
    )
    if not rows:
        raise StoreError(f"run {run.name!r} has no attempt {attempt_id}")
    text = rows[0][0] or ""
    if field == "prompt":
        text = "\n\n".join(
            f"[{m.get('role', '')}]\n{m.get('content', '')}" for m in json.loads(text)
        )
    return str(text)


def _id(text: str | None, what: str) -> int:
    """A revision number or attempt id from the URL: ASCII digits that fit SQLite's integer
    (a longer one overflowed into a 500, a fullwidth digit was read as a number)."""
    if text is None or not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 18:
        raise StoreError(f"{what} must be a whole number, got {text!r:.40}")
    return int(text)


def create_app(store_path: str | Path, *, interval: float = 2.0) -> Any:
    """The Starlette app serving the store at ``store_path``, read-only; the page polls for
    changes every ``interval`` seconds."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    if interval <= 0:
        raise StoreError(f"the update interval must be a positive number of seconds: {interval}")
    store = Store.open_readonly(store_path)

    def json_response(value: Any) -> Response:
        try:
            body = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except ValueError:  # a NaN or infinite score somewhere: rare, so cleaned only then
            body = json.dumps(_clean(value), ensure_ascii=False, separators=(",", ":"))
        return Response(body, media_type="application/json", headers=_HEADERS)

    def the_run(request: Request) -> RunRow:
        run = store.run(request.path_params["name"])
        if run is None:
            raise HTTPException(404, f"no run {request.path_params['name']!r}")
        return run

    def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=_HEADERS)

    def config(request: Request) -> Response:
        return json_response({"interval": interval, "store": str(store.path)})

    def runs(request: Request) -> Response:
        return json_response({"now": time.time(), "runs": [_run_dict(r) for r in store.runs()]})

    def run_stamp(request: Request) -> Response:
        return json_response(stamp(store, the_run(request)))

    def run(request: Request) -> Response:
        return json_response({"now": time.time(), **run_data(store, the_run(request))})

    def revision(request: Request) -> Response:
        against = request.query_params.get("against")
        try:
            number = _id(request.path_params["number"], "a revision number")
            other = _id(against, "against") if against not in (None, "") else None
            return json_response(revision_data(store, the_run(request), number, other))
        except StoreError as exc:
            raise HTTPException(404, str(exc)) from exc

    def code(request: Request) -> Response:
        try:
            number = _id(request.path_params["number"], "a revision number")
            rev = _revision(store, the_run(request), number)
        except StoreError as exc:
            raise HTTPException(404, str(exc)) from exc
        return PlainTextResponse(rev["code"], headers=_HEADERS)

    def text(request: Request) -> Response:
        try:
            body = attempt_text(
                store,
                the_run(request),
                _id(request.path_params["id"], "an attempt id"),
                request.path_params["field"],
            )
        except StoreError as exc:
            raise HTTPException(404, str(exc)) from exc
        return PlainTextResponse(body, headers=_HEADERS)

    async def not_found(request: Request, exc: Exception) -> Response:
        detail = getattr(exc, "detail", "not found")
        return JSONResponse(
            {"error": detail}, status_code=getattr(exc, "status_code", 404), headers=_HEADERS
        )

    # A run name may hold "/" (the server sees it decoded): the name is a path, and the
    # routes with a suffix are tried before the run itself.
    async def damaged(request: Request, exc: Exception) -> Response:
        # A damaged file (or one another program holds locked): said once per request as a
        # 503 the page shows, not a 500 with a traceback per poll.
        return JSONResponse(
            {"error": f"the run store cannot be read ({exc}): check it with `sqlite3 FILE "
             "'PRAGMA integrity_check'` or restore a copy"},
            status_code=503,
            headers=_HEADERS,
        )  # fmt: skip

    routes = [
        Route("/", index),
        Route("/api/config", config),
        Route("/api/runs", runs),
        Route("/api/runs/{name:path}/stamp", run_stamp),
        Route("/api/runs/{name:path}/revisions/{number}/code", code),
        Route("/api/runs/{name:path}/revisions/{number}", revision),
        Route("/api/runs/{name:path}/attempts/{id}/{field}", text),
        Route("/api/runs/{name:path}", run),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: not_found, sqlite3.DatabaseError: damaged},
    )
    app.state.store = store
    return app


def serve(
    store_path: str | Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    interval: float = 2.0,
) -> None:
    """Serves the store until interrupted (blocks)."""
    import uvicorn

    app = create_app(store_path, interval=interval)
    uvicorn.run(app, host=host, port=port, log_level="warning")
