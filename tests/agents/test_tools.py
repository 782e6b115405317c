"""Tool calling: schemas from functions, and the tool loop against the real HTTP test server."""

from __future__ import annotations

import asyncio
import enum
import json
import threading
from typing import Any, Literal

import pytest

import symbiont as sb
from symbiont._agents import Message, Request, tool_from_function
from symbiont.testing import OpenAITestServer, ScriptedAgent, Text, ToolCall

HIDDEN = "```rust\nfn rule(n: i64) -> i64 { 3 * n + 7 }\n```"
REQUEST = Request(messages=(Message(role="user", content="Find the rule."),))


def probe(n: int) -> int:
    """The hidden rule evaluated at n.

    Args:
        n: where to evaluate it
    """
    return 3 * n + 7


def complete(agent: sb.Agent, request: Request = REQUEST) -> sb.Reply:
    return asyncio.run(agent.complete(request))


def calls(*pairs: tuple[str, dict[str, Any]]) -> Text:
    return Text(None, tool_calls=tuple(ToolCall(name, args) for name, args in pairs))


# -- schemas ----------------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


def sample(  # noqa: PLR0917  (the point is many parameter types)
    count: int,
    scale: float,
    label: str,
    flags: list[bool],
    mode: Literal["fast", "exact"] = "fast",
    colour: Colour = Colour.RED,
    limit: int | None = None,
    table: dict[str, float] | None = None,
) -> None:
    """Sample things.

    More words about sampling.

    :param count: how many
    :param label: what to call them
    """


def test_schema_comes_from_hints_and_docstring() -> None:
    tool = tool_from_function(sample)
    assert tool.name == "sample"
    assert tool.description == "Sample things.\n\nMore words about sampling."
    props = tool.parameters["properties"]
    assert props["count"] == {"type": "integer", "description": "how many"}
    assert props["scale"] == {"type": "number"}
    assert props["label"] == {"type": "string", "description": "what to call them"}
    assert props["flags"] == {"type": "array", "items": {"type": "boolean"}}
    assert props["mode"] == {"enum": ["fast", "exact"]}
    assert props["colour"] == {"enum": ["red", "blue"]}
    assert props["limit"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert props["table"]["anyOf"][0] == {
        "type": "object",
        "additionalProperties": {"type": "number"},
    }
    assert tool.parameters["required"] == ["count", "scale", "label", "flags"]
    google = tool_from_function(probe)
    assert google.parameters["properties"]["n"]["description"] == "where to evaluate it"
    assert google.description == "The hidden rule evaluated at n."


def test_functions_a_model_cannot_call_are_refused() -> None:
    def varargs(*xs: int) -> None: ...

    def odd(x: threading.Lock) -> None: ...

    with pytest.raises(sb.ConfigError, match=r"\*xs"):
        tool_from_function(varargs)
    with pytest.raises(sb.ConfigError, match="no JSON form"):
        tool_from_function(odd)
    with pytest.raises(sb.ConfigError, match="cannot be a tool name"):
        tool_from_function(lambda x: x)
    with pytest.raises(sb.ConfigError, match="two tools are named"):
        sb.OpenAIAgent(base_url="http://x/v1", model="m", tools=[probe, probe])


def test_agents_without_tool_support_say_so() -> None:
    with pytest.raises(sb.ConfigError, match=r"CommandAgent has no tool support.*OpenAIAgent"):
        sb.CommandAgent(["cat"], tools=[probe])
    local = pytest.importorskip("symbiont._agents._local")
    with pytest.raises(sb.ConfigError, match=r"LocalAgent has no tool support.*OpenAIAgent"):
        local.LocalAgent(tools=[probe])


# -- the loop over HTTP -----------------------------------------------------------------------


def test_multi_turn_tool_loop_feeds_results_back() -> None:
    script = [calls(("probe", {"n": 0}), ("probe", {"n": 1})), calls(("probe", {"n": 10})), HIDDEN]
    with OpenAITestServer(script) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, model="m", tools=[probe])
        reply = complete(agent)
        sent = server.requests
    assert reply.text == HIDDEN
    assert [(c.name, json.loads(c.arguments), c.result, c.turn) for c in reply.tool_calls] == [
        ("probe", {"n": 0}, "7", 1),
        ("probe", {"n": 1}, "10", 1),
        ("probe", {"n": 10}, "37", 2),
    ]
    assert reply.usage.requests == 3
    assert sent[0]["tools"][0]["function"]["name"] == "probe"
    assert sent[0]["tool_choice"] == "auto"
    second = sent[1]["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "tool", "tool"]
    ids = [c["id"] for c in second[1]["tool_calls"]]
    assert [(m["tool_call_id"], m["content"]) for m in second[2:]] == [
        (ids[0], "7"),
        (ids[1], "10"),
    ]
    assert sent[2]["messages"][-1]["content"] == "37"


def test_non_streaming_servers_carry_tool_calls_too() -> None:
    with OpenAITestServer([calls(("probe", {"n": 2})), HIDDEN]) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, model="m", tools=[probe], stream=False)
        reply = complete(agent)
        assert server.requests[1]["messages"][-1]["content"] == "13"
    assert reply.text == HIDDEN


