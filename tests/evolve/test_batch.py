"""Batch lanes, the runtime-wide request cap, and the sync API inside a running event loop."""

from __future__ import annotations

import asyncio
import logging

import pytest

import symbiont as sb
from symbiont._agents import Reply, Request, Usage

DECL = "fn f(x: i64) -> i64 { x }"


class ByTaskAgent:
    """Answers by the task in the base prompt; counts requests in flight at once."""

    name = "by-task"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.in_flight = 0
        self.peak = 0
        self.calls = 0

    async def complete(self, request: Request) -> Reply:
        self.calls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        task = request.messages[1].content.splitlines()[0]
        for key in ("double-again", "double", "triple"):
            if key in task:
                code = "x * 2" if key.startswith("double") else "x * 3"
                text = f"```rust\nfn f(x: i64) -> i64 {{ {code} }}\n```"
                usage = Usage(prompt_tokens=10, completion_tokens=5, requests=1)
                return Reply(text=text, usage=usage)
        return Reply(text="I would rather not write code.", usage=Usage(requests=1))


def test_lanes_are_isolated_registered_and_not_activated() -> None:
    rt = sb.Runtime(DECL, max_attempts=3)
    agent = ByTaskAgent()
    results = rt.evolve_batch(agent, ["double", "refuse", "triple", "double-again"])
    assert [type(r).__name__ for r in results] == [
        "EvolveInfo",
        "EvolveError",
        "EvolveInfo",
        "EvolveInfo",
    ]
    double, refused, triple, again = results
    assert isinstance(double, sb.EvolveInfo) and isinstance(triple, sb.EvolveInfo)
    assert isinstance(again, sb.EvolveInfo) and isinstance(refused, sb.EvolveError)
    assert len(refused.attempts) == 3  # its own budget, untouched by the others
    assert rt.active_revision == 0  # none activated
    assert rt.fns.f(5) == 5
    assert rt.revision(double.revision).fns.f(5) == 10
    assert rt.revision(triple.revision).fns.f(5) == 15
    assert again.revision == double.revision  # identical candidates share one revision
    assert len(rt.revisions) == 3
    assert len({double.lane, refused.lane, triple.lane, again.lane}) == 4


def test_runtime_wide_cap_on_requests_in_flight() -> None:
    rt = sb.Runtime(DECL, max_requests_in_flight=2)
    agent = ByTaskAgent(delay=0.2)
    results = rt.evolve_batch(agent, ["double"] * 6)
    assert all(isinstance(r, sb.EvolveInfo) for r in results)
    assert agent.peak == 2


def test_lanes_run_concurrently() -> None:
    rt = sb.Runtime(DECL)
    agent = ByTaskAgent(delay=0.3)
    rt.evolve_batch(agent, ["double", "triple", "double", "triple"])
    assert agent.peak == 4


def test_sync_api_inside_a_running_event_loop_and_async_twins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rt = sb.Runtime(DECL)
    caplog.set_level(logging.WARNING, logger="symbiont")

    async def main() -> tuple[sb.EvolveInfo, list[sb.EvolveInfo | sb.EvolveError], int]:
        sync_info = rt.evolve(ByTaskAgent(), "triple", activate=False)  # loop is running here
        batch = await rt.aevolve_batch(ByTaskAgent(), ["double", "nope"])
        info = await rt.aevolve(ByTaskAgent(), "double")
        return sync_info, batch, info.revision

    sync_info, batch, active = asyncio.run(main())
    assert rt.revision(sync_info.revision).fns.f(2) == 6
    assert isinstance(batch[0], sb.EvolveInfo) and isinstance(batch[1], sb.EvolveError)
    assert rt.active_revision == active and rt.fns.f(2) == 4
    # The sync call blocked the caller's loop, and said so where it happened; the async twins
    # did not warn.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "rt.evolve() was called from a running event loop" in warnings[0]
    assert "await rt.aevolve(...)" in warnings[0]


def test_batch_rejects_a_single_string() -> None:
    rt = sb.Runtime(DECL)
    with pytest.raises(sb.ConfigError, match="list of prompts"):
        rt.evolve_batch(ByTaskAgent(), "double")  # type: ignore[arg-type]


def test_not_an_agent_is_a_config_error() -> None:
    rt = sb.Runtime(DECL)
    with pytest.raises(sb.ConfigError, match="is not an Agent"):
        rt.evolve(object(), "x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("transient_retries", -1),
        ("context_resets", 1.5),
        ("max_attempts", 0),
        ("backoff", (0.0, 1.0)),
        ("llm_timeout", -3),
        ("timeout", 0),
        ("isolation", "thread"),
        ("profile", "fast"),
    ],
)
def test_invalid_options_are_config_errors_naming_the_option(option: str, value: object) -> None:
    with pytest.raises(sb.ConfigError, match=option.split("_", maxsplit=1)[0]):
        sb.Runtime(DECL, **{option: value})  # type: ignore[arg-type]


def test_unknown_option_lists_the_valid_ones() -> None:
    with pytest.raises(sb.ConfigError, match=r"unknown Runtime option\(s\) profil; valid: profile"):
        sb.Runtime(DECL, profil="release")  # type: ignore[call-arg]
