"""The words the LLM reads about tools and edit replies, in one place.

Everything here is sent to the model (tool-loop notes, tool errors, the edit-format
instructions and the corrections for edits that do not apply); nothing here is parsed back.
It depends on nothing, so every layer may use it.
"""

from __future__ import annotations

# -- tools ---------------------------------------------------------------------------------


def tool_error(name: str, problem: str) -> str:
    """What the model sees when a call to tool ``name`` failed."""
    return f"error: the tool {name!r} failed: {problem}"


def tool_unknown(name: str, known: list[str]) -> str:
    return f"error: there is no tool {name!r}; the tools are: {', '.join(known) or 'none'}"


def tool_bad_arguments(name: str, problem: str) -> str:
    return f"error: the arguments for {name!r} are invalid: {problem}"


def tool_timed_out(name: str, seconds: float) -> str:
    return f"error: the tool {name!r} did not finish within {seconds:g} s and was abandoned"


def tool_result_cut(shown: int, total: int) -> str:
    return (
        f"\n[result cut: the first {shown:,} of {total:,} characters are shown; "
        "ask for less if you need the rest]"
    )


def tool_budget_spent(turns: int) -> str:
    """Sent as the result of calls the model made after its tool budget was spent."""
    return (
        f"error: no more tool calls: the budget of {turns} tool turns is spent. "
        "Answer now with the code."
    )


# -- edit replies --------------------------------------------------------------------------

EDIT_FORMAT = """\
Instead of the whole code you may reply with edits to the current code, one or more blocks:

<<<<<<< SEARCH
lines copied exactly from the current code
=======
the lines that replace them
>>>>>>> REPLACE

Edits always apply to the current code shown above, not to your earlier replies. Each SEARCH
part must match exactly one place in it (copy enough lines to make it unique); blocks apply in
order, each to the code the previous ones produced."""


EDIT_FAILED = "Your edits could not be applied to the current code; nothing was built."


def edit_not_found(block: int, search: str, nearest: str | None, line: int | None) -> str:
    near = ""
    if nearest:
        near = (
            f"\nThe closest lines of the current code (from line {line}):\n```rust\n{nearest}\n```"
        )
    return (
        f"Edit block {block} did not apply: its SEARCH part matches nothing in the current "
        f"code:\n```\n{search}\n```{near}\nCopy the lines exactly, or send the whole code."
    )


def edit_ambiguous(block: int, search: str, lines: list[int]) -> str:
    where = ", ".join(str(n) for n in lines)
    return (
        f"Edit block {block} did not apply: its SEARCH part matches {len(lines)} places "
        f"(starting at lines {where} of the current code):\n```\n{search}\n```\n"
        "Include more surrounding lines so that it matches exactly one place."
    )


def edit_malformed(problem: str) -> str:
    return (
        f"Your edit blocks could not be read: {problem}. Use the SEARCH/REPLACE form exactly "
        "(the markers on lines of their own), or send the whole code in one ```rust block."
    )


# -- built-in tools (symbiont.tools) ---------------------------------------------------------


def draft_passed(score: float | None, checked: bool) -> str:
    if not checked:
        return "The draft compiles. (No check was given, so nothing else was run.)"
    shown = "" if score is None else f" Its score: {score:.6g}."
    return f"The draft compiles and passes the check.{shown} Answer with it when you are done."


def draft_failed(kind: str, feedback: str) -> str:
    return f"The draft fails ({kind}):\n{feedback}"
