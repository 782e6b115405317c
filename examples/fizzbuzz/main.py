"""Evolve fizzbuzz against a test suite, feeding the failures back until every case passes.

`fizzbuzz(n: u32) -> String` is declared without a body. Each candidate is compiled, loaded and
run natively against 1..=100; the failing cases (and any panic, with its line) go back to the
LLM as the correction for the next attempt. The search layer runs the rounds: when a lane runs
out of attempts, a new round starts with the last failures in its prompt, and every attempt
is recorded in the run store (`symbiont runs`, `symbiont log RUN`).

    python examples/fizzbuzz/main.py [--rounds N]     # or: symbiont example fizzbuzz
"""

from __future__ import annotations

import argparse
import sys

import symbiont as sb

DECLARATION = """
/// FizzBuzz for one number: "Fizz" for multiples of 3, "Buzz" for multiples of 5,
/// "FizzBuzz" for multiples of both, otherwise the number in decimal.
fn fizzbuzz(n: u32) -> String;
"""

PROMPT = "Implement fizzbuzz as documented."


def expected(n: int) -> str:
    return "FizzBuzz" if n % 15 == 0 else "Fizz" if n % 3 == 0 else "Buzz" if n % 5 == 0 else str(n)


def test_suite(fns: sb.Functions) -> float:
    """Runs 1..=100; raises with the first failures listed, returns the share passed."""
    failures = []
    for n in range(1, 101):
        got = fns.fizzbuzz(n)
        if got != expected(n):
            failures.append(f"fizzbuzz({n}) returned {got!r}, expected {expected(n)!r}")
    if failures:
        shown = "\n".join(failures[:6])
        raise AssertionError(f"{len(failures)} of 100 test cases fail:\n{shown}")
    return 1.0


def prompt(ctx: sb.PromptContext) -> str:
    """The default search prompt, plus the failures of earlier rounds spelled out."""
    text = sb.default_prompt(ctx)
    if ctx.failures:
        text += "\n\nA previous attempt failed the test suite:\n" + "\n".join(ctx.failures)
    return text


def main(agent: sb.Agent | None = None, *, rounds: int = 3, attempts: int = 10) -> int:
    rt = sb.Runtime(DECLARATION)
    agent = agent or sb.agent_from_env()
    try:
        run = rt.search(
            agent,
            PROMPT,
            evaluate=test_suite,
            budget=sb.Budget(rounds=rounds, target=1.0),
            attempts_per_lane=attempts,
            prompt=prompt,
            on_event=sb.progress(),
        )
    except sb.EvolveError as exc:
        if not exc.fatal:
            raise
        # A bad key or an unknown model: another round cannot help, and the search says so.
        print(f"stopped: {exc}", file=sys.stderr)
        return 2
    for entry in run.history:
        if entry.failure_kind is not None and entry.attempt == attempts:
            print(f"round {entry.round}: no passing revision ({entry.summary})")
    if run.best is None:
        print(f"no passing revision after {run.rounds} round(s)", file=sys.stderr)
        return 1
    best = run.best
    round_ = next(h.round for h in run.history if h.revision == best.revision)
    tries = sum(1 for h in run.history if h.round == round_)
    print(f"round {round_}: revision {best.revision} passes all 100 cases after {tries} attempt(s)")
    print(rt.code())
    print(", ".join(rt.fns.fizzbuzz(n) for n in range(1, 16)))
    print(f"run {run.name} is in {run.store}: `symbiont show {run.name}` tells its story")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--attempts", type=int, default=10)
    args = parser.parse_args()
    sys.exit(main(rounds=args.rounds, attempts=args.attempts))
