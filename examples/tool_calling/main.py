"""Find a hidden rule by calling a tool: the model gets `probe(n)` and no specification.

`transform(n: i64) -> i64` has to reproduce a rule the prompt never states. The model may call
the Python function `probe(n)`, which returns the rule's value at n, as often as it likes while
it writes (the agent runs the calls and sends the results back; each call is printed); the
check accepts the code when it agrees with the rule on -10..=10.

Tool calls need an OpenAI-compatible endpoint with tool support (BASE_URL, MODEL, API_KEY); the
embedded local model has none, so without BASE_URL the example says so and stops.

    BASE_URL=... MODEL=... API_KEY=... python examples/tool_calling/main.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tool_calling_task import check
from tool_calling_task import probe as hidden_rule

import symbiont as sb

DECLARATION = "fn transform(n: i64) -> i64;"

PROMPT = (
    "Implement transform. Its rule is not given to you: call the probe tool with values of n "
    "of your choice to see what transform(n) must return, work out the rule, then answer with "
    "the Rust code."
)

NO_TOOLS = (
    "tool_calling needs an agent that can call tools: an OpenAI-compatible endpoint in "
    "BASE_URL (with MODEL and API_KEY). The embedded local model has no tool support, so "
    "there is nothing to run here."
)


def probing_agent(base: sb.OpenAIAgent, api_key: str | None) -> sb.OpenAIAgent:
    """The endpoint's agent again, with the probe tool (which prints each call it answers)."""

    def probe(n: int) -> int:
        """Returns the value the hidden rule gives for n: what transform(n) must return."""
        value = hidden_rule(n)
        print(f"the model called probe({n}) -> {value}")
        return value

    return sb.OpenAIAgent(
        base_url=base.base_url, api_key=api_key, model=base.model, timeout=base.timeout,
        header_timeout=base.header_timeout, idle_timeout=base.idle_timeout,
        reasoning_effort=base.reasoning_effort, tools=[probe], max_tool_turns=12,
    )  # fmt: skip


def main(
    agent: sb.Agent | None = None,
    *,
    rounds: int = 3,
    attempts: int = 5,
    store: str | None = None,
    seed: int = 0,
) -> int:
    if agent is None:
        if not os.environ.get("BASE_URL", "").strip():
            print(NO_TOOLS)
            return 0
        base = sb.agent_from_env()
        assert isinstance(base, sb.OpenAIAgent)  # BASE_URL set: always an OpenAIAgent
        agent = probing_agent(base, os.environ.get("API_KEY"))
    rt = sb.Runtime(DECLARATION)
    try:
        run = rt.search(
            agent,
            PROMPT,
            evaluate=check,
            strategy=sb.HillClimb(seed=seed),
            budget=sb.Budget(rounds=rounds, target=1.0),
            attempts_per_lane=attempts,
            store=store,
            on_event=sb.progress(),
        )
    except sb.EvolveError as exc:
        if not exc.fatal:
            raise
        print(f"stopped: {exc}", file=sys.stderr)
        return 2
    if run.best is None:
        print(f"the rule was not found in {run.rounds} round(s)", file=sys.stderr)
        return 1
    tries = 1 + next(i for i, h in enumerate(run.history) if h.revision == run.best.revision)
    print(f"revision {run.best.revision} reproduces the hidden rule on -10..=10 "
          f"after {tries} attempt(s)")  # fmt: skip
    print(rt.code())
    print("transform(100) =", rt.fns.transform(100), "| probe(100) =", hidden_rule(100))
    print(f"run {run.name} is in {run.store}: `symbiont log {run.name}` shows the attempts")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--attempts", type=int, default=5, help="LLM requests per lane")
    parser.add_argument("--store", help="the run store (default: runs.db in the cache dir)")
    parser.add_argument("--seed", type=int, default=0, help="the strategy's seed")
    args = parser.parse_args()
    sys.exit(main(rounds=args.rounds, attempts=args.attempts, store=args.store, seed=args.seed))
