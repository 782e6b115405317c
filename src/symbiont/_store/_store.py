"""The SQLite store: opening and migrating the file, and every row the search layer writes.

Each write is its own committed transaction (or one transaction for rows that belong together),
so a process killed at any point leaves a consistent file whose last committed state a resumed
run continues from. WAL mode lets the CLI read a run while it is being written.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from symbiont._errors import StoreError
from symbiont._store._schema import MIGRATIONS, SCHEMA_VERSION


def default_store_path() -> Path:
    """``runs.db`` in the cache directory (``$SYMBIONT_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/symbiont``, else ``~/.cache/symbiont``)."""
    env = os.environ.get("SYMBIONT_CACHE_DIR")
    if env:
        return Path(env).expanduser() / "runs.db"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "symbiont" / "runs.db"


REDACTED = "<secret not stored>"
_SECRET = re.compile(r"(?i)(sk-[A-Za-z0-9_\-]{8,}|(api[_-]?key|token|secret|password)=.+)")


def scrub_argv(argv: Sequence[str]) -> list[str]:
    """The command line to store, secrets replaced (a key passed as an argument is never
    written; ``symbiont resume`` then asks for it through the environment instead)."""
    out = []
    hide_next = False
    for arg in argv:
        flag = arg.lower().lstrip("-").replace("_", "-")
        if hide_next or _SECRET.search(arg):
            out.append(REDACTED)
        else:
            out.append(arg)
        hide_next = flag in ("api-key", "key", "token", "secret", "password")
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRow:
    """One row of ``runs``, JSON columns decoded."""

    id: int
    name: str
    task: str
    declarations: str
    settings: dict[str, Any]
    argv: list[str]
    cwd: str
    declarations_hash: str
    evaluator_hash: str
    status: str
    stop_reason: str | None
    state: dict[str, Any] | None
    best_revision: int | None
    best_score: float | None
    rounds: int
    attempts: int
    tokens: int
    cost: float
    created: float
    updated: float


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=True)


class Store:
    """A run store file. ``Store(path)`` creates or migrates it; safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in _tx).
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process (only a power loss can drop the last
            # commits) and keeps a commit well under a millisecond.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a symbiont store: {exc}") from exc
        self._lock = threading.RLock()
        self._migrate()

    @classmethod
    def open_readonly(cls, path: str | Path) -> Store:
        """The store at ``path`` opened for reading only (``symbiont serve``): nothing is
        created or migrated, and in WAL mode a reader never blocks the process writing it."""
        self = cls.__new__(cls)
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise StoreError(f"no store at {self.path}: run a search first, or pass its path")
        try:
            self._db = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=30.0,
            )
            self._db.row_factory = sqlite3.Row
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a symbiont store: {exc}") from exc
        if version == 0:
            raise StoreError(f"{self.path} is not a symbiont store (it has no schema version)")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer symbiont (schema {version}): upgrade "
                "symbiont to read it"
            )
        self._lock = threading.RLock()
        return self

    # -- schema -----------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._tx() as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and "migrations" not in tables:
                # Another program's database: migrating would write symbiont's tables into it.
                raise StoreError(
                    f"{self.path} is not a symbiont store (it holds other tables: "
                    f"{', '.join(sorted(tables)[:5])}): pass the path of a run store"
                )
            db.execute(
                "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied REAL)"
            )
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:  # never stamp a newer file down to this version
                raise StoreError(
                    f"{self.path} was written by a newer symbiont (schema {version}): upgrade "
                    "symbiont to read it"
                )
            done = {r[0] for r in db.execute("SELECT name FROM migrations")}
            known = {name for name, _ in MIGRATIONS}
            if done - known:
                raise StoreError(
                    f"{self.path} was written by a newer symbiont (migrations "
                    f"{', '.join(sorted(done - known))}): upgrade symbiont to read it"
                )
            for name, sql in MIGRATIONS:
                if name in done:
                    continue
                for statement in sql.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def integrity(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` for a sound file."""
        with self._lock:
            return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, params))

    @contextmanager
    def claim(self, run_id: int, name: str) -> Iterator[None]:
        """Holds run ``run_id`` for one search: a second search (another process, or another
        task of this one) writing the same run would interleave revisions and attempts, so it
        gets :class:`StoreError` instead. The lock is the OS's (``flock`` on a small file in
        ``<store>-locks/``): a killed process releases it, so a crashed run resumes at once."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory lock, as before
            yield
            return
        folder = self.path.with_name(self.path.name + "-locks")
        folder.mkdir(exist_ok=True)
        fd = os.open(folder / f"run-{run_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError(
                    f"run {name!r} in {self.path} is being written by another search right "
                    "now: wait for it to end (or stop it), or choose another name"
                ) from None
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    # -- runs -------------------------------------------------------------------------------

    def create_run(
        self,
        *,
        name: str,
        task: str,
        declarations: str,
        settings: Mapping[str, Any],
        argv: Sequence[str],
        cwd: str,
        declarations_hash: str,
        evaluator_hash: str,
    ) -> RunRow:
        now = time.time()
        with self._tx() as db:
            if db.execute("SELECT 1 FROM runs WHERE name = ?", (name,)).fetchone():
                # Checked inside the write transaction: two processes starting the same new
                # name at once get this error, not a raw UNIQUE constraint failure.
                raise StoreError(
                    f"a run named {name!r} already exists in {self.path} (another process "
                    "may have just started it): choose another name, or resume it"
                )
            db.execute(
                "INSERT INTO runs (name, task, declarations, settings, argv, cwd, "
                "declarations_hash, evaluator_hash, status, created, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)",
                (
                    name,
                    task,
                    declarations,
                    _dumps(dict(settings)),
                    _dumps(scrub_argv(argv)),
                    cwd,
                    declarations_hash,
                    evaluator_hash,
                    now,
                    now,
                ),
            )
        run = self.run(name, by_id=False)
        assert run is not None
        return run

    def run(self, key: str | int, *, by_id: bool = True) -> RunRow | None:
        """The run named ``key`` (or with that id, for an int or a string of digits, unless
        ``by_id=False``: a search named "2" must not find, and write into, run number 2)."""
        with self._lock:
            row = self._db.execute("SELECT * FROM runs WHERE name = ?", (str(key),)).fetchone()
            if row is None and by_id and (isinstance(key, int) or str(key).isdigit()):
                row = self._db.execute("SELECT * FROM runs WHERE id = ?", (int(key),)).fetchone()
        return None if row is None else _run_row(row)

    def require_run(self, key: str | int) -> RunRow:
        run = self.run(key)
        if run is None:
            names = [r.name for r in self.runs()][-10:]
            known = f"; runs here: {', '.join(names)}" if names else " (the store has no runs)"
            raise StoreError(f"no run {key!r} in {self.path}{known}")
        return run

    def runs(self) -> list[RunRow]:
        with self._lock:
            rows = list(self._db.execute("SELECT * FROM runs ORDER BY id"))
        return [_run_row(r) for r in rows]

    def update_run(self, run_id: int, **fields: Any) -> None:
        """Sets columns of a run (JSON columns take Python values)."""
        cols = []
        values: list[Any] = []
        for key, value in fields.items():
            json_column = key in ("settings", "argv", "state") and value is not None
            cols.append(f"{key} = ?")
            values.append(_dumps(value) if json_column else value)
        cols.append("updated = ?")
        values.append(time.time())
        with self._tx() as db:
            db.execute(f"UPDATE runs SET {', '.join(cols)} WHERE id = ?", (*values, run_id))

    # -- revisions, attempts, evaluations, events -------------------------------------------

    def add_revision(
        self,
        run_id: int,
        *,
        number: int,
        code: str,
        content_hash: str,
        parent: int | None,
        round: int,
        lane: int | None,
        island: int | None,
        score: float | None,
        metrics: Mapping[str, Any],
        spread: float | None,
        feedback: str | None,
        status: str,
        evaluations: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """One revision and the evaluations that scored it, in one transaction."""
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO revisions (run_id, number, code, content_hash, parent, round, lane, "
                "island, score, metrics, spread, feedback, status, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    number,
                    code,
                    content_hash,
                    parent,
                    round,
                    lane,
                    island,
                    score,
                    _dumps(dict(metrics)),
                    spread,
                    feedback,
                    status,
                    now,
                ),
            )
            self._insert_evaluations(db, run_id, number, evaluations, now)

    def add_evaluations(
        self, run_id: int, revision: int | None, evaluations: Sequence[Mapping[str, Any]]
    ) -> None:
        with self._tx() as db:
            self._insert_evaluations(db, run_id, revision, evaluations, time.time())

    @staticmethod
    def _insert_evaluations(
        db: sqlite3.Connection,
        run_id: int,
        revision: int | None,
        evaluations: Sequence[Mapping[str, Any]],
        now: float,
    ) -> None:
        db.executemany(
            "INSERT INTO evaluations (run_id, revision, round, lane, repeat, purpose, score, "
            "metrics, seconds, outcome, feedback, failure, node, worker, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    revision,
                    e["round"],
                    e.get("lane"),
                    e["repeat"],
                    e["purpose"],
                    e.get("score"),
                    _dumps(e.get("metrics") or {}),
                    e["seconds"],
                    e["outcome"],
                    e.get("feedback"),
                    None if e.get("failure") is None else _dumps(e["failure"]),
                    e.get("node"),
                    e.get("worker"),
                    now,
                )
                for e in evaluations
            ],
        )

    def revisions(self, run_id: int) -> list[dict[str, Any]]:
        rows = self.query("SELECT * FROM revisions WHERE run_id = ? ORDER BY number", (run_id,))
        out = []
        for r in rows:
            d = dict(r)
            d["metrics"] = json.loads(d["metrics"])
            out.append(d)
        return out

    def add_attempt(
        self,
        run_id: int,
        *,
        round: int,
        lane: int,
        attempt: int,
        messages: Sequence[Mapping[str, str]],
        reply: str | None,
        model: str | None,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float,
        timings: Mapping[str, float],
        outcome: str,
        decision: str,
        failure_kind: str | None,
        feedback: str | None,
        revision: int | None,
        started: float,
        finish_reason: str | None = None,
        failure: Mapping[str, Any] | None = None,
    ) -> None:
        """One LLM call; the run's counters move in the same transaction. ``failure`` holds
        the facts of the candidate's failure (``feedback``: what the LLM was told)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO attempts (run_id, round, lane, attempt, prompt, reply, model, "
                "prompt_tokens, completion_tokens, cost, timings, outcome, decision, "
                "failure_kind, feedback, revision, started, finish_reason, failure) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    round,
                    lane,
                    attempt,
                    _dumps([dict(m) for m in messages]),
                    reply,
                    model,
                    prompt_tokens,
                    completion_tokens,
                    cost,
                    _dumps(dict(timings)),
                    outcome,
                    decision,
                    failure_kind,
                    feedback,
                    revision,
                    started,
                    finish_reason,
                    None if failure is None else _dumps(dict(failure)),
                ),
            )
            db.execute(
                "UPDATE runs SET attempts = attempts + 1, tokens = tokens + ?, cost = cost + ?, "
                "updated = ? WHERE id = ?",
                (prompt_tokens + completion_tokens, cost, time.time(), run_id),
            )

    def attempts(
        self,
        run_id: int,
        *,
        last: int | None = None,
        full: bool = False,
        round: int | None = None,
        lane: int | None = None,
    ) -> list[dict[str, Any]]:
        """The run's attempts in order (only the ``last`` ones when given, only those of
        ``round`` / ``lane`` when given); ``full`` includes the prompt and reply texts."""
        cols = (
            "*"
            if full
            else (
                "id, round, lane, attempt, model, prompt_tokens, completion_tokens, cost, timings, "
                "outcome, decision, failure_kind, feedback, revision, started, finish_reason, "
                "failure"
            )
        )
        where = "run_id = ?"
        params: list[Any] = [run_id]
        for column, value in (("round", round), ("lane", lane)):
            if value is not None:
                where += f" AND {column} = ?"
                params.append(value)
        if last is None:
            rows = self.query(f"SELECT {cols} FROM attempts WHERE {where} ORDER BY id", params)
        else:
            rows = self.query(
                f"SELECT {cols} FROM attempts WHERE {where} ORDER BY id DESC LIMIT ?",
                (*params, last),
            )[::-1]
        out = []
        for r in rows:
            d = dict(r)
            d["timings"] = json.loads(d["timings"])
            d["failure"] = None if d["failure"] is None else json.loads(d["failure"])
            if full:
                d["prompt"] = json.loads(d["prompt"])
            out.append(d)
        return out

    def add_event(
        self,
        run_id: int,
        kind: str,
        *,
        round: int | None = None,
        lane: int | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (run_id, time, kind, round, lane, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, time.time(), kind, round, lane, _dumps(dict(data or {}))),
            )

    def events(
        self, run_id: int, kind: str | None = None, *, round: int | None = None
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM events WHERE run_id = ?"
        params: list[Any] = [run_id]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        if round is not None:
            sql += " AND round = ?"
            params.append(round)
        out = []
        for r in self.query(sql + " ORDER BY id", params):
            d = dict(r)
            d["data"] = json.loads(d["data"])
            out.append(d)
        return out

    def __repr__(self) -> str:
        return f"<symbiont store {self.path}>"


def _run_row(row: sqlite3.Row) -> RunRow:
    d = dict(row)
    d["settings"] = json.loads(d["settings"])
    d["argv"] = json.loads(d["argv"])
    d["state"] = json.loads(d["state"]) if d["state"] else None
    return RunRow(**d)
