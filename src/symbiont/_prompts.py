"""Every word the LLM reads that symbiont writes: the system rules, the base prompt, a search
round's prompt (:func:`default_prompt`, public as ``symbiont.default_prompt``), the edit-reply
format, the correction for each failure kind, the note after a repeat, the local base model's
completion prompt, the tool loop's notes and errors, the built-in tools' descriptions and
answers, and the one-line summary of a failure for logs and errors. Which current code a prompt
shows (:func:`shown_current`) is decided here too, once for every prompt and for edit replies.

Layers report failures as facts (:class:`~symbiont._failures.Failure`); this module alone turns
them into sentences. It sits at the bottom of the layers, next to ``_failures``, and takes plain
values (strings, a Failure, a PromptContext made of them), so any layer may use it while
imports keep pointing down.
Reports produced by other tools or checks (rustc's diagnostics, a check's exception message) are
quoted as given, in ``Failure.details``; the reason the policy gives for each forbidden construct
is written here too (the section at the end).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from symbiont._failures import Failure, FailureKind

SYSTEM = """\
You write Rust functions that are compiled with rustc (edition 2021, standard library only, \
no crates) into a shared library and called from Python.

Rules:
- Answer with one ```rust code block that defines every requested function with exactly the \
given signature. Parameter names may differ; types, order and return type may not.
- Helper functions, structs, impls and consts are welcome. Do not write `fn main` or tests.
- The prelude's items are already defined: use them, do not redefine them.
- Standard library only. No `unsafe`, no `static` items, no `thread_local!`, no \
`macro_rules!`, no `extern` blocks, no `#[no_mangle]`; do not use std::process, std::thread, \
std::fs, std::net, std::env, std::os or stdin.
- Keep the code complete and compilable: every brace closed, no placeholders."""


# A function whose whole body is a placeholder macro: the generated default of a function
# declared without a body, or one the user left to be written.
_PLACEHOLDER = re.compile(r"\bfn\s+(\w+)\s*\([^{]*\{\s*(?:unimplemented|todo)!\s*\(")


def placeholders(code: str, names: Sequence[str]) -> list[str]:
    """The functions among ``names`` whose body in ``code`` is only a placeholder
    (``unimplemented!(...)``, ``todo!(...)``), in the order of ``names``."""
    found = set(_PLACEHOLDER.findall(code))
    return [n for n in names if n in found]


def shown_current(code: str | None, names: Sequence[str], *, partial: bool = False) -> str | None:
    """The current code as the LLM is shown it, or None when there is nothing worth showing:
    no code, or every declared function (``names``) still a placeholder. One placeholder among
    real bodies does not hide the others (the model has to keep them); with ``partial`` (the
    model rewrites only some functions) the code is shown whenever there is some.

    The one rule for every prompt: whatever it returns is also what edit replies apply to."""
    if not code or not code.strip():
        return None
    if partial or len(placeholders(code, names)) < len(names):
        return code
    return None


def _functions_only(functions: Sequence[str], where: str = "the current implementation") -> str:
    names = ", ".join(f"`{n}`" for n in functions)
    return (
        f"Write only {names} (and any helpers they need); every other function is kept as it "
        f"is in {where}."
    )


def base_prompt(
    task: str,
    *,
    signatures: str,
    prelude: str = "",
    current: str | None = None,
    revision: int | None = None,
    edits: bool = False,
    names: Sequence[str] = (),
    functions: Sequence[str] | None = None,
) -> str:
    """The first user message of a lane: the task, the prelude, the signatures and
    ``current``, the code the lane starts from as :func:`shown_current` returned it (the
    functions among ``names`` that are still placeholders are named), then, with ``edits``,
    the edit-reply format (only when there is current code to edit). With ``functions``,
    ``signatures`` holds only those and the model is told that the rest is kept."""
    parts = [f"Task: {task.strip()}"]
    if prelude.strip():
        parts.append(f"Prelude (already defined):\n```rust\n{prelude.rstrip()}\n```")
    parts.append(f"Functions to implement:\n```rust\n{signatures}\n```")
    if current:
        label = f"revision {revision}" if revision is not None else "current"
        shown = f"Current implementation ({label}):\n```rust\n{current.rstrip()}\n```"
        stubs = placeholders(current, names)
        if stubs:
            listed = ", ".join(f"`{n}`" for n in stubs)
            shown += f"\n{listed}: not implemented yet (the body above is a placeholder)."
        parts.append(shown)
    if functions:
        parts.append(_functions_only(functions))
    if current and edits:
        parts.append(EDIT_FORMAT)
    return "\n\n".join(parts)


# ---------------------------------------------------------------------- search rounds


@dataclass(frozen=True, slots=True, kw_only=True)
class Shown:
    """A revision of a search run as a prompt shows it."""

    revision: int
    code: str
    score: float | None
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptContext:
    """What a search prompt builder (``search(prompt=callable)``) receives for one lane.

    ``objective`` names the score and ``maximize`` its direction; ``parent`` is the revision
    the lane improves (``best`` may be the same; with edit replies on, edits apply to the
    parent's code); ``last`` the previous round's outcome as one line (None in round 1);
    ``failures`` recent failure lines; ``feedback`` the evaluator's text for the parent;
    ``hint`` the strategy's hint for the lane; ``functions`` the declared functions the lane
    rewrites (None: all of them; the others are kept from the parent); ``placeholders`` the
    declared functions still without a real body in the parent's code; ``edits`` says that
    SEARCH/REPLACE edits of the parent's code are accepted as replies (a builder that wants
    them explains the format, as the default prompt does).
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
    placeholders: tuple[str, ...] = ()
    edits: bool = False


