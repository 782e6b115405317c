"""Edit replies: SEARCH/REPLACE blocks applied to the code the prompt showed as current.

The one accepted edit format, besides a whole code block::

    <<<<<<< SEARCH
    lines copied from the current code
    =======
    the lines that replace them
    >>>>>>> REPLACE

Blocks may stand in a code fence and among prose (only the blocks are read). They apply in
order, each to the code the previous blocks produced. A SEARCH part must match exactly one
place: first exactly (whole lines), then, only if that finds nothing, ignoring differences of
whitespace inside and around lines; a tolerant match that is unique is applied, with the
replacement re-indented by the indentation difference when that difference is the same on
every line. A block that matches nothing or several places fails the whole reply (no partial
edit is ever built): the failure names the block and quotes the nearest lines of the code.

Pure functions on strings: no knowledge of models, builds or the loop. :func:`code_from_edits`
is what the lane calls: the code a reply's edits make, or the ``edit_failed`` rejection.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from symbiont._prompts import edit_error
from symbiont._validate._types import Rejection

_SEARCH = re.compile(r"^\s*<{5,9} ?SEARCH\s*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9} ?REPLACE\s*$")

# Nearest lines below this similarity are not worth quoting.
_NEAREST_MIN_RATIO = 0.4
_NEAREST_MAX_LINES = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class EditBlock:
    """One SEARCH/REPLACE block: the lines to find and the lines that replace them."""

    search: tuple[str, ...]
    replace: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class EditFailure:
    """Why the edits of a reply could not be applied.

    ``block`` is 1-based (0 for a reply whose blocks cannot be read: ``kind="malformed"``,
    ``problem`` says why); ``lines`` are the 1-based starting lines of every match of an
    ambiguous block; ``nearest`` quotes the closest lines of the code (verbatim, starting at
    line ``nearest_line``) for a block that matches nothing (``None`` when nothing is close).
    """

    kind: Literal["not_found", "ambiguous", "malformed"]
    block: int
    search: str = ""
    nearest: str | None = None
    nearest_line: int | None = None
    lines: tuple[int, ...] = ()
    problem: str = ""


def code_from_edits(reply: str, current: str | None) -> str | Rejection | None:
    """The code ``reply``'s edits make of ``current``, or the ``edit_failed`` rejection that
    says why they do not apply; ``None`` when the reply has no edit blocks or there is no
    current code to edit (the reply is then read as whole code)."""
    if current is None or not has_edits(reply):
        return None
    blocks = parse_edits(reply)
    edited = blocks if isinstance(blocks, EditFailure) else apply_edits(current, blocks)
    if isinstance(edited, str):
        return edited
    return rejection(edited)


def rejection(failure: EditFailure) -> Rejection:
    """``failure`` as facts: the one-line error, the SEARCH part, the nearest lines."""
    return Rejection(
        kind="edit_failed",
        error=edit_error(failure.kind, block=failure.block, matches=failure.lines,
                         malformed=failure.problem),
        message=failure.search,
        line=failure.nearest_line,
        excerpt=failure.nearest or "",
    )  # fmt: skip


def has_edits(reply: str) -> bool:
    """Whether ``reply`` contains at least one SEARCH marker line."""
    return any(_SEARCH.match(line) for line in reply.splitlines())


def parse_edits(reply: str) -> list[EditBlock] | EditFailure:
    """The blocks of ``reply``, in order; an :class:`EditFailure` when a block is unfinished,
    a marker is out of place, or a SEARCH part is empty."""
    blocks: list[EditBlock] = []
    state = "outside"
    search: list[str] = []
    replace: list[str] = []
    for line in reply.splitlines():
        if state == "outside":
            if _SEARCH.match(line):
                state, search, replace = "search", [], []
            elif _DIVIDER.match(line) or _REPLACE.match(line):
                return _malformed("a ======= or >>>>>>> REPLACE line stands outside any block")
        elif state == "search":
            if _DIVIDER.match(line):
                state = "replace"
            elif _SEARCH.match(line) or _REPLACE.match(line):
                return _malformed(f"block {len(blocks) + 1} has no ======= line after SEARCH")
            else:
                search.append(line)
        elif _REPLACE.match(line):
            trimmed = _trim_blank(search)
            if not trimmed:
                return _malformed(
                    f"block {len(blocks) + 1} has an empty SEARCH part (to replace all "
                    "the code, send the whole code instead)"
                )
            blocks.append(EditBlock(search=tuple(trimmed), replace=tuple(replace)))
            state = "outside"
        elif _SEARCH.match(line) or _DIVIDER.match(line):
            return _malformed(f"block {len(blocks) + 1} does not end with >>>>>>> REPLACE")
        else:
            replace.append(line)
    if state != "outside":
        return _malformed(f"block {len(blocks) + 1} does not end with >>>>>>> REPLACE")
    if not blocks:
        return _malformed("no complete SEARCH/REPLACE block was found")
    return blocks


def apply_edits(code: str, blocks: Sequence[EditBlock]) -> str | EditFailure:
    """``code`` with every block applied in order, or the first block that does not apply."""
    lines = code.splitlines()
    for number, block in enumerate(blocks, 1):
        applied = _apply_one(lines, block, number)
        if isinstance(applied, EditFailure):
            return applied
        lines = applied
    text = "\n".join(lines)
    return text + "\n" if code.endswith("\n") or not code else text


def _apply_one(lines: list[str], block: EditBlock, number: int) -> list[str] | EditFailure:
    search = list(block.search)
    size = len(search)
    exact = [i for i in range(len(lines) - size + 1) if lines[i : i + size] == search]
    if len(exact) == 1:
        start = exact[0]
        return [*lines[:start], *block.replace, *lines[start + size :]]
    if len(exact) > 1:
        return _ambiguous(block, number, exact)
    wanted = [_squash(line) for line in search]
    loose = [
        i
        for i in range(len(lines) - size + 1)
        if [_squash(line) for line in lines[i : i + size]] == wanted
    ]
    if len(loose) > 1:
        return _ambiguous(block, number, loose)
    if not loose:
        near = _nearest(lines, search)
        return EditFailure(
            kind="not_found", block=number, search="\n".join(search),
            nearest=near[1] if near else None, nearest_line=near[0] if near else None,
        )  # fmt: skip
    start = loose[0]
    replacement = _reindent(search, lines[start : start + size], list(block.replace))
    return [*lines[:start], *replacement, *lines[start + size :]]


def _squash(line: str) -> str:
    return " ".join(line.split())


def _trim_blank(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _reindent(search: list[str], found: list[str], replace: list[str]) -> list[str]:
    """``replace`` shifted by the indentation ``found`` has over ``search``, when that shift
    is one and the same prefix on every non-blank line (else ``replace`` unchanged)."""
    shifts = set()
    for wanted, actual in zip(search, found, strict=True):
        if not wanted.strip():
            continue
        have, want = _indent(actual), _indent(wanted)
        if have.endswith(want):
            shifts.add(("add", have[: len(have) - len(want)]))
        elif want.endswith(have):
            shifts.add(("cut", want[: len(want) - len(have)]))
        else:
            return replace
    if len(shifts) != 1:
        return replace
    (how, prefix), *_ = shifts
    if not prefix:
        return replace
    if how == "add":
        return [prefix + line if line.strip() else line for line in replace]
    return [line.removeprefix(prefix) for line in replace]


def _ambiguous(block: EditBlock, number: int, starts: list[int]) -> EditFailure:
    return EditFailure(
        kind="ambiguous", block=number, search="\n".join(block.search),
        lines=tuple(i + 1 for i in starts),
    )  # fmt: skip


def _nearest(lines: list[str], search: list[str]) -> tuple[int, str] | None:
    """The window of the code most like ``search`` (same number of lines) and its first line
    (1-based); verbatim, so that the model can copy it into its next SEARCH part."""
    if not lines:
        return None
    size = min(len(search), len(lines))
    wanted = "\n".join(_squash(line) for line in search)
    best, best_ratio = 0, 0.0
    for start in range(len(lines) - size + 1):
        window = "\n".join(_squash(line) for line in lines[start : start + size])
        ratio = difflib.SequenceMatcher(None, wanted, window, autojunk=False).ratio()
        if ratio > best_ratio:
            best, best_ratio = start, ratio
    if best_ratio < _NEAREST_MIN_RATIO:
        return None
    return best + 1, "\n".join(lines[best : best + min(size, _NEAREST_MAX_LINES)])


def _malformed(problem: str) -> EditFailure:
    return EditFailure(kind="malformed", block=0, problem=problem)
