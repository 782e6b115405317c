"""The validation pipeline: extract, parse, crate attributes, signatures, policy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from symbiont._decl import SourceText
from symbiont._decl import _syntax as syn
from symbiont._validate._extract import extract_code
from symbiont._validate._policy import crate_attributes, render, scan
from symbiont._validate._signature import check_signatures
from symbiont._validate._types import Candidate, Policy, Rejection

if TYPE_CHECKING:
    import tree_sitter as ts

    from symbiont._decl import Declarations

_DEFAULT_POLICY = Policy()  # frozen, so one shared default is safe
_CLOSERS = {")": "(", "]": "[", "}": "{"}


def _unclosed(root: ts.Node) -> list[tuple[str, int]]:
    """Brackets never closed, with their lines: tree-sitter reports a cut-off reply as an error
    at its first item, so this says where the real problem is."""
    stack: list[tuple[str, int]] = []
    for leaf in syn.leaves(root):
        kind = leaf.type
        if kind in ("(", "[", "{"):
            stack.append((kind, leaf.start_point[0] + 1))
        elif kind in _CLOSERS and stack and stack[-1][0] == _CLOSERS[kind]:
            stack.pop()
    return stack


def validate(
    reply: str, decls: Declarations, policy: Policy = _DEFAULT_POLICY
) -> Candidate | Rejection:
    """Extract the code from an LLM reply and validate it (see :func:`validate_code`)."""
    code = extract_code(reply, decls)
    if code is None:
        return Rejection(
            kind="no_code",
            message="",
            error="no fenced ```rust code block defining the functions",
            expected="\n".join(f.signature for f in decls.functions),
        )
    return validate_code(code, decls, policy)


def validate_code(
    code: str, decls: Declarations, policy: Policy = _DEFAULT_POLICY
) -> Candidate | Rejection:
    """Check candidate code before it is built.

    In order: it must parse; crate-level lint attributes and inner doc comments are removed
    (other crate attributes are refused); every declared function must be defined once at top
    level with its declared signature; no forbidden construct, denied path or denied macro may
    appear. Line numbers in messages count from the first line of ``code``.
    """
    code = code.replace("\r\n", "\n")
    tree = syn.parse(code)
    problems = syn.syntax_problems(tree, code)
    if problems:
        details = "\n\n".join(p.render() for p in problems)
        unclosed = _unclosed(tree.root_node)
        if unclosed:
            opened = ", ".join(f"`{b}` on line {line}" for b, line in unclosed[:5])
            details += f"\n\nNever closed: {opened}. Was the code cut off?"
        first = problems[0]
        return Rejection(
            kind="parse_error",
            message=details,
            error=first.message,
            code=code,
            line=first.line,
            column=first.column,
            excerpt=first.excerpt,
        )
    root = tree.root_node
    stripped, findings = crate_attributes(root, code)
    if not findings:
        mismatch = check_signatures(root, code, decls)
        if mismatch is not None:
            return Rejection(
                kind="signature_mismatch",
                message=mismatch.report,
                error=mismatch.error,
                code=code,
                line=mismatch.line,
                expected=mismatch.expected,
                got=mismatch.got,
            )
        findings = scan(root, decls, policy)
    if findings:
        found = findings[0]
        # Findings carry tree-sitter's byte columns; a rejection reports characters.
        src = SourceText(code)
        _, column = src.position(src.offset(found.line, found.column, "byte") or 0)
        return Rejection(
            kind="forbidden",
            message=render(findings),
            error=found.message.removeprefix(f"line {found.line}: "),
            code=code,
            construct=found.construct,
            line=found.line,
            column=column,
        )
    normalised = syn.normalise(root) if stripped == code else syn.normalise_source(stripped)
    return Candidate(code=stripped, normalised=normalised)