def test_a_failing_tool_becomes_an_error_message_for_the_model() -> None:
    def divide(a: int, b: int) -> float:
        """a / b"""
        return a / b

    script = [
        calls(("divide", {"a": 1, "b": 0})),
        calls(("divide", {"a": 1})),  # a missing argument
        Text(None, tool_calls=(ToolCall("divide", "{not json"),)),
        calls(("nope", {})),
        HIDDEN,
    ]
    with OpenAITestServer(script) as server:
        reply = complete(sb.OpenAIAgent(base_url=server.base_url, model="m", tools=[divide]))
        results = [r["messages"][-1]["content"] for r in server.requests[1:]]
    assert results[0] == "error: the tool 'divide' failed: ZeroDivisionError: division by zero"
    assert results[1].startswith("error: the arguments for 'divide' are invalid:")
    assert "missing a required argument: 'b'" in results[1]
    assert results[2].startswith("error: the arguments for 'divide' are invalid:")
    assert results[3] == "error: there is no tool 'nope'; the tools are: divide"
    assert [c.error for c in reply.tool_calls] == [True, True, True, True]
    assert reply.text == HIDDEN


def test_a_hanging_tool_is_abandoned_after_its_timeout() -> None:
    release = threading.Event()

    def stuck() -> str:
        """Never answers (until the test ends)."""
        release.wait(600)
        return "too late"

    async def stuck_async() -> str:
        """Never answers."""
        await asyncio.sleep(600)
        return "too late"

    script = [calls(("stuck", {})), calls(("stuck_async", {})), HIDDEN]
    try:
        with OpenAITestServer(script) as server:
            agent = sb.OpenAIAgent(base_url=server.base_url, model="m",
                                   tools=[stuck, stuck_async], tool_timeout=0.2)  # fmt: skip
            reply = complete(agent)
            results = [r["messages"][-1]["content"] for r in server.requests[1:]]
    finally:
        release.set()
    expected = "error: the tool '{}' did not finish within 0.2 s and was abandoned"
    assert results == [expected.format("stuck"), expected.format("stuck_async")]
    assert reply.text == HIDDEN


def test_a_model_that_never_stops_calling_tools_is_bounded() -> None:
    def endless(body: dict[str, Any]) -> Text:
        if body.get("tool_choice") == "none":
            return calls(("probe", {"n": 99}))  # ignores the instruction: still calls
        return calls(("probe", {"n": len(body["messages"])}))

    with OpenAITestServer([endless] * 50) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, model="m", tools=[probe],
                               max_tool_turns=3)  # fmt: skip
        reply = complete(agent)
        assert server.request_count == 4
        assert server.requests[-1]["tool_choice"] == "none"
    assert reply.text == ""
    assert [c.turn for c in reply.tool_calls] == [1, 2, 3, 4]
    assert [c.error for c in reply.tool_calls] == [False, False, False, True]
    assert "budget of 3 tool turns is spent" in reply.tool_calls[-1].result


def test_a_huge_result_is_cut_and_the_model_is_told() -> None:
    def dump() -> str:
        """Five megabytes of text."""
        return "x" * 5_000_000

    with OpenAITestServer([calls(("dump", {})), HIDDEN]) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, model="m", tools=[dump],
                               max_tool_result_chars=1000)  # fmt: skip
        reply = complete(agent)
        shown = server.requests[1]["messages"][-1]["content"]
    assert shown.startswith("x" * 1000)
    assert len(shown) < 1200
    assert "[result cut: the first 1,000 of 5,000,000 characters are shown" in shown
    assert reply.tool_calls[0].truncated


def test_tool_calls_are_in_the_attempt_trace() -> None:
    rt = sb.Runtime("fn rule(n: i64) -> i64 { n }")
    script = [calls(("probe", {"n": 1})), "no code yet", calls(("probe", {"n": 2})), HIDDEN]
    with OpenAITestServer(script) as server:
        agent = sb.OpenAIAgent(base_url=server.base_url, model="m", tools=[probe])
        info = rt.evolve(agent, "Match probe(n) exactly.", check=lambda f: f.rule(5) == 22)
    first, second = info.trace.attempts
    assert [(c.name, c.result) for c in first.tool_calls] == [("probe", "10")]
    assert [(c.name, c.result) for c in second.tool_calls] == [("probe", "13")]
    line = json.loads(info.trace.to_jsonl().splitlines()[0])
    assert line["tool_calls"][0]["name"] == "probe"
    assert line["tool_calls"][0]["arguments"] == '{"n": 1}'
    assert rt.fns.rule(5) == 22


# -- scripted tool calls and the built-in tools ---------------------------------------------


