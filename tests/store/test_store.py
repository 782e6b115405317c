"""The run store: schema migrations, WAL, committed rows, counters, clear errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import symbiont as sb
from symbiont._store import MIGRATIONS, REDACTED, SCHEMA_VERSION, Store, default_store_path


def make_run(store: Store, name: str = "r1") -> int:
    run = store.create_run(
        name=name,
        task="t",
        declarations="fn f() {}",
        settings={"budget": {"rounds": 3}},
        argv=["python", "x.py"],
        cwd="/tmp",
        declarations_hash="d",
        evaluator_hash="e",
    )
    return run.id


def test_a_new_store_is_migrated_and_in_wal_mode(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs.db")
    assert store.schema_version == SCHEMA_VERSION >= 1
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    assert store.integrity() == "ok"
    names = [r[0] for r in store.query("SELECT name FROM migrations ORDER BY name")]
    assert names == [name for name, _ in MIGRATIONS]
    store.close()
    again = Store(tmp_path / "runs.db")  # reopening applies nothing twice
    assert len(again.query("SELECT name FROM migrations")) == len(MIGRATIONS)


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "runs.db").close()
    db = sqlite3.connect(tmp_path / "runs.db")
    db.execute("INSERT INTO migrations VALUES ('9999_future', 0)")
    db.commit()
    db.close()
    with pytest.raises(sb.StoreError, match=r"newer symbiont.*9999_future.*upgrade"):
        Store(tmp_path / "runs.db")


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(sb.StoreError, match="not a symbiont store"):
        Store(path)


def test_rows_are_committed_and_counters_move_with_attempts(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs.db")
    run_id = make_run(store)
    for i in range(5):
        store.add_attempt(
            run_id,
            round=1,
            lane=0,
            attempt=i + 1,
            messages=[{"role": "user", "content": "hi"}],
            reply=f"reply {i}",
            model="m",
            prompt_tokens=10,
            completion_tokens=5,
            cost=0.5,
            timings={"llm": 0.1},
            outcome="failed",
            decision="retry",
            failure_kind="no_code",
            feedback="no code",
            revision=None,
            started=0.0,
        )
    store.add_revision(
        run_id,
        number=0,
        code="fn f() {}",
        content_hash="h0",
        parent=None,
        round=0,
        lane=None,
        island=None,
        score=1.5,
        metrics={"score": 1.5},
        spread=None,
        feedback=None,
        status="scored",
        evaluations=[
            {
                "round": 0,
                "repeat": 0,
                "purpose": "candidate",
                "score": 1.5,
                "seconds": 0.01,
                "outcome": "scored",
            }
        ],
    )
    # Another connection sees everything: each write was committed.
    other = sqlite3.connect(tmp_path / "runs.db")
    assert other.execute("SELECT count(*) FROM attempts").fetchone()[0] == 5
    assert other.execute("SELECT count(*) FROM evaluations").fetchone()[0] == 1
    assert other.execute("SELECT attempts, tokens, cost FROM runs").fetchone() == (5, 75, 2.5)
    last = store.attempts(run_id, last=2)
    assert [a["attempt"] for a in last] == [4, 5]
    assert store.attempts(run_id, last=1, full=True)[0]["prompt"][0]["content"] == "hi"
    with pytest.raises(sqlite3.IntegrityError):  # one revision per content hash in a run
        store.add_revision(
            run_id,
            number=1,
            code="fn f() {}",
            content_hash="h0",
            parent=0,
            round=1,
            lane=0,
            island=None,
            score=None,
            metrics={},
            spread=None,
            feedback=None,
            status="scored",
        )
    assert len(store.revisions(run_id)) == 1


def test_runs_are_found_by_name_or_id_and_a_missing_one_is_named(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs.db")
    run_id = make_run(store, "first")
    assert store.require_run("first").id == run_id
    assert store.require_run(str(run_id)).name == "first"
    with pytest.raises(sb.StoreError, match=r"no run 'nope'.*runs here: first"):
        store.require_run("nope")


def test_the_default_store_lives_in_the_cache_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SYMBIONT_CACHE_DIR", str(tmp_path))
    assert default_store_path() == tmp_path / "runs.db"


def test_a_store_of_the_first_schema_is_migrated_forward(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied REAL)")
    db.executescript(MIGRATIONS[0][1])
    db.execute("INSERT INTO migrations VALUES (?, 0)", (MIGRATIONS[0][0],))
    db.commit()
    db.close()
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    indexes = {r[0] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "attempts_per_round" in indexes
    columns = {r[1] for r in store.query("PRAGMA table_info(evaluations)")}
    assert {"failure", "node", "worker"} <= columns


def test_secrets_on_the_command_line_are_never_stored(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs.db")
    argv = [
        "python",
        "run.py",
        "--api-key",
        "abc123",
        "--token=xyz",
        "sk-live0123456789",
        "--rounds",
        "5",
    ]
    store.create_run(
        name="s",
        task="t",
        declarations="",
        settings={},
        argv=argv,
        cwd="/",
        declarations_hash="d",
        evaluator_hash="e",
    )
    stored = store.require_run("s").argv
    assert stored == [
        "python",
        "run.py",
        "--api-key",
        REDACTED,
        REDACTED,
        REDACTED,
        "--rounds",
        "5",
    ]
    raw = (tmp_path / "runs.db").read_bytes() + (tmp_path / "runs.db-wal").read_bytes()
    assert b"abc123" not in raw and b"xyz" not in raw and b"0123456789" not in raw


def test_another_programs_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    # `symbiont runs --store app.db` used to migrate app.db: symbiont's tables written into it.
    for table in ("x", "runs"):
        path = tmp_path / f"{table}.db"
        db = sqlite3.connect(path)
        db.execute(f"CREATE TABLE {table} (a)")
        db.commit()
        db.close()
        with pytest.raises(sb.StoreError, match=f"not a symbiont store .*{table}"):
            Store(path)
        db = sqlite3.connect(path)
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == [table]
        db.close()


def test_a_newer_schema_version_is_never_stamped_down(tmp_path: Path) -> None:
    Store(tmp_path / "runs.db").close()
    db = sqlite3.connect(tmp_path / "runs.db")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(sb.StoreError, match=r"newer symbiont \(schema"):
        Store(tmp_path / "runs.db")
    db = sqlite3.connect(tmp_path / "runs.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    db.close()


def test_the_cli_names_a_damaged_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from symbiont._cli import main

    path = tmp_path / "runs.db"
    store = Store(path)
    make_run(store)
    for i in range(200):  # enough pages that the damage lands past the header
        make_run(store, f"r{i + 2}-" + "x" * 200)
    store.close()
    raw = bytearray(path.read_bytes())
    half = len(raw) // 2  # the schema (first pages) reads; the rows do not
    raw[half:] = b"\xff" * (len(raw) - half)
    path.write_bytes(raw)
    assert main(["runs", "--store", str(path)]) == 1
    assert "run store is damaged (database disk image is malformed)" in capsys.readouterr().err


def test_a_second_run_of_the_same_name_is_a_clear_error(tmp_path: Path) -> None:
    # Two processes starting the same new name both saw no such run; the second one's insert
    # was a raw sqlite3.IntegrityError.
    first, second = Store(tmp_path / "runs.db"), Store(tmp_path / "runs.db")
    make_run(first, "same")
    with pytest.raises(sb.StoreError, match="a run named 'same' already exists"):
        make_run(second, "same")
    assert len(first.query("SELECT * FROM runs")) == 1
