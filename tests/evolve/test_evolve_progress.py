"""Progress of a plain ``evolve``: the events it emits (stages with outcomes, tokens as the model
writes) and what ``sb.progress()`` makes of them on a terminal and through a pipe."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import symbiont as sb
from symbiont._agents import Request
from symbiont._agents._protocol import TokenMeter
from symbiont.testing import OpenAITestServer, ScriptedAgent, Text

DECL = "fn f(x: u32) -> u32 { x }"
GOOD = "```rust\nfn f(x: u32) -> u32 { x + 10 }\n```"
BAD = '```rust\nfn f(x: u32) -> u32 { x + "ten" }\n```'


@pytest.fixture(scope="module")
def rt() -> sb.Runtime:
    return sb.Runtime(DECL)


def check(fns: object) -> None:
    assert fns.f(1) == 11  # type: ignore[attr-defined]


def test_the_event_sequence_of_one_evolve(rt: sb.Runtime) -> None:
    events: list[sb.Event] = []
    info = rt.evolve(
        ScriptedAgent(["no code here", BAD, GOOD]), "Add ten.", check=check,
        activate=False, on_event=events.append,
    )  # fmt: skip
    assert info.attempts == 3
    assert events[0].kind == "run_started" and events[0].data["what"] == "evolve"
    assert events[-1].kind == "run_ended"
    assert events[-1].data == {"stop_reason": "registered", "best": None,
                               "revision": info.revision}  # fmt: skip
    stages = [
        (e.data["stage"], e.data["state"], e.data.get("outcome"))
        for e in events
        if e.kind == "stage"
    ]
    assert stages == [
        ("llm", "started", None), ("llm", "ended", "ok"),
        ("validate", "started", None), ("validate", "ended", "no_code"),
        ("llm", "started", None), ("llm", "ended", "ok"),
        ("validate", "started", None), ("validate", "ended", "ok"),
        ("build", "started", None), ("build", "ended", "compile_error"),
        ("llm", "started", None), ("llm", "ended", "ok"),
        ("validate", "started", None), ("validate", "ended", "ok"),
        ("build", "started", None), ("build", "ended", "ok"),
        ("check", "started", None), ("check", "ended", "passed"),
    ]  # fmt: skip
    lanes = {e.lane for e in events if e.kind in ("stage", "tokens")}
    assert lanes == {info.lane}
    # Each reply's tokens are reported before its llm stage ends: the last count is the reply's.
    tokens = [e for e in events if e.kind == "tokens"]
    assert [t.data["tokens"] for t in tokens] == [
        a.usage.completion_tokens for a in info.trace.attempts
    ]


def test_a_failing_check_is_the_check_stage_outcome(rt: sb.Runtime) -> None:
    events: list[sb.Event] = []
    wrong = "```rust\nfn f(x: u32) -> u32 { x + 9 }\n```"
    with pytest.raises(sb.EvolveError):
        rt.evolve(ScriptedAgent([wrong]), "Add ten.", check=check, activate=False,
                  on_event=events.append)  # fmt: skip
    ended = [e.data for e in events if e.kind == "stage" and e.data["state"] == "ended"]
    assert {"stage": "check", "state": "ended", "outcome": "check_failed"} in ended
    # The script then runs out: the next request fails, and that is the llm stage's outcome.
    assert ended[-1] == {"stage": "llm", "state": "ended", "outcome": "failed"}
    assert events[-1].kind == "run_ended" and events[-1].data["stop_reason"] == "failed"


def test_a_streaming_server_reports_tokens_as_they_arrive(rt: sb.Runtime) -> None:
    events: list[sb.Event] = []
    reply = Text(GOOD, chunk_chars=2, completion_tokens=7)
    with OpenAITestServer([reply]) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, api_key="sk-test", model="m")
        rt.evolve(agent, "Add ten.", check=check, activate=False, on_event=events.append)
    counts = [e.data["tokens"] for e in events if e.kind == "tokens"]
    # One token a content chunk as they arrive (the first is reported at once), then the count
    # at the end: the chunks outnumber the usage the server reported, so the chunks stand.
    assert counts[0] == 1 and counts == sorted(counts)
    assert counts[-1] == len(GOOD) // 2


def test_evolve_batch_events_name_each_lane(rt: sb.Runtime) -> None:
    events: list[sb.Event] = []
    out = rt.evolve_batch(ScriptedAgent([GOOD, GOOD]), ["Add ten.", "Add ten."],
                          check=check, on_event=events.append)  # fmt: skip
    lanes = {r.lane for r in out if isinstance(r, sb.EvolveInfo)}
    assert len(lanes) == 2
    assert {e.lane for e in events if e.kind == "stage"} == lanes
    assert [e.kind for e in events if e.lane is None] == ["run_started", "run_ended"]


def test_a_raising_callback_does_not_end_the_lane(rt: sb.Runtime) -> None:
    def boom(event: sb.Event) -> None:
        raise RuntimeError("display broke")

    info = rt.evolve(ScriptedAgent([GOOD]), "Add ten.", activate=False, on_event=boom)
    assert info.attempts == 1


def test_the_token_meter_reports_the_first_token_and_the_end() -> None:
    seen: list[tuple[int, float]] = []
    meter = TokenMeter(lambda n, rate: seen.append((n, rate)), interval=3600.0)
    for _ in range(50):
        meter.add()
    meter.done(40)  # fewer than counted: the count stands
    assert [n for n, _ in seen] == [1, 50]
    meter.done(70)
    assert seen[-1][0] == 70
    TokenMeter(None).add()  # no callback: nothing to report, nothing raised
    assert Request(messages=()).on_tokens is None


SCRIPT = textwrap.dedent("""
    import sys
    import symbiont as sb
    from symbiont.testing import OpenAITestServer, Text

    GOOD = "```rust\\nfn f(x: u32) -> u32 { x + 10 }\\n```"
    BAD = "```rust\\nfn f(x: u32) -> u32 { x + \\"ten\\" }\\n```"

    def check(fns):
        assert fns.f(1) == 11

    rt = sb.Runtime("fn f(x: u32) -> u32 { x }")
    script = [Text(code, chunk_chars=3, chunk_delay=0.02) for code in (BAD, GOOD)]
    with OpenAITestServer(script) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, api_key="sk-test", model="m")
        rt.evolve(agent, "Add ten.", check=check, on_event=sb.progress(sys.stdout))
