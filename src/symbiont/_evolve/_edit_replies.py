"""Edit replies in the loop: a reply made of SEARCH/REPLACE blocks becomes the whole code.

The lane calls :func:`code_from_edits` before validating a reply, when edits are on and the
prompt showed the current code; the parsing and applying live in the validation layer
(:mod:`symbiont._validate._edits`), the wording of a failed edit in :mod:`symbiont._llm_wording`.
"""

from __future__ import annotations

from symbiont import _llm_wording as wording
from symbiont._validate import Rejection
from symbiont._validate._edits import EditFailure, apply_edits, has_edits, parse_edits


def code_from_edits(reply: str, current: str | None) -> str | Rejection | None:
    """The code ``reply``'s edits make of ``current``; ``None`` when the reply has no edit
    blocks (or there is no current code to edit): it is then read as a whole-code reply."""
    if current is None or not has_edits(reply):
        return None
    blocks = parse_edits(reply)
    edited = blocks if isinstance(blocks, EditFailure) else apply_edits(current, blocks)
    if isinstance(edited, str):
        return edited
    return Rejection(kind="edit_failed", message=_message(edited))


def _message(failure: EditFailure) -> str:
    if failure.kind == "malformed":
        return wording.edit_malformed(failure.problem)
    if failure.kind == "ambiguous":
        return wording.edit_ambiguous(failure.block, failure.search, list(failure.lines))
    return wording.edit_not_found(
        failure.block, failure.search, failure.nearest, failure.nearest_line
    )
