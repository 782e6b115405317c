"""Source positions: a text addressed the way the compiler addresses it, and the map between
the code the LLM wrote and the copy that was compiled.

The compiled copy differs from the written code in two ways. Guards are inserted on existing
lines (see codegen's ``_guards.py``), so columns after an insertion shift. And the cache may
hand back a library built earlier from the same tokens in another layout, so a panic reports a
place in that layout. Both are the same thing seen from here: the compiled text shares runs of
bytes with the written text, and everything between the runs is not the LLM's. A
:class:`SourceMap` records those runs; every position shown to the LLM or the user goes
through one.

Positions come in the units their producer uses (checked against rustc 1.95's output; the
tests in ``tests/decl/test_sourcemap.py`` compile real code to keep them honest):

- rustc's JSON spans: ``byte_start``/``byte_end`` are UTF-8 byte offsets into the file as it
  is on disk (a CRLF counts two bytes); ``line_start``/``column_start`` are 1-based and columns
  count characters (Unicode scalar values: a tab, a CJK character and an emoji count one each,
  so they are not UTF-16 units). Places named inside messages (``{closure@candidate.rs:2:25:
  2:32}``) use the same character columns.
- a panic's ``Location::column``: 1-based *display* columns, as rustc draws source: a tab counts
  four, a wide (East Asian) character or emoji two, a combining mark or zero-width character
  none.
- tree-sitter: 0-based rows and byte columns.

Python strings index characters, so a character column is an index into the line's ``str``.
What symbiont reports (``Diagnostic.column``, ``PanicError.column``, ``Failure.column``) is a
1-based character column in the code the LLM wrote.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from symbiont._decl import _syntax as syn

Unit = Literal["byte", "char", "display"]
"""How a column counts: UTF-8 bytes, characters, or display cells (see the module docstring)."""


def char_width(ch: str) -> int:
    """Display cells of one character, as rustc counts them for panic columns and excerpts."""
    if ch == "\t":
        return 4
    if ch == "\u00ad":  # the soft hyphen is drawn
        return 1
    if unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    return sum(char_width(ch) for ch in text)


@dataclass(frozen=True, slots=True)
class SourceText:
    """A source file addressed by UTF-8 byte offset, as rustc addresses files, with the lines
    and columns (in any :data:`Unit`) of each offset."""

    text: str
    data: bytes = field(init=False, repr=False, compare=False)
    starts: tuple[int, ...] = field(init=False, repr=False, compare=False)
    """Byte offset where each line starts."""

    def __post_init__(self) -> None:
        data = self.text.encode("utf-8")
        starts = [0]
        pos = data.find(b"\n")
        while pos >= 0:
            starts.append(pos + 1)
            pos = data.find(b"\n", pos + 1)
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "starts", tuple(starts))

    def clamp(self, offset: int) -> int:
        return max(0, min(offset, len(self.data)))

    def line_end(self, index: int) -> int:
        """Byte offset of the end of line ``index`` (0-based), before its ``\\n``."""
        if index + 1 < len(self.starts):
            return self.starts[index + 1] - 1
        return len(self.data)

    def line(self, number: int) -> str | None:
        """Line ``number`` (1-based) without its line ending (``\\n`` or ``\\r\\n``)."""
        index = number - 1
        if not 0 <= index < len(self.starts):
            return None
        raw = self.data[self.starts[index] : self.line_end(index)]
        return raw.decode("utf-8", "replace").removesuffix("\r")

    def locate(self, offset: int) -> tuple[int, int]:
        """(0-based line, 0-based character column) of a byte offset (clamped to the text)."""
        offset = self.clamp(offset)
        index = bisect_right(self.starts, offset) - 1
        prefix = self.data[self.starts[index] : offset]
        return index, len(prefix.decode("utf-8", "ignore"))

    def position(self, offset: int, unit: Unit = "char") -> tuple[int, int]:
        """1-based (line, column) of a byte offset, the column counted in ``unit``."""
        index, chars = self.locate(offset)
        if unit == "char":
            return index + 1, chars + 1
        line = self.line(index + 1) or ""
        if unit == "byte":
            return index + 1, len(line[:chars].encode("utf-8")) + 1
        return index + 1, display_width(line[:chars]) + 1

    def offset(self, line: int, column: int, unit: Unit = "char") -> int | None:
        """Byte offset of a 1-based (line, column), the column counted in ``unit``; a column
        past the end of the line is its end. None when the text has no such line."""
        text = self.line(line)
        if text is None:
            return None
        start = self.starts[line - 1]
        want = max(0, column - 1)
        if unit == "byte":
            return start + min(want, len(text.encode("utf-8")))
        if unit == "char":
            return start + len(text[:want].encode("utf-8"))
        # Display cells: the first character at or past the cell; a zero-width character
        # belongs to the one before it, so a position never lands on one.
        cells = 0
        for i, ch in enumerate(text):
            width = char_width(ch)
            if cells >= want and width > 0:
                return start + len(text[:i].encode("utf-8"))
            cells += width
        return start + len(text.encode("utf-8"))


Run = tuple[int, int, int]
"""``(compiled offset, written offset, length)``: bytes the two texts share."""


@dataclass(frozen=True, slots=True)
class SourceMap:
    """Where each byte of a compiled text came from in the written text.

    ``runs`` are the byte ranges the two texts share, in increasing order in both. A position
    in the compiled text outside every run (inside an inserted guard, or in whitespace that
    another layout put between tokens) maps to the written start of the next run: the place
    where the inserted text was inserted, or the next token. ``inserted`` are the texts the
    compiled copy has and the written code has not (the guards), for whoever must erase them
    from the compiler's words.
    """

    written: SourceText
    compiled: SourceText
    runs: tuple[Run, ...]
    inserted: tuple[str, ...] = ()
    _compiled_starts: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _written_starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled_starts", tuple(r[0] for r in self.runs))
        object.__setattr__(self, "_written_starts", tuple(r[1] for r in self.runs))

    @classmethod
    def identity(cls, text: str) -> SourceMap:
        source = SourceText(text)
        return cls(written=source, compiled=source, runs=((0, 0, len(source.data)),))

    @classmethod
    def with_insertions(cls, written: str, insertions: Sequence[tuple[int, str]]) -> SourceMap:
        """The map of ``written`` with each ``(byte offset in written, text)`` inserted."""
        source = SourceText(written)
        ordered = sorted(insertions, key=lambda ins: ins[0])
        compiled = bytearray()
        runs: list[Run] = []
        pos = 0
        for offset, text in ordered:
            at = source.clamp(offset)
            if at > pos:
                runs.append((len(compiled), pos, at - pos))
                compiled += source.data[pos:at]
                pos = at
            compiled += text.encode("utf-8")
        if len(source.data) > pos:
            runs.append((len(compiled), pos, len(source.data) - pos))
            compiled += source.data[pos:]
        return cls(
            written=source,
            compiled=SourceText(compiled.decode("utf-8")),
            runs=tuple(runs),
            inserted=tuple(text for _, text in ordered if text),
        )

    @classmethod
    def between_layouts(cls, compiled: str, written: str) -> SourceMap | None:
        """The map of two layouts of the same tokens (comments and whitespace may differ):
        each token is a run. None when the token streams differ."""
        old = list(syn.tokens(syn.parse(compiled).root_node))
        new = list(syn.tokens(syn.parse(written).root_node))
        if [syn.text(t) for t in old] != [syn.text(t) for t in new]:
            return None
        runs = tuple(
            (a.start_byte, b.start_byte, a.end_byte - a.start_byte)
            for a, b in zip(old, new, strict=True)
            if a.end_byte > a.start_byte
        )
        return cls(written=SourceText(written), compiled=SourceText(compiled), runs=runs)

    # -- byte offsets

    def to_written(self, offset: int) -> int:
        """The byte offset in the written text of byte ``offset`` of the compiled one."""
        return _map(offset, self.runs, self._compiled_starts, 0, len(self.written.data))

    def to_compiled(self, offset: int) -> int:
        """The byte offset in the compiled text of byte ``offset`` of the written one."""
        return _map(offset, self.runs, self._written_starts, 1, len(self.compiled.data))

    # -- lines and columns

    def written_position(
        self, line: int, column: int, unit: Unit = "char"
    ) -> tuple[int, int] | None:
        """A 1-based (line, column in ``unit``) of the compiled text as a 1-based (line,
        character column) of the written text; None when the compiled text has no such line."""
        offset = self.compiled.offset(line, column, unit)
        if offset is None:
            return None
        return self.written.position(self.to_written(offset))

    def compiled_position(
        self, line: int, column: int, unit: Unit = "char"
    ) -> tuple[int, int] | None:
        """A 1-based (line, column in ``unit``) of the written text as a 1-based (line,
        character column) of the compiled text; None when the written text has no such line."""
        offset = self.written.offset(line, column, unit)
        if offset is None:
            return None
        return self.compiled.position(self.to_compiled(offset))


def _map(offset: int, runs: Sequence[Run], starts: Sequence[int], side: int, end: int) -> int:
    """``offset`` on ``side`` of ``runs`` (0: compiled, 1: written) moved to the other side."""
    i = bisect_right(starts, offset) - 1
    if i >= 0:
        run = runs[i]
        if offset < run[side] + run[2]:
            return run[1 - side] + offset - run[side]
    if i + 1 < len(runs):
        return runs[i + 1][1 - side]
    return end
