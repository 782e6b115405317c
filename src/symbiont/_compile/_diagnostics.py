"""Compiler diagnostics: rustc's JSON output reduced to the errors, ready to feed back.

This module owns parsing ``rustc --error-format=json``, and rendering the errors that lie in the
candidate in terms of the code the LLM wrote.

The candidate is compiled as its own file (``candidate.rs``, included at the crate root); errors
whose primary span lies elsewhere are marked as being in the code symbiont generates around it
and keep rustc's own rendered text. The compiled ``candidate.rs`` may be an instrumented copy of
the LLM's source, with short guard calls inserted on existing lines. Given the original source
and the insertions, errors in the candidate are rendered here from the JSON spans, mapped back to
the original lines and columns, so the LLM only ever sees its own code; inserted texts are
stripped from every message, label and suggestion.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from symbiont._decl import SourceMap, SourceText, display_width

log = logging.getLogger("symbiont.build")

CANDIDATE_FILE = "candidate.rs"
_MAX_ERRORS = 8
_MAX_CHARS = 6000
_MAX_ALTERNATIVES = 4  # suggestions shown per help, as rustc does
_MAX_LABELS = 6  # labels listed for spans in files whose source we cannot show
_MAX_DIFF_LINES = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    """One compiler error. ``line``/``column`` (1-based, characters) are in the code the LLM
    wrote when the error is in the candidate and the original source was given."""

    message: str
    code: str | None
    file: str | None
    line: int | None
    column: int | None
    rendered: str

    @property
    def in_candidate(self) -> bool:
        return self.file == CANDIDATE_FILE


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostics:
    """The errors of one failed build (warnings are counted, never shown)."""

    errors: tuple[Diagnostic, ...]
    warnings: int = 0
    raw: str = ""

    def render(self, limit: int = _MAX_ERRORS) -> str:
        parts: list[str] = []
        for d in self.errors[:limit]:
            text = d.rendered.rstrip()
            if d.file is not None and not d.in_candidate:
                text += (
                    f"\n(this error is reported in {d.file}, code symbiont generates around "
                    "yours: check that your functions match the declared signatures and do not "
                    "redefine the prelude's items)"
                )
            parts.append(text)
        more = len(self.errors) - limit
        if more > 0:
            parts.append(f"... and {more} more error(s)")
        out = "\n\n".join(parts)
        if len(out) > _MAX_CHARS:
            out = out[:_MAX_CHARS] + "\n... (truncated)"
        return out

    def __str__(self) -> str:
        return self.render()


def parse_rustc_json(
    stderr: str,
    *,
    source: str | None = None,
    insertions: Sequence[tuple[int, str]] = (),
    own_files: Collection[str] | None = None,
) -> Diagnostics:
    """Parse ``rustc --error-format=json`` output. Non-JSON lines (linker noise) are kept
    as a plain error when no structured error was found.

    ``source`` is the code the LLM wrote and ``insertions`` the ``(byte offset, text)`` pairs
    inserted into it to make the compiled ``candidate.rs`` (see ``SourceMap.with_insertions``).
    With ``source``, errors in the candidate are rendered from its lines; without, rustc's
    rendered text is used. Inserted texts are stripped anywhere.

    ``own_files`` (the generated crate's files) marks the output as meant for the LLM: nothing
    of any other file is shown (see ``without_external_spans``), and a failed link or a
    compiler crash is one short error (see ``link_or_crash``).
    """
    if own_files is not None:
        short = link_or_crash(stderr)
        if short is not None:
            return Diagnostics(errors=(short,), raw=stderr)
    smap = SourceMap.with_insertions(source, insertions) if source is not None else None
    clean = _Cleaner((text for _, text in insertions), smap)
    errors: list[Diagnostic] = []
    warnings = 0
    stray: list[str] = []
    for line in stderr.splitlines():
        if not line.startswith("{"):
            if line.strip():
                stray.append(line)
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            stray.append(line)
            continue
        if d.get("$message_type", "diagnostic") != "diagnostic":
            continue
        if own_files is not None:
            d = without_external_spans(d, own_files)
        level = d.get("level", "")
        message = d.get("message", "")
        if level == "warning":
            warnings += 1
            continue
        if not level.startswith("error") or message.startswith("aborting due to"):
            continue
        spans = d.get("spans") or []
        primary = next((s for s in spans if s.get("is_primary")), spans[0] if spans else None)
        code = (d.get("code") or {}).get("code")
        file = primary.get("file_name") if primary else None
        row = primary.get("line_start") if primary else None
        column = primary.get("column_start") if primary else None
        rendered = clean(d.get("rendered") or f"error: {message}")
        if smap is not None and primary is not None and file == CANDIDATE_FILE:
            try:
                rendered, row, column = _Renderer(smap, clean).diagnostic(d)
            except Exception:
                # A JSON shape this renderer does not know must not cost the LLM its feedback:
                # rustc's own text (inserted calls stripped) is a close second.
                log.warning("could not render a rustc diagnostic; using rustc's", exc_info=True)
        errors.append(
            Diagnostic(
                message=clean(message),
                code=code,
                file=file,
                line=row,
                column=column,
                rendered=rendered,
            )
        )
    if not errors and stray:
        text = clean("\n".join(stray[-40:]))
        errors.append(
            Diagnostic(
                message=clean(stray[-1]), code=None, file=None, line=None, column=None,
                rendered=text,
            )
        )  # fmt: skip
    return Diagnostics(errors=tuple(errors), warnings=warnings, raw=stderr)


# ------------------------------------------------------------------------- other files, crashes

_OUTSIDE = (
    "the compiler reported an error in a file that is not your code; its path and text are "
    "not shown. Only your code is compiled here: do not refer to other files"
)
# The standard library's sources, as rustc names them (remapped, or in the sysroot).
_STD_SOURCE = re.compile(r"^/rustc/[0-9a-f]+/library/|/lib/rustlib/src/rust/library/")
_PATHS = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][^\s/\\'\"`:()\[\]]+){2,}[/\\]?")
_LINKER_LINE = re.compile(r"error|undefined|relocation|multiple definition|cannot|overflow", re.I)


def without_external_spans(d: dict[str, Any], own: Collection[str]) -> dict[str, Any]:
    """rustc's JSON diagnostic ``d`` with nothing shown of files outside ``own``.

    Spans in other files (a file `#[path]` or `mod x;` made rustc read, the sysroot) are
    dropped, with their excerpts, labels and paths, in the diagnostic and its children. A
    diagnostic whose primary span lies in such a file also loses its message (rustc quotes the
    file's tokens in it) unless the file is the standard library's. When anything was dropped,
    rustc's rendered text (which quotes every file) is replaced by the messages alone.
    """
    dropped: list[dict[str, Any]] = []

    def keep(spans: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        out = []
        for span in spans or []:
            if span.get("file_name") in own:
                # The macro backtrace may name other files.
                out.append({k: v for k, v in span.items() if k != "expansion"})
            else:
                dropped.append(span)
        return out

    spans: list[dict[str, Any]] = d.get("spans") or []
    primary = next((s for s in spans if s.get("is_primary")), spans[0] if spans else None)
    message = str(d.get("message") or "")
    if (
        primary is not None
        and primary.get("file_name") not in own
        and not _STD_SOURCE.search(str(primary.get("file_name", "")))
    ):
        message = _OUTSIDE
    children = [
        {**c, "spans": keep(c.get("spans")), "rendered": None} for c in d.get("children") or []
    ]
    out = {**d, "message": message, "spans": keep(spans), "children": children}
    if not dropped:
        return out
    level = d.get("level") or "error"
    code = (d.get("code") or {}).get("code")
    lines = [f"{level}[{code}]: {message}" if code else f"{level}: {message}"]
    own_primary = next((s for s in out["spans"] if s.get("is_primary")), None)
    if own_primary is not None:
        where = f"{own_primary.get('file_name')}:{own_primary.get('line_start')}"
        lines.append(f" --> {where}:{own_primary.get('column_start')}")
    for child in children:
        if child.get("message"):
            lines.append(f"  = {child.get('level') or 'note'}: {child['message']}")
    out["rendered"] = "\n".join(lines) + "\n"
    return out


def link_or_crash(stderr: str) -> Diagnostic | None:
    """A failed link or a compiler crash (ICE) in rustc's output, as one short error without
    build paths or command lines; None for an ordinary failure."""
    texts: list[str] = []
    link: dict[str, Any] | None = None
    ice: str | None = None
    for line in stderr.splitlines():
        try:
            d = json.loads(line) if line.startswith("{") else None
        except json.JSONDecodeError:
            d = None
        if not isinstance(d, dict):
            texts.append(line)
            continue
        message = str(d.get("message") or "")
        if message.startswith("linking with") and link is None:
            link = d
        elif message.startswith("internal compiler error") and ice is None:
            ice = message
    if ice is None:
        ice = next((t for t in texts if "internal compiler error" in t), None)
    if ice is None and any("compiler unexpectedly panicked" in t for t in texts):
        # `thread 'rustc' panicked at <compiler source>:` and the panic message on the next line.
        at = next((i for i, t in enumerate(texts) if "panicked at" in t), None)
        ice = texts[at + 1] if at is not None and at + 1 < len(texts) else "the compiler panicked"
    if ice is not None:
        what = _PATHS.sub("<path>", ice.removeprefix("error: ")).strip()[:200]
        message = "the compiler crashed on this code (a bug in rustc, not in your code)"
        rendered = f"error: {message}: {what}\nWrite the construct it names in another way."
        return Diagnostic(message=message, code=None, file=None, line=None, column=None,
                          rendered=rendered)  # fmt: skip
    if link is None:
        return None
    status = re.search(r"exit (?:status|code): ?(\S+)", str(link.get("message")))
    found: list[str] = []
    for child in link.get("children") or []:
        for raw in str(child.get("message") or "").splitlines():
            text = raw.strip()
            # The command line (quoted arguments, flags) says nothing the LLM can use.
            if not text or text.startswith(('"', "LC_ALL", "PATH=")) or " -o " in text:
                continue
            if _LINKER_LINE.search(text):
                found.append(_PATHS.sub("<path>", text)[:200])
    shown = "".join(f"\n  = note: {t}" for t in list(dict.fromkeys(found))[:3])
    message = "linking the library failed" + (f" (exit status {status.group(1)})" if status else "")
    rendered = (
        f"error: {message}{shown}\n"
        "  = help: is there a constant, array or table too large for a library (over 2 GiB)?"
    )
    return Diagnostic(message=message, code=None, file=None, line=None, column=None,
                      rendered=rendered)  # fmt: skip


# ---------------------------------------------------------------------------------- rendering


# How rustc names a place in a message: `{closure@candidate.rs:2:39: 2:47}`.
_PLACE = re.compile(r"(candidate\.rs:)(\d+):(\d+)(?:(: )(\d+):(\d+))?")


class _Cleaner:
    """Makes rustc's words about the compiled file true of the original: strips the inserted
    texts and moves ``candidate.rs:L:C`` mentions back to original coordinates."""

    def __init__(self, inserted: Iterable[str], smap: SourceMap | None) -> None:
        texts = {text for text in inserted if text}
        # rustc quotes calls without their semicolon (`__sb_tick()`), so that form goes too.
        texts |= {t.rstrip().rstrip(";") for t in texts} - {""}
        self.texts = sorted(texts, key=len, reverse=True)
        self.smap = smap if smap is not None and smap.inserted else None

    def __call__(self, text: str) -> str:
        for t in self.texts:
            text = text.replace(t, "")
        if self.smap is not None:
            text = _PLACE.sub(self._relocate, text)
        return text

    def _place(self, line: str, col: str) -> str:
        assert self.smap is not None
        # rustc names places in character columns, like its JSON spans.
        where = self.smap.written_position(int(line), int(col), "char")
        return f"{line}:{col}" if where is None else f"{where[0]}:{where[1]}"

    def _relocate(self, m: re.Match[str]) -> str:
        out = m.group(1) + self._place(m.group(2), m.group(3))
        if m.group(4):
            out += m.group(4) + self._place(m.group(5), m.group(6))
        return out


def _expand(text: str) -> str:
    return text.replace("\t", "    ")


@dataclass(frozen=True, slots=True)
class _Loc:
    """A span as shown: 1-based lines, 0-based character columns (end exclusive)."""

    line: int
    col: int
    end_line: int
    end_col: int
    primary: bool
    label: str


@dataclass(frozen=True, slots=True)
class _Ann:
    start: int  # display columns
    end: int
    primary: bool
    label: str


class _Doc:
    """Rows of one rendered diagnostic; the line-number gutter is sized when rendering."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []  # kind, line number, separator, text

    def raw(self, text: str) -> None:
        self.rows.append(("raw", "", "", text))

    def arrow(self, where: str, sign: str = "-->") -> None:
        self.rows.append(("arrow", "", sign, where))

    def bar(self) -> None:
        self.rows.append(("src", "", "|", ""))

    def src(self, number: str, sep: str, text: str) -> None:
        self.rows.append(("src", number, sep, text))

    def gap(self, margin: str = "") -> None:
        self.rows.append(("gap", "", "", margin))

    def note(self, level: str, message: str) -> None:
        self.rows.append(("note", "", level, message))

    def close_snippet(self) -> None:
        """rustc separates a source excerpt from what follows with an empty gutter row."""
        if self.rows and self.rows[-1][0] in ("src", "gap"):
            self.bar()

    def render(self) -> str:
        width = max((len(num) for _, num, _, _ in self.rows), default=1) or 1
        pad = " " * width
        out: list[str] = []
        for kind, num, sep, text in self.rows:
            if kind == "raw":
                out.append(text)
            elif kind == "arrow":
                out.append(f"{pad}{sep} {text}")
            elif kind == "src":
                out.append(f"{num:>{width}} {sep} {text}".rstrip())
            elif kind == "gap":
                out.append(f"{'...':<{width + 3}}{text}".rstrip())
            else:
                head = f"{pad} = {sep}: "
                indent = "\n" + " " * len(head)
                out.append(head + indent.join(text.split("\n")))
        return "\n".join(out)


class _Renderer:
    """Renders one diagnostic whose primary span is in the candidate, from its JSON."""

    def __init__(self, smap: SourceMap, clean: _Cleaner) -> None:
        self.smap = smap
        self.src: SourceText = smap.written
        self.clean = clean

    # -- spans

    def _range(self, span: dict[str, Any]) -> tuple[int, int]:
        start = self.smap.to_written(int(span.get("byte_start") or 0))
        end = self.smap.to_written(int(span.get("byte_end") or 0))
        return start, max(start, end)

    def _loc(self, span: dict[str, Any]) -> _Loc:
        start, end = self._range(span)
        line, col = self.src.locate(start)
        end_line, end_col = self.src.locate(end)
        if end > start and end_line > line and end_col == 0:
            # A span that swallows its line's newline ends on that line, not on the next one.
            end_line -= 1
            end_col = len(self.src.line(end_line + 1) or "")
        label = self.clean(span.get("label") or "")
        return _Loc(line + 1, col, end_line + 1, end_col, bool(span.get("is_primary")), label)

    def _foreign_loc(self, span: dict[str, Any]) -> _Loc:
        line = int(span.get("line_start") or 1)
        end_line = int(span.get("line_end") or line)
        col = max(0, int(span.get("column_start") or 1) - 1)
        end_col = max(0, int(span.get("column_end") or 1) - 1)
        label = self.clean(span.get("label") or "")
        return _Loc(line, col, end_line, end_col, bool(span.get("is_primary")), label)

    def _foreign_lines(self, spans: Sequence[dict[str, Any]]) -> dict[int, str]:
        lines: dict[int, str] = {}
        for span in spans:
            first = int(span.get("line_start") or 1)
            for i, entry in enumerate(span.get("text") or []):
                lines[first + i] = self.clean(entry.get("text", ""))
        return lines

    # -- the diagnostic

    def diagnostic(self, d: dict[str, Any]) -> tuple[str, int, int]:
        doc = _Doc()
        level = d.get("level") or "error"
        code = (d.get("code") or {}).get("code")
        message = self.clean(d.get("message") or "")
        doc.raw(f"{level}[{code}]: {message}" if code else f"{level}: {message}")
        spans: list[dict[str, Any]] = d.get("spans") or []
        own = [s for s in spans if s.get("file_name") == CANDIDATE_FILE]
        locs = _dedupe([self._loc(s) for s in own])
        head = next((loc for loc in locs if loc.primary), locs[0])
        doc.arrow(f"{CANDIDATE_FILE}:{head.line}:{head.col + 1}")
        _snippet(doc, locs, self.src.line)
        self._foreign(doc, [s for s in spans if s.get("file_name") != CANDIDATE_FILE], "note")
        for child in d.get("children") or []:
            self._child(doc, child)
        return doc.render(), head.line, head.col + 1

    def _foreign(self, doc: _Doc, spans: list[dict[str, Any]], level: str) -> None:
        """Spans in other files: their excerpt when rustc gave one, else their labels."""
        by_file: dict[str, list[dict[str, Any]]] = {}
        for span in spans:
            by_file.setdefault(str(span.get("file_name")), []).append(span)
        for name, group in by_file.items():
            lines = self._foreign_lines(group)
            locs = _dedupe([self._foreign_loc(s) for s in group])
            if all(n in lines for loc in locs for n in (loc.line, loc.end_line)):
                head = next((loc for loc in locs if loc.primary), locs[0])
                doc.arrow(f"{name}:{head.line}:{head.col + 1}", ":::")
                _snippet(doc, locs, lines.get)
            else:
                labels = [loc.label for loc in locs if loc.label]
                if labels:
                    doc.close_snippet()
                    doc.note(level, "\n".join(_capped_labels(labels)))

    def _child(self, doc: _Doc, child: dict[str, Any]) -> None:
        level = child.get("level") or "note"
        message = self.clean(child.get("message") or "")
        spans: list[dict[str, Any]] = child.get("spans") or []
        own = [s for s in spans if s.get("file_name") == CANDIDATE_FILE]
        foreign = [s for s in spans if s.get("file_name") != CANDIDATE_FILE]
        suggestions = [s for s in own if s.get("suggested_replacement") is not None]
        doc.close_snippet()
        if suggestions:
            doc.raw(f"{level}: {message}")
            groups = self._alternatives(suggestions)
            for edits in groups[:_MAX_ALTERNATIVES]:
                self._suggestion(doc, edits)
            if len(groups) > _MAX_ALTERNATIVES:
                doc.raw(f"  and {len(groups) - _MAX_ALTERNATIVES} other candidate(s)")
            return
        if any(s.get("suggested_replacement") is not None for s in foreign):
            # A suggestion for generated code (an import at the crate root): the text is what
            # matters, the place is not the LLM's.
            texts: list[str] = []
            for span in foreign:
                text = self.clean(span.get("suggested_replacement") or "").strip()
                if text and f"`{text}`" not in texts:
                    texts.append(f"`{text}`")
            shown = texts[:_MAX_ALTERNATIVES]
            if len(texts) > len(shown):
                shown.append(f"and {len(texts) - len(shown)} other candidate(s)")
            doc.note(level, message + (":\n" + "\n".join(shown) if shown else ""))
            return
        if own:
            locs = _dedupe([self._loc(s) for s in own])
            head = next((loc for loc in locs if loc.primary), locs[0])
            doc.raw(f"{level}: {message}")
            doc.arrow(f"{CANDIDATE_FILE}:{head.line}:{head.col + 1}")
            _snippet(doc, locs, self.src.line)
            return
        if foreign:
            lines = self._foreign_lines(foreign)
            locs = _dedupe([self._foreign_loc(s) for s in foreign])
            names = {str(s.get("file_name")) for s in foreign}
            visible = all(n in lines for loc in locs for n in (loc.line, loc.end_line))
            if visible and len(names) == 1:
                head = next((loc for loc in locs if loc.primary), locs[0])
                doc.raw(f"{level}: {message}")
                doc.arrow(f"{names.pop()}:{head.line}:{head.col + 1}")
                _snippet(doc, locs, lines.get)
                return
            labels = [loc.label for loc in locs if loc.label]
            doc.note(level, message + ("\n" + "\n".join(_capped_labels(labels)) if labels else ""))
            return
        doc.note(level, message)

    # -- suggestions

    def _alternatives(self, spans: list[dict[str, Any]]) -> list[list[tuple[int, int, str]]]:
        """rustc lists the parts of every alternative one after another in one child, parts in
        no particular order: the parts of one alternative never overlap, so a part that overlaps
        one already taken (or sits at the same place) starts the next alternative."""
        groups: list[list[tuple[int, int, str]]] = []
        for span in spans:
            start, end = self._range(span)
            edit = (start, end, self.clean(span.get("suggested_replacement") or ""))
            if groups and not any(
                (start, end) == (s, e) or (start < e and s < end) for s, e, _ in groups[-1]
            ):
                groups[-1].append(edit)
            else:
                groups.append([edit])
        for edits in groups:
            edits.sort(key=lambda edit: edit[:2])
        return groups

    def _suggestion(self, doc: _Doc, edits: list[tuple[int, int, str]]) -> None:
        src = self.src
        first, _ = src.locate(edits[0][0])
        reach = max(e for _, e, _ in edits)
        last, last_col = src.locate(reach)
        if reach > edits[0][0] and last > first and last_col == 0:
            last -= 1
        seg_start = src.starts[first]
        seg_end = max(src.line_end(last), reach)
        new = bytearray()
        added: list[tuple[int, int]] = []  # byte ranges of new text in ``new``
        pos = seg_start
        for start, end, text in edits:
            new += src.data[pos:start]
            encoded = text.encode()
            added.append((len(new), len(new) + len(encoded)))
            new += encoded
            pos = end
        new += src.data[pos:seg_end]
        doc.bar()
        if all(start == end for start, end, _ in edits):
            self._insertions(doc, bytes(new), added, first + 1)
        else:
            old = _split_lines(src.data[seg_start:seg_end])
            for i, line in enumerate(old[:_MAX_DIFF_LINES]):
                doc.src(str(first + 1 + i), "-", _expand(line))
            if len(old) > _MAX_DIFF_LINES:
                doc.gap()
            fresh = _split_lines(bytes(new))
            for i, line in enumerate(fresh[:_MAX_DIFF_LINES]):
                doc.src(str(first + 1 + i), "+", _expand(line))
            if len(fresh) > _MAX_DIFF_LINES:
                doc.gap()

    @staticmethod
    def _insertions(doc: _Doc, new: bytes, added: list[tuple[int, int]], number: int) -> None:
        """Pure insertions: the changed lines as they would read, new text marked with ``+``
        (a line that is entirely new gets ``+`` in the gutter instead)."""
        shown_last: int | None = None
        offset = 0
        for i, raw in enumerate(new.split(b"\n")):
            line_start, line_end = offset, offset + len(raw)
            offset = line_end + 1
            line = raw.decode("utf-8", "replace").rstrip("\r")
            marks: list[tuple[int, int]] = []
            touched = False
            for a, b in added:
                # A new line break at the end of this line changes it too (rustc adds a tail
                # expression on a line of its own that way).
                touched = touched or (a < b and a <= line_end and b > line_start)
                lo, hi = max(a, line_start), min(b, line_end)
                if lo < hi:
                    marks.append((lo - line_start, hi - line_start))
            if not touched:
                continue
            if shown_last is not None and i - shown_last > 1:
                doc.gap()
            shown_last = i
            if marks == [(0, len(raw))]:
                doc.src(str(number + i), "+", _expand(line))
                continue
            doc.src(str(number + i), "|", _expand(line))
            if not marks:
                continue
            row: list[str] = []
            for lo, hi in marks:
                ds = display_width(raw[:lo].decode("utf-8", "ignore"))
                de = display_width(raw[:hi].decode("utf-8", "ignore"))
                row.extend(" " * (ds - len(row)))
                row.extend("+" * max(1, de - ds))
            doc.src("", "|", "".join(row))


def _split_lines(data: bytes) -> list[str]:
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def _dedupe(locs: list[_Loc]) -> list[_Loc]:
    return list(dict.fromkeys(locs))


def _capped_labels(labels: list[str]) -> list[str]:
    unique = list(dict.fromkeys(labels))
    if len(unique) > _MAX_LABELS:
        return [*unique[:_MAX_LABELS], f"and {len(unique) - _MAX_LABELS} more"]
    return unique


def _snippet(doc: _Doc, locs: list[_Loc], line_of: Callable[[int], str | None]) -> None:
    """The source lines ``locs`` touch, with markers (``^`` primary, ``-`` secondary) and labels.

    Lines one apart are bridged, longer gaps elided; a span over several lines is drawn from its
    first to its last line with a connecting bar in a margin, the way rustc does.
    """
    single = [loc for loc in locs if loc.line == loc.end_line]
    multi = sorted((loc for loc in locs if loc.line != loc.end_line),
                   key=lambda loc: (loc.line, -loc.end_line))  # fmt: skip
    wanted = sorted({loc.line for loc in locs} | {loc.end_line for loc in locs})
    lines: list[int] = []
    for n in wanted:
        if lines and n - lines[-1] == 2:
            lines.append(n - 1)
        lines.append(n)
    doc.bar()
    previous: int | None = None
    for n in lines:
        if previous is not None and n - previous > 1:
            gap = "".join("|" if m.line <= previous < m.end_line else " " for m in multi)
            doc.gap(gap)
        previous = n
        text = line_of(n) or ""
        slots = ["|" if m.line < n <= m.end_line else " " for m in multi]
        lead = "".join(slots) + " " if multi else ""
        doc.src(str(n), "|", lead + _expand(text))
        for row in _annotate(text, [loc for loc in single if loc.line == n]):
            doc.src("", "|", ("".join(slots) + " " if multi else "") + row)
        for j, m in enumerate(multi):
            if m.line == n:
                start = display_width(text[: m.col])
                fill = "_" * (len(multi) - j) + "_" * start
                doc.src("", "|", "".join(slots[:j]) + " " + fill + _mark(m))
                slots[j] = "|"
        for j in reversed(range(len(multi))):
            m = multi[j]
            if m.end_line == n:
                last = display_width(text[: max(0, m.end_col - 1)])
                fill = "_" * (len(multi) - j) + "_" * last
                label = f" {m.label}" if m.label else ""
                doc.src("", "|", "".join(slots[:j]) + "|" + fill + _mark(m) + label)
                slots[j] = " "


def _mark(loc: _Loc) -> str:
    return "^" if loc.primary else "-"


def _annotate(text: str, locs: list[_Loc]) -> list[str]:
    """Marker and label rows under one line for the spans that lie within it."""
    if not locs:
        return []
    anns = []
    for loc in locs:
        start = display_width(text[: loc.col])
        anns.append(
            _Ann(start, max(start + 1, display_width(text[: loc.end_col])), loc.primary, loc.label)
        )
    marks = [" "] * max(a.end for a in anns)
    # Wider spans first, so a span nested in another stays visible; primary wins a tie.
    for a in sorted(anns, key=lambda a: (a.start - a.end, a.primary)):
        marks[a.start : a.end] = ("^" if a.primary else "-") * (a.end - a.start)
    rows = ["".join(marks)]
    labelled = [i for i, a in enumerate(anns) if a.label]
    edge = len(marks)
    inline = max((i for i in labelled if anns[i].end == edge),
                 key=lambda i: anns[i].start, default=None)  # fmt: skip
    if inline is not None:
        rows[0] += " " + anns[inline].label
    rest = sorted((anns[i] for i in labelled if i != inline), key=lambda a: -a.start)
    if rest:
        bars = [" "] * (rest[0].start + 1)
        for a in rest:
            bars[a.start] = "|"
        rows.append("".join(bars))
        for k, a in enumerate(rest):
            row = [" "] * a.start
            for b in rest[k + 1 :]:
                if b.start < a.start:
                    row[b.start] = "|"
            rows.append("".join(row) + a.label)
    return rows
