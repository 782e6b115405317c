"""Evolve a counter step: the smallest complete symbiont run.

Revision 0 adds 1. The LLM is asked to add a constant between 5 and 19; a check calls each
candidate natively and rejects the ones that do not, feeding the reason back. The evolved step
is then called through the same dispatcher object as before, now running the new machine code.

    python examples/counter/main.py          # or: symbiont example counter

Uses the endpoint in BASE_URL/API_KEY/MODEL when set, else the embedded local model. A lane
has 10 attempts; up to 3 rounds (fresh conversations) are tried before giving up.
"""

from __future__ import annotations

import sys

import symbiont as sb

DECLARATION = """
/// Advance the counter by one step.
fn step(counter: &mut usize) {
    *counter += 1;
}
"""

PROMPT = (
    "Change `step` so that it adds a constant between 5 and 19 to the counter instead of 1. "
    "Example: `*counter += 7;`."
)


def check(fns: sb.Functions) -> float:
    """Accepts a step that adds the same constant in 5..=19 every time; the score is it."""
    cell = sb.Cell(0, "usize")
    fns.step(cell)
    first = cell.value
    if not 5 <= first <= 19:
        raise AssertionError(
            f"step(counter) with counter = 0 left counter = {first}; it must add a constant "
            "between 5 and 19"
        )
    fns.step(cell)
    if cell.value != 2 * first:
        raise AssertionError(
            f"step added {first} and then {cell.value - first}: it must add the same constant"
        )
    return float(first)


def main(agent: sb.Agent | None = None, *, rounds: int = 3, attempts: int = 10) -> int:
    rt = sb.Runtime(DECLARATION, max_attempts=attempts)
    counter = sb.Cell(0, "usize")
    step = rt.fns.step
    step(counter)
    print(f"revision 0: step(counter) -> counter = {counter.value}")

    agent = agent or sb.agent_from_env()
    # The model writes for minutes: show its tokens and each stage as they happen (standard
    # error: a live panel on a terminal, plain lines when piped).
    progress = sb.progress()
    # A small model may need more than one lane: each round starts a fresh conversation.
    for round_ in range(1, rounds + 1):
        try:
            info = rt.evolve(agent, PROMPT, check=check, on_event=progress)
            break
        except sb.EvolveError as exc:
            reason = exc.last_failure.summary if exc.last_failure else exc
            print(f"round {round_}: no revision registered ({reason})")
            if exc.fatal:  # a bad key or an unknown model: another round cannot help
                print(f"stopped: {exc}", file=sys.stderr)
                return 2
    else:
        print(f"no revision registered after {rounds} round(s)", file=sys.stderr)
        return 1
    print(
        f"\nrevision {info.revision} after {info.attempts} attempt(s), "
        f"{info.usage.total_tokens} tokens, {info.timings.total:.1f} s:"
    )
    print(rt.code(info.revision))
    assert rt.fns.step is step  # the same dispatcher object, now running the new revision
    step(counter)
    print(f"revision {rt.active_revision}: step(counter) -> counter = {counter.value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
