"""Evolve fizzbuzz against a test suite, feeding the failures back until every case passes.

`fizzbuzz(n: u32) -> String` is declared without a body. Each candidate is compiled, loaded and
run natively against 1..=100; the failing cases (and any panic, with its line) go back to the
LLM as the correction for the next attempt. When a lane runs out of attempts, a new round
starts with the last failures in its prompt.

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


def main(agent: sb.Agent | None = None, *, rounds: int = 3, attempts: int = 10) -> int:
    rt = sb.Runtime(DECLARATION, max_attempts=attempts)
    agent = agent or sb.agent_from_env()
    prompt = PROMPT
    for round_ in range(1, rounds + 1):
        try:
            info = rt.evolve(agent, prompt, check=test_suite)
        except sb.EvolveError as exc:
            reason = exc.last_failure.summary if exc.last_failure else exc
            print(f"round {round_}: no passing revision ({reason})")
            if exc.fatal:  # a bad key or an unknown model: another round cannot help
                print(f"stopped: {exc}", file=sys.stderr)
                return 2
            if exc.last_failure is not None:
                prompt = (
                    f"{PROMPT}\n\nA previous attempt failed the test suite:\n"
                    f"{exc.last_failure.feedback}"
                )
            continue
        print(
            f"round {round_}: revision {info.revision} passes all 100 cases "
            f"after {info.attempts} attempt(s)"
        )
        print(rt.code())
        print(", ".join(rt.fns.fizzbuzz(n) for n in range(1, 16)))
        return 0
    print(f"no passing revision after {rounds} round(s)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--attempts", type=int, default=10)
    args = parser.parse_args()
    sys.exit(main(rounds=args.rounds, attempts=args.attempts))
