"""The failure record of a candidate: facts, not prose.

A candidate that does not make it (no code, edits that do not apply, a parse error, a wrong
signature, a forbidden construct, a compile error, a panic, a timeout, a crash...) is data,
not an exception. Every layer that finds such a failure fills in a :class:`Failure` with what
it knows; how it is worded for the LLM, for logs and for the user is decided in one place,
``_prompts.py``.

This module sits at the bottom of the layers (next to ``_errors``) so that validation,
the runtime, isolation, the lane and the errors all carry the same typed record.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal, get_args

from symbiont import _prompts

if TYPE_CHECKING:
    from symbiont._errors import CrashError

FailureKind = Literal[
    "no_code",
    "parse_error",
    "signature_mismatch",
    "forbidden",
    "compile_error",
    "build_timeout",
    "load_error",
    "panic",
    "check_failed",
    "timeout",
    "crash",
    "repeat",
    "edit_failed",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """Why a candidate failed.

    - ``message``: the error itself, one line ("unexpected `=`", "attempt to divide by zero").
    - ``line`` / ``column``: 1-based, in the code the LLM wrote (None when unknown).
    - ``excerpt``: that line of the code with a caret under the column (``edit_failed``: the
      lines of the current code closest to a SEARCH part that matches nothing, verbatim,
      starting at ``line``).
    - ``details``: the complete report of the layer that found it (every parse or compiler
      error, every mismatched function, the check's message; ``edit_failed``: the SEARCH part
      that did not apply), without instructions.
    - ``expected`` / ``got``: the declared and written signatures (``signature_mismatch``), the
      signatures to define (``no_code``).
    - ``construct``: the forbidden construct or path (``forbidden``).
    - ``function``: the declared function that was called (``panic``, ``timeout``).
    - ``crash``: the :class:`~symbiont.CrashError` of a ``crash``.

    ``summary`` is one line for logs and errors; ``feedback`` is what the LLM is told.
    """

    kind: FailureKind
    message: str
    line: int | None = None
    column: int | None = None
    excerpt: str = ""
    details: str = ""
    expected: str | None = None
    got: str | None = None
    construct: str | None = None
    function: str | None = None
    crash: CrashError | None = None

    @property
    def summary(self) -> str:
        """One line naming the error and where it is."""
        return _prompts.summary(self)

    @property
    def feedback(self) -> str:
        """What the LLM is told about this failure (without the attempt count or the ask)."""
        return _prompts.feedback(self)


# The facts a store keeps: every field but the CrashError (its text is in ``message``).
_STORED = tuple(f.name for f in fields(Failure) if f.name != "crash")


def to_facts(failure: Failure) -> dict[str, Any]:
    """``failure`` as plain JSON values, for a record on disk."""
    return {name: getattr(failure, name) for name in _STORED}


def from_facts(facts: dict[str, Any]) -> Failure | None:
    """The failure :func:`to_facts` stored (None for a record this version cannot read)."""
    if facts.get("kind") not in get_args(FailureKind) or not isinstance(facts.get("message"), str):
        return None
    return Failure(**{k: v for k, v in facts.items() if k in _STORED})
