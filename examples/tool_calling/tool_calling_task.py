"""The hidden rule, the tool that reveals it one value at a time, and the check.

The model is never told the rule: it calls `probe(n)` to see what `transform(n)` must return,
infers the rule and writes it. A candidate passes when it agrees with the rule on -10..=10.
"""

from __future__ import annotations

import symbiont as sb

CHECKED = range(-10, 11)


def probe(n: int) -> int:
    """Returns the value the hidden rule gives for n: what transform(n) must return."""
    return 3 * n + 7


def check(fns: sb.Functions) -> float:
    """1.0 when transform agrees with the hidden rule on -10..=10; else rejected with the
    disagreements (the model may probe those values)."""
    wrong = [n for n in CHECKED if fns.transform(n) != probe(n)]
    if wrong:
        shown = ", ".join(f"transform({n}) returned {fns.transform(n)}" for n in wrong[:5])
        raise sb.Reject(
            f"{len(wrong)} of {len(CHECKED)} values in -10..=10 disagree with the hidden rule: "
            f"{shown}. Call probe(n) to see the expected values."
        )
    return 1.0
