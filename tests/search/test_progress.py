"""Progress: the search emits events; the CLI's renderer draws them live on a terminal and as
plain lines (no control characters) anywhere else."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path

from search_helpers import by_prompt, code, round_of, value

import symbiont as sb

SCRIPT = textwrap.dedent("""
    import itertools, re, sys
    import symbiont as sb
    from symbiont.testing import ScriptedAgent

    def answer(req):
        r = int(re.search(r"Round (\\d+):", req.messages[1].content).group(1))
        return f"```rust\\nfn value() -> u32 {{ {10 * r} }}\\n```"

    rt = sb.Runtime("fn value() -> u32 { 1 }", profile="debug")
    rt.search(ScriptedAgent(itertools.repeat(answer)), "Grow.",
              evaluate=lambda fns: float(fns.value()), strategy=sb.Lanes(2),
              budget=sb.Budget(rounds=2), store=sys.argv[1], name="p",
              on_event=sb.progress(sys.stdout))
""")


def test_events_describe_the_run(rt: sb.Runtime, db: Path) -> None:
    events: list[sb.Event] = []
    rt.search(
        by_prompt(lambda p: code(10 * round_of(p))),
        "Grow.",
        evaluate=value,
        budget=sb.Budget(rounds=2),
        store=db,
        on_event=events.append,
    )
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_ended"
    assert kinds.count("round_started") == kinds.count("round_ended") == 2
    stages = [(e.data["stage"], e.data["state"]) for e in events if e.kind == "stage"]
    assert stages[:8] == [
        ("llm", "started"),
        ("llm", "ended"),
        ("validate", "started"),
        ("validate", "ended"),
        ("build", "started"),
        ("build", "ended"),
        ("evaluate", "started"),
        ("evaluate", "ended"),
    ]
    assert any(e.kind == "tokens" and e.data["tokens"] > 0 for e in events)
    ended = [e for e in events if e.kind == "round_ended"][-1]
    assert ended.data["best"] == 20.0 and ended.data["totals"]["attempts"] == 2
    assert ended.data["budget"] == {"name": "rounds", "used": 2.0, "limit": 2.0}
    assert events[-1].data["stop_reason"] == "rounds"


def test_plain_lines_without_a_terminal(rt: sb.Runtime, db: Path) -> None:
    out = io.StringIO()
    rt.search(
        by_prompt(lambda p: code(10 * round_of(p))),
        "Grow.",
        evaluate=value,
        budget=sb.Budget(rounds=2),
        store=db,
        name="plain",
        on_event=sb.progress(out),
    )
    text = out.getvalue()
    assert "\x1b" not in text and "\r" not in text
    lines = text.splitlines()
    assert lines[0] == "search plain started"
    assert "round 1: 1 lane(s)" in lines
    assert "round 2 lane 0: revision 2 score=20" in lines
    assert any(line.startswith("round 2 | best 20 (revision 2) | attempts 2") for line in lines)
    assert lines[-1] == "search ended (rounds); best 20"


def test_piped_output_has_no_control_characters(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "runs.db")],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    assert "\x1b" not in out.stdout
    assert out.stdout.splitlines()[-1] == "search ended (rounds); best 20"


def test_a_terminal_gets_the_live_panel(tmp_path: Path) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdout is the pty
        os.execv(sys.executable, [sys.executable, "-c", SCRIPT, str(tmp_path / "runs.db")])
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text[-2000:]
    assert "\x1b[" in text, "the live panel redraws with control sequences"
    assert "lane" in text and "stage" in text and "tokens" in text
    assert "best 20 (revision" in text
    assert "search ended (rounds); best 20" in text
