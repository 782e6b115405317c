"""The JSON API of `symbiont serve` on a scripted run's store, through Starlette's client."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from serve_helpers import HUGE_LINE, XSS

from symbiont._errors import StoreError
from symbiont._serve import create_app
from symbiont._serve._app import TEXT_LIMIT
from symbiont._store import Store


@pytest.fixture
def client(demo_store: Path):  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    with TestClient(create_app(demo_store, interval=0.5)) as c:
        yield c


def test_runs_and_one_run(client) -> None:  # type: ignore[no-untyped-def]
    runs = client.get("/api/runs").json()["runs"]
    assert [(r["name"], r["status"], r["rounds"], r["best_score"]) for r in runs] == [
        ("demo", "finished", 3, 30.0)
    ]
    run = client.get("/api/runs/demo").json()
    assert run["points"]["kind"] == ["other", "other", "compile_error"] + ["registered"] * 3
    assert run["points"]["score"] == [None, None, None, 10.0, 20.0, 30.0]
    assert run["best_per_round"] == [[0, 1.0], [1, 10.0], [2, 20.0], [3, 30.0]]
    assert [(r["number"], r["parent"]) for r in run["revisions"]] == [
        (0, None), (1, 0), (2, 1), (3, 2)
    ]  # fmt: skip
    assert run["budget"]["rounds"] == 3 and run["stop_reason"]
    assert client.get("/api/runs/demo/stamp").json()["revisions"] == 4
    assert client.get("/api/runs/nope").status_code == 404
    assert client.get("/api/config").json()["interval"] == 0.5


def test_revision_diff_and_attempts(client) -> None:  # type: ignore[no-untyped-def]
    rev = client.get("/api/runs/demo/revisions/1").json()
    assert rev["parent"] == 0 and rev["score"] == 10.0
    changed = [(k, t) for k, t in rev["diff"]["lines"] if k in ("add", "del")]
    assert ("del", "-fn value() -> u32 { 1 }") in changed
    assert ("add", "+    10") in changed
    assert [a["kind"] for a in rev["attempts"]] == ["other", "other", "compile_error", "registered"]
    xss, huge = rev["attempts"][0]["reply"], rev["attempts"][1]["reply"]
    assert xss == {"text": XSS, "length": len(XSS), "cut": False}
    assert huge["cut"] and huge["length"] == len(HUGE_LINE) and len(huge["text"]) == TEXT_LIMIT
    # Against another revision: 3 -> 1 changes the value only.
    other = client.get("/api/runs/demo/revisions/1?against=3").json()["diff"]
    assert other["against"] == 3
    assert [t for k, t in other["lines"] if k in ("add", "del")] == [
        "-    // step", "-    30", "+    // </pre><script>window.__pwned='code'</script>", "+    10"
    ]  # fmt: skip
    assert client.get("/api/runs/demo/revisions/9").status_code == 404


def test_full_texts_are_plain_text(client) -> None:  # type: ignore[no-untyped-def]
    rev = client.get("/api/runs/demo/revisions/1").json()
    huge_id = rev["attempts"][1]["id"]
    full = client.get(f"/api/runs/demo/attempts/{huge_id}/reply")
    assert full.text == HUGE_LINE
    assert full.headers["content-type"].startswith("text/plain")
    assert full.headers["x-content-type-options"] == "nosniff"
    xss = client.get(f"/api/runs/demo/attempts/{rev['attempts'][0]['id']}/reply")
    assert xss.text == XSS and xss.headers["content-type"].startswith("text/plain")
    assert client.get(f"/api/runs/demo/attempts/{huge_id}/code").status_code == 404
    page = client.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200


def test_the_store_is_read_only_and_never_blocks_a_writer(demo_store: Path, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    path = tmp_path / "runs.db"
    shutil.copy(demo_store, path)
    with TestClient(create_app(path)) as c:
        assert c.get("/api/runs").status_code == 200
        store = c.app.state.store  # type: ignore[attr-defined]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.query("DELETE FROM runs")
        # Another process-like writer commits while the server has the file open.
        writer = Store(path)
        run = writer.create_run(
            name="other", task="t", declarations="d", settings={}, argv=[], cwd="/",
            declarations_hash="h", evaluator_hash="e",
        )  # fmt: skip
        writer.add_attempt(
            run.id, round=1, lane=0, attempt=1, messages=[], reply="r", model="m",
            prompt_tokens=1, completion_tokens=1, cost=0.0, timings={}, outcome="failed",
            decision="retry", failure_kind="panic", feedback="boom", revision=None,
            started=0.0,
        )  # fmt: skip
        writer.close()
        names = [r["name"] for r in c.get("/api/runs").json()["runs"]]
        assert names == ["demo", "other"]
        assert c.get("/api/runs/other").json()["points"]["kind"] == ["panic"]


def test_bad_stores_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store at"):
        create_app(tmp_path / "missing.db")
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(StoreError, match="not a symbiont store"):
        create_app(plain)


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs/demo/revisions/99999999999999999999999",  # overflowed SQLite: a 500
        "/api/runs/demo/revisions/１/code",  # a fullwidth digit
        "/api/runs/demo/revisions/1?against=99999999999999999999999",
        "/api/runs/demo/revisions/abc",
        "/api/runs/demo/attempts/99999999999999999999999/reply",
    ],
)
def test_numbers_in_the_url_that_are_not_ids_are_404s(client, path: str) -> None:  # type: ignore[no-untyped-def]
    answer = client.get(path)
    assert answer.status_code == 404
    assert "must be a whole number" in answer.json()["error"]
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_run_name_with_a_slash_is_served(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    db = tmp_path / "runs.db"
    store = Store(db)
    store.create_run(
        name="exp/1",
        task="t",
        declarations="fn value() -> u32 { 1 }",
        settings={},
        argv=[],
        cwd=str(tmp_path),
        declarations_hash="d",
        evaluator_hash="e",
    )
    store.close()
    with TestClient(create_app(db)) as c:
        assert c.get("/api/runs/exp%2F1").json()["name"] == "exp/1"
        assert c.get("/api/runs/exp%2F1/stamp").json()["revisions"] == 0
        assert c.get("/api/runs/exp%2F1/revisions/0").status_code == 404


def test_a_damaged_store_is_a_503_that_says_so(tmp_path: Path) -> None:
    # Every poll of a damaged file was a 500 with a traceback in the server's log.
    from starlette.testclient import TestClient

    path = tmp_path / "runs.db"
    store = Store(path)
    for i in range(200):  # enough pages that the damage lands past the schema
        store.create_run(name=f"r{i}-" + "x" * 200, task="t", declarations="d", settings={},
                         argv=[], cwd="/", declarations_hash="d", evaluator_hash="e")  # fmt: skip
    store.close()
    raw = bytearray(path.read_bytes())
    half = len(raw) // 2
    raw[half:] = b"\xff" * (len(raw) - half)
    path.write_bytes(raw)
    with TestClient(create_app(path), raise_server_exceptions=True) as c:
        answer = c.get("/api/runs")
    assert answer.status_code == 503
    assert "cannot be read (database disk image is malformed)" in answer.json()["error"]