def _metrics(shown: Shown, objective: str) -> str:
    parts = [] if shown.score is None else [f"{objective}={shown.score:.6g}"]
    parts += [f"{k}={v:.6g}" for k, v in sorted(shown.metrics.items()) if k != objective]
    return ", ".join(parts) if parts else "not scored"


def _revision_block(title: str, shown: Shown, objective: str) -> str:
    return (
        f"{title} (revision {shown.revision}, {_metrics(shown, objective)}):\n"
        f"```rust\n{shown.code.rstrip()}\n```"
    )


def default_prompt(ctx: PromptContext) -> str:
    """The first user message of a search lane. Its parts, in this order (stable parts first,
    so a provider's prompt-prefix cache covers as much as possible; what changes from round
    to round comes last):

    1. the task; 2. the prelude and the functions to implement (and, with edit replies on,
    their format); 3. the best code so far with its score and metrics; 4. a few other good or
    diverse candidates ("inspirations"); 5. the frontier, when several objectives are
    searched; 6. the parent this lane starts from (when it is not the best), and the functions
    still placeholders in it; 7. the last attempt and its result; 8. recent failures, one line
    each; 9. the evaluator's feedback; 10. the lane's strategy hint and what to do.

    Replace it with ``search(prompt=callable)``; a builder may call it and add to its text.
    """
    direction = "higher" if ctx.maximize else "lower"
    parts = [f"Task: {ctx.task.strip()}"]
    if ctx.prelude.strip():
        parts.append(f"Prelude (already defined):\n```rust\n{ctx.prelude.rstrip()}\n```")
    parts.append(f"Functions to implement:\n```rust\n{ctx.signatures}\n```")
    parts.append(f"Candidates are scored by `{ctx.objective}`: {direction} is better.")
    if ctx.edits:
        parts.append(SEARCH_EDIT_FORMAT)  # stable: before every part that changes by round
    if ctx.best is not None:
        parts.append(_revision_block("Best code so far", ctx.best, ctx.objective))
    for shown in ctx.inspirations:
        parts.append(_revision_block("Another candidate, for ideas", shown, ctx.objective))
    if ctx.frontier:
        lines = [f"- revision {s.revision}: {_metrics(s, ctx.objective)}" for s in ctx.frontier]
        parts.append(
            "Trade-off frontier (no candidate beats these on every metric):\n" + "\n".join(lines)
        )
    if ctx.best is None or ctx.parent.revision != ctx.best.revision:
        parts.append(_revision_block("Start from this code", ctx.parent, ctx.objective))
    if ctx.placeholders:
        listed = ", ".join(f"`{n}`" for n in ctx.placeholders)
        parts.append(f"{listed}: not implemented yet (the body is a placeholder).")
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
        ask += " " + _functions_only(ctx.functions, f"revision {ctx.parent.revision}")
    if ctx.hint:
        ask += f" Strategy for this attempt: {ctx.hint.strip()}"
    parts.append(ask)
    return "\n\n".join(parts)


