"""A search run as a separate process, for the kill-and-resume tests.

    python resume_scenario.py BASE_URL STORE KILL_POINT MARKER [--resume] [--lanes N]

KILL_POINT is one of ``none``, ``sigint`` (Ctrl-C after round 2), ``between`` (SIGKILL after
round 2 is committed), ``evaluate`` (inside round 3's evaluation) and ``build`` (asks the rustc
wrapper to kill this process during round 3's build); the kill during an LLM request is done
by the test's server. Each point fires once: MARKER records that it fired.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import symbiont as sb

DECL = "fn value() -> u32 { 1 }"


def main() -> int:
    base_url, store, kill, marker = sys.argv[1:5]
    resume = "--resume" in sys.argv
    lanes = int(sys.argv[sys.argv.index("--lanes") + 1]) if "--lanes" in sys.argv else 1
    strategy = sb.Lanes(lanes, hints=[f"h{i}" for i in range(lanes)]) if lanes > 1 else None

    def fire(point: str) -> None:
        if kill == point and not os.path.exists(marker):
            Path(marker).write_text(point)
            os.kill(os.getpid(), signal.SIGKILL)

    def evaluate(fns: sb.Functions) -> float:
        v = fns.value()
        if v >= 30:
            fire("evaluate")
        return float(v)

    def on_event(event: sb.Event) -> None:
        if event.kind == "round_ended" and event.round == 2:
            fire("between")
            if kill == "sigint" and not os.path.exists(marker):
                Path(marker).write_text(kill)
                os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C does
        if (kill == "build" and event.kind == "stage" and event.round == 3
                and event.data.get("stage") == "build" and event.data.get("state") == "started"
                and not os.path.exists(marker)):  # fmt: skip
            Path(marker).write_text("build")
            Path(os.environ["KILL_ON_NEXT_RUSTC"]).write_text(str(os.getpid()))

    rt = sb.Runtime(DECL, profile="debug")
    agent = sb.OpenAIAgent(base_url=base_url, api_key="sk-test", model="m")
    run = rt.search(
        agent, "Grow.", evaluate=evaluate, budget=sb.Budget(rounds=5), store=store, name="k",
        strategy=strategy,
        resume=resume, on_event=on_event,
    )  # fmt: skip
    print(run.best.revision if run.best else None, run.stop_reason)
    return 0


if __name__ == "__main__":
    sys.exit(main())
