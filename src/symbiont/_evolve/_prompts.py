"""The messages of a lane: system rules, the base prompt, and one correction per failure kind."""

from __future__ import annotations

from collections.abc import Sequence

from symbiont._agents import Message
from symbiont._decl import Declarations
from symbiont._evolve._trace import Failure

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


def base_prompt(
    decls: Declarations,
    task: str,
    *,
    current: str | None = None,
    revision: int | None = None,
    functions: Sequence[str] | None = None,
) -> str:
    """The first user message of a lane: the task, the prelude, the signatures and the code
    of the active revision (when it has real bodies). With ``functions``, ``decls`` holds only
    those and the model is told that the rest of the code is kept."""
    parts = [f"Task: {task.strip()}"]
    if decls.prelude.strip():
        parts.append(f"Prelude (already defined):\n```rust\n{decls.prelude.rstrip()}\n```")
    parts.append(f"Functions to implement:\n```rust\n{decls.signatures_text}\n```")
    # Shown unless every function is still the generated stub: one stub among real bodies must
    # not hide the others (the model has to keep them).
    stubs = [
        f.name for f in decls.functions if f"`{f.name}` has no default body yet" in (current or "")
    ]
    if current and (functions or len(stubs) < len(decls.functions)):
        label = f"revision {revision}" if revision is not None else "current"
        shown = f"Current implementation ({label}):\n```rust\n{current.rstrip()}\n```"
        if stubs:
            names = ", ".join(f"`{n}`" for n in stubs)
            shown += f"\n{names}: not implemented yet (the body above is a placeholder)."
        parts.append(shown)
    if functions:
        names = ", ".join(f"`{n}`" for n in functions)
        parts.append(
            f"Write only {names} (and any helpers they need); every other function is kept "
            "as it is in the current implementation."
        )
    return "\n\n".join(parts)


def base_messages(prompt: str) -> list[Message]:
    return [Message(role="system", content=SYSTEM), Message(role="user", content=prompt)]


_HEADERS = {
    "no_code": "Your answer contains no Rust code I can use.",
    "parse_error": "Your code does not parse as Rust.",
    "signature_mismatch": "Your functions do not match the declared signatures.",
    "forbidden": "Your code uses constructs that are not allowed here.",
    "compile_error": "Your code does not compile.",
    "build_timeout": "Compiling your code took too long.",
    "load_error": "Your code compiled but the library could not be loaded.",
    "panic": "Your code compiled, but it panicked when called.",
    "check_failed": "Your code compiled, but it failed the check.",
    "timeout": "Your code compiled, but a call did not finish in time.",
    "crash": "Your code compiled, but running it crashed the process.",
    "repeat": "You repeated code that was already rejected.",
}


def correction(failure: Failure, *, attempt: int, max_attempts: int, cut_off: bool = False) -> str:
    """The user message that answers a failed attempt, in the same conversation."""
    head = f"Attempt {attempt} of {max_attempts} failed. {_HEADERS[failure.kind]}"
    body = failure.feedback.strip()
    tail = "Send the complete corrected code in one ```rust block."
    if cut_off:
        tail = (
            "Your reply was cut off at the length limit: keep the explanation short and send "
            "the complete code in one ```rust block."
        )
    return f"{head}\n\n{body}\n\n{tail}"


def repeat_note(failure: Failure) -> str:
    """Appended to the base prompt when a lane restarts because the model repeated itself."""
    return (
        "\n\nNote: an earlier answer to this task was rejected, and it was then sent again "
        f"unchanged. It failed with: {failure.summary}. Do not repeat it: write a different "
        "implementation."
    )