def round_outcome(
    round: int, revision: int | None, score: float | None, failure: str | None
) -> str:
    """The previous round's outcome in one line, for the next round's prompt."""
    if revision is None:
        return f"round {round} produced no working candidate ({failure or 'no reply'})"
    shown = "not scored" if score is None else f"score {score:.6g}"
    return f"round {round} produced revision {revision}, {shown}"


def failure_line(round: int, lane: int, failure: Failure) -> str:
    """One recent failure, for the next round's prompt."""
    return f"round {round} lane {lane}: {summary(failure)}"


# ---------------------------------------------------------------------- edit replies


def _edit_format(target: str, where: str) -> str:
    return f"""\
Instead of the whole code you may reply with edits to {target}, one or more blocks:

<<<<<<< SEARCH
lines copied exactly from {target}
=======
the lines that replace them
>>>>>>> REPLACE

Edits always apply to {where}, not to your earlier replies. Each SEARCH
part must match exactly one place in it (copy enough lines to make it unique); blocks apply in
order, each to the code the previous ones produced."""


EDIT_FORMAT = _edit_format("the current code", "the current code shown above")

# A search round's prompt shows several revisions: the edits name the one the lane starts from.
SEARCH_EDIT_FORMAT = _edit_format(
    "the code this round starts from",
    "that code (the best code so far, or the code given to start from)",
)


def edit_error(
    problem: str, *, block: int = 0, matches: tuple[int, ...] = (), malformed: str = ""
) -> str:
    """The one-line message of an ``edit_failed`` failure: ``problem`` is ``"not_found"``,
    ``"ambiguous"`` (``matches``: the 1-based first lines of every match) or ``"malformed"``
    (``malformed`` says what is wrong with the blocks)."""
    if problem == "malformed":
        return f"the edit blocks cannot be read: {malformed}"
    if problem == "ambiguous":
        where = ", ".join(str(n) for n in matches)
        return f"the SEARCH part of block {block} matches {len(matches)} places (lines {where})"
    return f"the SEARCH part of block {block} matches nothing in the current code"


# ---------------------------------------------------------------------- failures

_LABELS: dict[FailureKind, str] = {
    "no_code": "no code",
    "parse_error": "parse error",
    "signature_mismatch": "signature mismatch",
    "forbidden": "forbidden construct",
    "compile_error": "compile error",
    "build_timeout": "build timeout",
    "load_error": "load error",
    "panic": "panic",
    "check_failed": "check failed",
    "timeout": "timeout",
    "crash": "crash",
    "repeat": "repeated rejected code",
    "edit_failed": "edit not applied",
}

_SUMMARY_CHARS = 200


def summary(failure: Failure) -> str:
    """One line for logs, errors and progress output: the kind, where, and the error itself,
    e.g. ``parse error on line 3: unexpected `=```."""
    where = f" in `{failure.function}`" if failure.function else ""
    if failure.line is not None:
        # An edit that matched nothing is located by the closest lines, not by an error.
        where += f" {'near' if failure.kind == 'edit_failed' else 'on'} line {failure.line}"
    message = " ".join(failure.message.split()) or "(no message)"
    text = f"{_LABELS[failure.kind]}{where}: {message}"
    return text if len(text) <= _SUMMARY_CHARS else text[: _SUMMARY_CHARS - 3] + "..."


def _at(failure: Failure) -> str:
    if failure.line is None:
        return ""
    column = f", column {failure.column}" if failure.column else ""
    return f" at line {failure.line}{column}"


def _block(text: str) -> str:
    return f"\n\n{text.strip()}" if text.strip() else ""