""")


def test_piped_progress_is_plain_lines(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=240, check=True)  # fmt: skip
    text = out.stdout
    assert "\x1b" not in text and "\r" not in text
    lines = text.splitlines()
    assert lines[0] == "evolve started"
    llm = [line for line in lines if ": llm ok (" in line]
    assert len(llm) == 2, text
    for line in llm:
        match = re.search(r"llm ok \((\d+) tokens, [\d.]+ tokens/s\)", line)
        assert match and int(match.group(1)) > 0, line
    assert any(line.endswith(": build compile_error") for line in lines), text
    assert any(line.endswith(": check passed") for line in lines), text
    assert re.fullmatch(r"evolve ended \(registered\): revision \d+", lines[-1]), text


def test_a_terminal_gets_the_live_panel_with_tokens() -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdout is the pty
        os.execv(sys.executable, [sys.executable, "-c", SCRIPT])
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
    assert "writing" in text and "tokens" in text and "stage" in text
    assert re.search(r"\d+ at [\d.]+/s", text), "tokens so far and tokens per second are shown"
    assert "build ended: compile_error" in text
    assert "check ended: passed" in text
    assert "evolve ended (registered)" in text


def test_a_scripted_agent_can_write_token_by_token(rt: sb.Runtime) -> None:
    events: list[sb.Event] = []
    agent = ScriptedAgent([GOOD], token_delay=0.001)
    info = rt.evolve(agent, "Add ten.", activate=False, on_event=events.append)
    counts = [e.data["tokens"] for e in events if e.kind == "tokens"]
    assert counts[0] == 1 and counts == sorted(set(counts))
    assert counts[-1] == info.usage.completion_tokens > 1
