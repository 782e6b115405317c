"""Every word of a search round's prompt (the lane's system rules and corrections stay in
``_evolve``): the context a prompt builder receives and the default builder.

The default prompt, in this order (stable parts first, so a provider's prompt-prefix cache
covers as much as possible; what changes from round to round comes last):

1. the task; 2. the prelude and the functions to implement; 3. the best code so far with its
score and metrics; 4. a few other good or diverse candidates ("inspirations"); 5. the
frontier, when several objectives are searched; 6. the parent this lane starts from (when it is
not the best); 7. the last attempt and its result; 8. recent failures, one line each; 9. the
evaluator's feedback; 10. the lane's strategy hint and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class Shown:
    """A revision as the prompt shows it."""

    revision: int
    code: str
    score: float | None
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptContext:
    """What a prompt builder (``search(prompt=callable)``) receives for one lane.

    ``objective`` names the score and ``maximize`` its direction; ``parent`` is the revision
    the lane improves (``best`` may be the same); ``last`` the previous round's outcome as one
    line (None in round 1); ``failures`` recent failure lines; ``feedback`` the evaluator's
    text for the parent; ``hint`` the strategy's hint for the lane; ``functions`` the declared
    functions the lane rewrites (None: all of them; the others are kept from the parent).
    """

    task: str
    prelude: str
    signatures: str
    objective: str
    maximize: bool
    round: int
    lane: int
    parent: Shown
    best: Shown | None
    inspirations: tuple[Shown, ...] = ()
    frontier: tuple[Shown, ...] = ()
    last: str | None = None
    failures: tuple[str, ...] = ()
    feedback: str | None = None
    hint: str | None = None
    functions: tuple[str, ...] | None = None


def _metrics(shown: Shown, objective: str) -> str:
    parts = [] if shown.score is None else [f"{objective}={shown.score:.6g}"]
    parts += [f"{k}={v:.6g}" for k, v in sorted(shown.metrics.items()) if k != objective]
    return ", ".join(parts) if parts else "not scored"


def _block(title: str, shown: Shown, objective: str) -> str:
    return (
        f"{title} (revision {shown.revision}, {_metrics(shown, objective)}):\n"
        f"```rust\n{shown.code.rstrip()}\n```"
    )


def default_prompt(ctx: PromptContext) -> str:
    """The first user message of a search lane (see the module docstring for its parts)."""
    direction = "higher" if ctx.maximize else "lower"
    parts = [f"Task: {ctx.task.strip()}"]
    if ctx.prelude.strip():
        parts.append(f"Prelude (already defined):\n```rust\n{ctx.prelude.rstrip()}\n```")
    parts.append(f"Functions to implement:\n```rust\n{ctx.signatures}\n```")
    parts.append(f"Candidates are scored by `{ctx.objective}`: {direction} is better.")
    if ctx.best is not None:
        parts.append(_block("Best code so far", ctx.best, ctx.objective))
    for shown in ctx.inspirations:
        parts.append(_block("Another candidate, for ideas", shown, ctx.objective))
    if ctx.frontier:
        lines = [f"- revision {s.revision}: {_metrics(s, ctx.objective)}" for s in ctx.frontier]
        parts.append(
            "Trade-off frontier (no candidate beats these on every metric):\n" + "\n".join(lines)
        )
    if ctx.best is None or ctx.parent.revision != ctx.best.revision:
        parts.append(_block("Start from this code", ctx.parent, ctx.objective))
    if ctx.last:
        parts.append(f"Last attempt: {ctx.last}")
    if ctx.failures:
        parts.append("Recent failures:\n" + "\n".join(f"- {f}" for f in ctx.failures))
    if ctx.feedback:
        parts.append(
            f"Evaluator feedback on revision {ctx.parent.revision}:\n{ctx.feedback.strip()}"
        )
    ask = f"Round {ctx.round}: write an improved version ({direction} `{ctx.objective}`)."
    if ctx.functions:
        names = ", ".join(f"`{n}`" for n in ctx.functions)
        ask += (
            f" Write only {names} (and any helpers they need); every other function is kept "
            "from the code above."
        )
    if ctx.hint:
        ask += f" Strategy for this attempt: {ctx.hint.strip()}"
    parts.append(ask)
    return "\n\n".join(parts)


def last_line(round: int, revision: int | None, score: float | None, failure: str | None) -> str:
    """The previous round's outcome in one line, for the next prompt."""
    if revision is None:
        return f"round {round} produced no working candidate ({failure or 'no reply'})"
    shown = "not scored" if score is None else f"score {score:.6g}"
    return f"round {round} produced revision {revision}, {shown}"