def feedback(failure: Failure) -> str:
    """What the LLM is told about ``failure``: what went wrong, where, and the report."""
    f = failure
    details = _block(f.details)
    excerpt = f"\n{f.excerpt}" if f.excerpt else ""
    match f.kind:
        case "no_code":
            said = f" ({f.message})" if f.message else ""
            return (
                f"Your reply contains no Rust code I can use{said}. Define these functions "
                "with exactly these signatures (helper functions and types are allowed):"
                f"\n\n```rust\n{f.expected or ''}\n```"
            )
        case "parse_error":
            return (
                f"Your code does not parse as Rust (first error on line {f.line}).{details}\n\n"
                "Every item must be finished, and braces, brackets and parentheses balanced."
            )
        case "signature_mismatch":
            return (
                f"Your functions do not match the declared signatures.{details}\n\n"
                "Keep the declared signatures exactly; only parameter names may differ."
            )
        case "forbidden":
            first = f" (first: `{f.construct}` on line {f.line})" if f.construct else ""
            return f"Your code uses constructs that are not allowed here{first}:{details}"
        case "compile_error":
            return f"Your code does not compile.{details or _block(f.message)}"
        case "build_timeout":
            return f"Compiling your code took too long: {f.message}.{details}"
        case "load_error":
            return f"Your code compiled, but the library could not be loaded: {f.message}"
        case "panic":
            return (
                f"Your code compiled, but calling `{f.function}` panicked{_at(f)}: "
                f"{f.message}{excerpt}"
            )
        case "check_failed":
            return f"Your code compiled, but it failed the check:{details or _block(f.message)}"
        case "timeout":
            return f"Your code compiled, but a call did not finish in time: {f.message}{details}"
        case "crash":
            printed = f"\n\nThe process printed:\n{f.details.strip()}" if f.details.strip() else ""
            return (
                f"Your code compiled, but running it crashed the evaluation process: "
                f"{f.message}.{printed}\n\n"
                "Avoid unbounded allocation, recursion and anything that aborts the process."
            )
        case "repeat":
            return f"You sent again code that was already rejected: {f.message}"
        case "edit_failed":
            search = f.details.strip("\n")
            quoted = f"\n\nIts SEARCH part:\n```\n{search}\n```" if search.strip() else ""
            near = ""
            if f.excerpt:
                near = (
                    f"\n\nThe closest lines of the current code (from line {f.line}):"
                    f"\n```rust\n{f.excerpt}\n```"
                )
            return (
                "Your edits could not be applied to the current code, so nothing was built: "
                f"{f.message}.{quoted}{near}\n\n"
                "Write each block as SEARCH, =======, REPLACE with the markers on lines of their "
                "own, and copy the SEARCH lines exactly from the current code, with enough of "
                "them to match one place."
            )
    raise AssertionError(f"unknown failure kind {f.kind!r}")  # pragma: no cover


FEEDBACK_LIMIT = 8_000
"""Characters of one evaluator or check text kept (for the prompt and the store): a 10 MB
feedback went into every later prompt whole and grew the store by that much per evaluation."""


def clipped(text: str, limit: int = FEEDBACK_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... {len(text) - limit:,} more characters not shown]"


def reply_too_long(chars: int, limit: int) -> str:
    """The ``no_code`` message for a reply too long to read."""
    return f"your reply is {chars:,} characters long; replies longer than {limit:,} are not read"


def correction(
    failure: Failure,
    *,
    attempt: int,
    max_attempts: int,
    cut_off: bool = False,
    edits: bool = False,
) -> str:
    """The user message that answers a failed attempt, in the same conversation: the failure,
    then one request for the code (or, with ``edits``, for edits to the current code)."""
    ask = "Send the complete corrected code in one ```rust block"
    if cut_off:
        ask = (
            "Your reply was cut off at the length limit: keep the explanation short and send "
            "the complete code in one ```rust block"
        )
    ask += ", or SEARCH/REPLACE edits to the current code." if edits else "."
    return f"Attempt {attempt} of {max_attempts} failed. {feedback(failure)}\n\n{ask}"


def repeat_note(failure: Failure) -> str:
    """Appended to the base prompt when a lane restarts because the model repeated itself."""
    return (
        "\n\nNote: an earlier answer to this task was rejected, and it was then sent again "
        f"unchanged. It failed with: {summary(failure)}. Do not repeat it: write a different "
        "implementation."
    )


# ---------------------------------------------------------------------- tools


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