def test_scripted_agent_scripts_tool_calls() -> None:
    agent = ScriptedAgent([ToolCall("probe", {"n": 4}), [ToolCall("probe", {"n": 5})], HIDDEN],
                          tools=[probe])  # fmt: skip
    reply = complete(agent)
    assert [c.result for c in reply.tool_calls] == ["19", "22"]
    assert agent.tool_messages[0][-1] == {
        "role": "tool", "tool_call_id": "call_1_0", "content": "19",
    }  # fmt: skip
    assert reply.text == HIDDEN
    with pytest.raises(TypeError, match="needs tools"):
        complete(ScriptedAgent([ToolCall("probe", {"n": 4})]))


DECL = """
/// Sum of the values, plus the constant the check wants.
fn total(values: &[i64]) -> i64 { values.iter().sum() }
"""


def test_builtin_call_and_try_code_tools() -> None:
    rt = sb.Runtime(DECL)

    def check(fns: sb.Functions) -> float:
        assert fns.total(array_of(1, 2, 3)) == 106, "total([1, 2, 3]) must be 106"
        return 1.0

    draft_bad = "```rust\nfn total(values: &[i64]) -> i64 { values.iter().sum() + }\n```"
    draft_wrong = "```rust\nfn total(values: &[i64]) -> i64 { values.iter().sum::<i64>() }\n```"
    final = "```rust\nfn total(values: &[i64]) -> i64 { values.iter().sum::<i64>() + 100 }\n```"
    agent = ScriptedAgent(
        [
            ToolCall("call_function", {"function": "total", "arguments": [[1, 2, 3]]}),
            ToolCall("try_code", {"code": draft_bad}),
            ToolCall("try_code", {"code": draft_wrong}),
            ToolCall("try_code", {"code": final}),
            final,
        ],
        tools=[sb.tools.call(rt), sb.tools.try_code(rt, check)],
    )
    before = len(rt.revisions)
    info = rt.evolve(agent, "Add 100.", check=check)
    results = [c.result for c in info.trace.attempts[0].tool_calls]
    assert json.loads(results[0]) == {"result": 6}
    assert results[1].startswith("The draft fails (parse error)")
    assert results[2].startswith("The draft fails (check failed)")
    assert "total([1, 2, 3]) must be 106" in results[2]
    assert results[3].startswith("The draft compiles and passes the check. Its score: 1.")
    # Drafts are never registered: only the final answer became a revision.
    assert len(rt.revisions) == before + 1
    assert rt.fns.total(array_of(1, 2, 3)) == 106


def test_builtin_call_reports_panics_and_deadlines_to_the_model() -> None:
    rt = sb.Runtime(
        "fn spin(n: u64) -> u64 { let mut i = 0u64; while i < n { i = i.wrapping_add(n % 2); }"
        " i }\nfn idx(v: &[u8], i: usize) -> u8 { v[i] }"
    )
    agent = ScriptedAgent(
        [
            ToolCall("call_function", {"function": "spin", "arguments": [4]}),  # never ends
            ToolCall("call_function", {"function": "idx", "arguments": [[1, 2], 5]}),
            ToolCall("call_function", {"function": "idx", "arguments": [[1, 2]]}),
            "done",
        ],
        tools=[sb.tools.call(rt, timeout=0.2)],
    )
    reply = complete(agent)
    spin, idx, short = reply.tool_calls
    assert spin.error and "TimeoutError" in spin.result
    assert idx.error and "PanicError" in idx.result and "index out of bounds" in idx.result
    assert short.error and "takes 2 argument(s)" in short.result


def array_of(*values: int) -> Any:
    import array

    return array.array("q", values)


def test_try_code_follows_the_runtime_isolation() -> None:
    # With isolation="process" a draft that aborts kills a worker, not the host, and the model
    # reads the same crash record a candidate would give.
    rt = sb.Runtime("fn f(x: u32) -> u32 { x }", isolation="process", worker_memory=1 << 30)

    def check(fns: sb.Functions) -> float:
        assert fns.f(1) == 11, "f(1) must be 11"
        return 1.0

    hog = "```rust\nfn f(x: u32) -> u32 { let v = vec![1u8; 1 << 34]; v[x as usize] as u32 }\n```"
    good = "```rust\nfn f(x: u32) -> u32 { x + 10 }\n```"
    agent = ScriptedAgent(
        [ToolCall("try_code", {"code": hog}), ToolCall("try_code", {"code": good}), good],
        tools=[sb.tools.try_code(rt, check)],
    )
    try:
        info = rt.evolve(agent, "Add 10.", check=check)
    finally:
        rt.close()
    crashed, passed = (c.result for c in info.trace.attempts[0].tool_calls)
    assert crashed.startswith("The draft fails (crash)"), crashed
    assert passed.startswith("The draft compiles and passes the check.")
    assert len(rt.revisions) == 2  # revision 0 and the final answer, no draft
