"""Compiler diagnostics: rustc's JSON output reduced to the errors, ready to feed back.

The candidate is compiled as its own file (``candidate.rs``, included at the crate root), so
rustc's spans and rendered excerpts already count lines in the code the LLM wrote; errors whose
primary span lies elsewhere are marked as being in the code symbiont generates around it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

CANDIDATE_FILE = "candidate.rs"
_MAX_ERRORS = 8
_MAX_CHARS = 6000


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    """One compiler error."""

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


def parse_rustc_json(stderr: str) -> Diagnostics:
    """Parse ``rustc --error-format=json`` output. Non-JSON lines (linker noise) are kept
    as a plain error when no structured error was found."""
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
        errors.append(
            Diagnostic(
                message=message,
                code=code,
                file=primary.get("file_name") if primary else None,
                line=primary.get("line_start") if primary else None,
                column=primary.get("column_start") if primary else None,
                rendered=d.get("rendered") or f"error: {message}",
            )
        )
    if not errors and stray:
        text = "\n".join(stray[-40:])
        errors.append(
            Diagnostic(
                message=stray[-1], code=None, file=None, line=None, column=None, rendered=text
            )
        )
    return Diagnostics(errors=tuple(errors), warnings=warnings, raw=stderr)