def call_tool_description(signatures: str, timeout: float) -> str:
    """The description of ``symbiont.tools.call``'s tool."""
    return (
        "Call the current implementation of one of these Rust functions on arguments of "
        f"your choice and see what it returns:\n{signatures}\nEach call may run {timeout:g} s."
    )


CALL_TOOL_FUNCTION = "the function to call"
CALL_TOOL_ARGUMENTS = "its arguments in order (slices as JSON lists)"

TRY_CODE_TOOL = (
    "Compile a draft of the code and run the checks on it, without submitting it. Returns the "
    "compiler errors or check failures, or that the draft passes. Your final answer must still "
    "contain the code."
)
TRY_CODE_CODE = "the complete Rust code"


def draft_passed(score: float | None, checked: bool) -> str:
    """``symbiont.tools.try_code``'s answer for a draft that passed."""
    if not checked:
        return "The draft compiles. (No check was given, so nothing else was run.)"
    shown = "" if score is None else f" Its score: {score:.6g}."
    return f"The draft compiles and passes the check.{shown} Answer with it when you are done."


def draft_failed(failure: Failure) -> str:
    """``symbiont.tools.try_code``'s answer for a draft that failed."""
    return f"The draft fails ({_LABELS[failure.kind]}):\n{feedback(failure)}"


# ---------------------------------------------------------------------- base models

_FENCE = re.compile(r"^\s*(```|~~~)[\w+-]*\s*$")

# Worked examples of the prompt's shape: tiny base models copy patterns far better than they
# follow instructions. Three kinds of edit: a return value, an in-place update, a new branch.
_EXAMPLE = """\
// Task: Change `double` so that it returns three times `x` instead of two times.
// Previous version:
//     fn double(x: u64) -> u64 {
//         x * 2
//     }
fn double(x: u64) -> u64 {
    x * 3
}

// Task: Change `tick` so that it subtracts 2 from the total instead of adding 1.
// Previous version:
//     fn tick(total: &mut i32) {
//         *total += 1;
//     }
fn tick(total: &mut i32) {
    *total -= 2;
}

// Task: Change `label` so that it returns "even" for even numbers and "odd" otherwise.
// Previous version:
//     fn label(n: u32) -> String {
//         n.to_string()
//     }
fn label(n: u32) -> String {
    if n % 2 == 0 {
        "even".to_string()
    } else {
        "odd".to_string()
    }
}
"""


def _commented(text: str, indent: str = "", limit: int = 40) -> list[str]:
    lines = [f"//{' ' if line or indent else ''}{indent}{line}".rstrip()
             for line in text.strip().splitlines() if not _FENCE.match(line)]  # fmt: skip
    return lines if len(lines) <= limit else [*lines[: limit - 1], "// ..."]


def completion_prompt(
    *,
    task: str,
    prelude: str = "",
    current: str | None = None,
    rejected: str | None = None,
    failure: Failure | None = None,
) -> str:
    """A Rust file for a base model, in the shape of the worked examples above: the prelude as
    code, then the task, the previous version and the last rejected attempt with what was wrong
    with it as comments; the grammar then forces the declared signature."""
    lines = ["// Rust 2021, standard library only.", "", _EXAMPLE]
    if prelude.strip():
        lines += [prelude.rstrip(), ""]
    task_lines = _commented(task)
    if task_lines:
        task_lines[0] = task_lines[0].replace("// ", "// Task: ", 1)
    lines += task_lines
    if current:
        # Doc comments stay out: the worked examples have none, and the model copies shape.
        code = "\n".join(x for x in current.splitlines() if not x.lstrip().startswith("///"))
        lines += ["// Previous version:", *_commented(code, indent="    ")]
    if rejected is not None and failure is not None:
        lines += ["// Rejected attempt:", *_commented(rejected, indent="    ")]
        lines += ["// It was rejected because:", *_commented(feedback(failure), limit=20)]
    return "\n".join(lines) + "\n"


# -- why the policy refuses a construct: the reason in a forbidden construct's feedback line

