"""`symbiont runs | show | best | log | diff | export | plot | resume` on a real store."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from search_helpers import by_prompt, code, round_of, value

import symbiont as sb
from symbiont._cli import main
from symbiont.testing import OpenAITestServer, ScriptedAgent

HERE = Path(__file__).parent


@pytest.fixture
def store(rt: sb.Runtime, db: Path) -> Path:
    replies = iter(["no code at all"])

    def answer(prompt: str) -> str:
        return next(replies, None) or code(10 * round_of(prompt))

    rt.search(
        by_prompt(answer),
        "Grow.",
        evaluate=value,
        budget=sb.Budget(rounds=3),
        store=db,
        name="demo",
    )
    return db


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code_ = main(list(args))
    out = capsys.readouterr()
    return code_, out.out, out.err


def test_runs_show_best_and_log(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = str(store)
    rc, out, _ = cli(capsys, "runs", "--store", s, "--json")
    runs = json.loads(out)
    assert rc == 0 and [(r["name"], r["status"], r["rounds"]) for r in runs] == [
        ("demo", "finished", 3)
    ]
    rc, out, _ = cli(capsys, "runs", "--store", s)
    assert out.splitlines()[0].split() == [
        "name",
        "status",
        "rounds",
        "best",
        "tokens",
        "cost",
        "age",
    ]
    assert out.splitlines()[1].split()[:4] == ["demo", "finished", "3", "30"]
    rc, out, _ = cli(capsys, "show", "demo", "--store", s)
    assert "best: revision 3 score=30 (max)" in out
    table = out.split("\n\n")[1].splitlines()
    assert table[0].split()[:3] == ["round", "lanes", "attempts"]
    assert [line.split()[:5] for line in table[1:]] == [
        ["1", "1", "2", "1", "1"],
        ["2", "1", "1", "0", "1"],
        ["3", "1", "1", "0", "1"],
    ]
    rc, out, _ = cli(capsys, "show", "demo", "--store", s, "--json")
    assert [r["round"] for r in json.loads(out)["rounds_table"]] == [1, 2, 3]
    rc, out, _ = cli(capsys, "best", "demo", "--store", s, "--code")
    assert out.startswith("revision 3 score=30") and "fn value() -> u32 { 30 }" in out
    assert json.loads(cli(capsys, "best", "demo", "--store", s, "--json")[1])["score"] == 30.0
    rc, out, _ = cli(capsys, "log", "demo", "--store", s)
    lines = out.splitlines()
    assert len(lines) == 5 and lines[1].split()[3] == "no_code"
    entries = json.loads(cli(capsys, "log", "demo", "--store", s, "-n", "2", "--json")[1])
    assert [(e["round"], e["revision"]) for e in entries] == [(2, 2), (3, 3)]


def test_diff_export_and_plot(
    store: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    s = str(store)
    rc, out, _ = cli(capsys, "diff", "demo", "1", "3", "--store", s)
    assert "-fn value() -> u32 { 10 }" in out and "+fn value() -> u32 { 30 }" in out
    assert cli(capsys, "export", "demo", "--store", s)[1] == "fn value() -> u32 { 30 }\n"
    assert cli(capsys, "export", "demo", "0", "--store", s)[1] == "fn value() -> u32 { 1 }\n"
    pytest.importorskip("matplotlib")
    png = tmp_path / "run.png"
    rc, out, _ = cli(capsys, "plot", "demo", "--store", s, "-o", str(png))
    assert rc == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_runs_and_stores_are_named(
    store: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rc, _, err = cli(capsys, "show", "nope", "--store", str(store))
    assert rc == 1 and "no run 'nope'" in err and "runs here: demo" in err
    rc, _, err = cli(capsys, "runs", "--store", str(tmp_path / "none.db"))
    assert rc == 1 and "no store at" in err


def test_symbiont_resume_reruns_the_stored_command_line(tmp_path: Path) -> None:
    db, marker = tmp_path / "runs.db", tmp_path / "marker"
    env = {
        **os.environ,
        "SYMBIONT_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    with OpenAITestServer(
        iter(lambda: lambda body: code(10 * round_of(body["messages"][1]["content"])), None)
    ) as server:
        first = subprocess.run(
            [
                sys.executable,
                str(HERE / "resume_scenario.py"),
                server.base_url,
                str(db),
                "sigint",
                str(marker),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert first.returncode != 0 and "resume with: symbiont resume k" in first.stderr
        resumed = subprocess.run(
            [sys.executable, "-m", "symbiont", "resume", "k", "--store", str(db)],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
            cwd=tmp_path,
        )
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.split() == ["5", "rounds"]
    con = sqlite3.connect(db)
    assert con.execute("SELECT status, rounds FROM runs").fetchall() == [("finished", 5)]
    assert con.execute("SELECT count(*) FROM revisions").fetchone() == (6,)
    con.close()


@pytest.mark.parametrize(
    "argv",
    [
        ["/bin/sh", "-c", "touch {pwned}"],
        ["/usr/bin/touch", "{pwned}"],
        ["python3", "-c", "open('{pwned}', 'w')"],
        ["python3", "-X", "dev", "-c", "open('{pwned}', 'w')"],
        ["python3", "--weird", "x"],
        ["python3", "-m", "os; import os"],
    ],
)
def test_resume_never_runs_a_program_written_into_the_store(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    # The store is a plain file: whoever edits it must not get a program run by `resume`.
    pwned = tmp_path / "pwned"
    con = sqlite3.connect(store)
    con.execute(
        "UPDATE runs SET argv = ?, cwd = ?",
        (json.dumps([a.format(pwned=pwned) for a in argv]), str(tmp_path)),
    )
    con.commit()
    con.close()
    rc, _, err = cli(capsys, "resume", "demo", "--store", str(store))
    assert rc == 2 and "will not re-run" in err
    assert not pwned.exists()


def test_resume_runs_this_interpreter_not_the_stored_one(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A stored argv[0] pointing at another program is replaced by this interpreter.
    script = tmp_path / "again.py"
    script.write_text(
        "import os, sys, pathlib\n"
        "out = os.environ['SYMBIONT_RESUME'] + ' ' + sys.executable\n"
        "pathlib.Path(sys.argv[1]).write_text(out)\n"
    )
    out_file = tmp_path / "out"
    con = sqlite3.connect(store)
    con.execute(
        "UPDATE runs SET argv = ?, cwd = ?",
        (json.dumps(["/bin/false", "-u", "again.py", str(out_file)]), str(tmp_path)),
    )
    con.commit()
    con.close()
    rc, _, err = cli(capsys, "resume", "demo", "--store", str(store))
    assert rc == 0, err
    assert out_file.read_text() == f"demo {sys.executable}"


def test_listings_print_an_llms_escape_sequences_escaped(
    rt: sb.Runtime, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A candidate's panic message is the LLM's text: raw, it cleared the screen, set the
    # terminal title or reversed the line in `symbiont log`.
    hostile = (
        '```rust\nfn value() -> u32 { panic!("\\x1b[2J\\x1b]0;owned\\x07\\u{202e}gone") }\n```'
    )
    rt.search(
        ScriptedAgent([hostile, code(3)]),
        "Grow.",
        evaluate=value,
        budget=sb.Budget(rounds=1),
        store=db,
        name="evil\x1b[31m\nname",
    )
    capsys.readouterr()
    for command in (["runs"], ["show", "evil\x1b[31m\nname"], ["log", "evil\x1b[31m\nname"]):
        rc, out, err = cli(capsys, *command, "--store", str(db))
        assert rc == 0, err
        assert not {"\x1b", "\x07", "\u202e"} & set(out), out
    assert "\\x1b[2J\\x1b]0;owned\\x07\\u202egone" in out


def test_a_revision_number_past_sqlites_integers_is_named(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `symbiont export demo 99999999999999999999999` was an OverflowError traceback.
    for command in (["export", "demo", "9" * 23], ["diff", "demo", "0", "9" * 23]):
        rc, _, err = cli(capsys, *command, "--store", str(store))
        assert rc == 1 and f"has no revision {'9' * 23}" in err