EXPORT_WHY = (
    "it exports or overrides a linker symbol of the library. Remove it: symbiont exports the "
    "declared functions itself"
)
HOOK_WHY = (
    "it overrides a runtime hook of the host process. Remove it: the host's allocator, panic "
    "handling and entry point stay as they are"
)
SECTION_WHY = (
    "it places code or data in a link section of the library, which the loader may act on "
    "(`.init_array` runs code when the library is loaded, before any check). Remove it: "
    "constants and functions need no section of their own"
)
FILE_WHY = (
    "it makes the compiler read a file of the build machine. Write the module inline "
    "(`mod name { ... }`) or put its items at the top level"
)
ASM_WHY = (
    "it puts raw machine code into the library, which can run when the library is loaded, "
    "before any check. Write the function in Rust"
)
PATH_REASONS = {
    "std::process": "`std::process` exits the host Python process or starts programs",
    "std::thread": "`std::thread` spawns or blocks threads inside the host process",
    "std::fs": "`std::fs` reads or writes files",
    "std::net": "`std::net` opens network connections",
    "std::env": "`std::env` reads the host's environment and command line",
    "std::os": "`std::os` reaches operating-system interfaces",
    "std::io::stdin": "standard input belongs to the host process",
    "std::io::Stdin": "standard input belongs to the host process",
    # `Path::read_dir`, `exists` and `metadata` query the file system without naming `std::fs`,
    # and a panic message would carry what they find back to the LLM.
    "std::path": "`std::path` queries the host's file system (`read_dir`, `exists`, `metadata`)",
    "std::backtrace": "`std::backtrace` shows the host process's files and memory layout",
    "std::alloc::handle_alloc_error": "`handle_alloc_error` aborts the host Python process",
}
GLUE_WHY = "it names symbiont's internal glue, which candidate code must not use. Remove it"
UNSAFE_WHY = (
    "the code runs inside the Python process, where undefined behaviour crashes or corrupts it. "
    "Write safe Rust: slices, indexing, iterators and `std` collections cover what these "
    "functions need"
)
LIFETIMES_WHY = (
    "a type that ties one lifetime to another (`&'a &'b T`, `Type<'a, &'b T>`, `'b: 'a`) is "
    "the shape of a known compiler soundness bug that lets safe code keep references to freed "
    "memory, which crashes the host. Use one lifetime for related references, or owned values"
)
STATE_WHY = (
    "global state outlives a call and is shared by every caller and revision. Use a `const` for "
    "constant data, and keep state in local variables and parameters"
)
NAKED_WHY = (
    "a naked function is raw machine code the compiler does not check, and can be placed "
    "where the loader runs it. Remove it and write an ordinary Rust function"
)
TARGET_FEATURE_WHY = (
    "it lets the compiler use instructions this machine's CPU may not have, and the host "
    "process dies when one runs. Remove it: write portable Rust and let the optimiser "
    "vectorise it"
)
VISUALIZER_WHY = (
    "it makes the compiler read a file of the build machine into the library. Remove it"
)
CRATE_ATTRIBUTE_WHY = (
    "the code is included into a crate that symbiont generates, so crate-level attributes "
    "cannot be set. Remove it"
)
EXTERN_BLOCK_WHY = "it links foreign functions, and only Rust and `std` are available. Remove it"
EXTERN_CRATE_WHY = "`std` is already in scope and no other crate is available. Remove it"
MACRO_RULES_WHY = "macro definitions are not accepted here. Write a helper function instead"


def hook_why(hook: str) -> str:
    return (
        f"`{hook}` changes the host's panic handling, which symbiont uses to catch "
        "and report panics. Remove it: a panic in your code is reported back to you"
    )


def catcher_why(catcher: str) -> str:
    return (
        f"`{catcher}` would swallow the unwinding symbiont uses to stop a call at its "
        "deadline. Remove it: a panic in your code is reported back to you"
    )


def path_why(rule: str) -> str:
    reason = PATH_REASONS.get(rule, f"this runtime's policy denies `{rule}`")
    return f"{reason}. Compute the result from the arguments alone and remove this use"


def macro_why(name: str, *, build_machine: bool) -> str:
    if build_machine:
        return (
            "it reads files or environment variables of the build machine at compile time. "
            "Write the data into the code or compute it"
        )
    return f"this runtime's policy denies `{name}!`. Remove it"


def refusal(line: int, what: str, why: str) -> str:
    """One forbidden construct's feedback line."""
    return f"line {line}: {what} is not allowed: {why}."
