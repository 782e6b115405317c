"""Signature check: the candidate's top-level functions against the declared ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from symbiont._decl import _syntax as syn
from symbiont._decl import function_parts

if TYPE_CHECKING:
    import tree_sitter as ts

    from symbiont._decl import Declarations, FunctionDecl

# What to do about each problem `function_parts` reports, keyed by the problem's first words.
_ADVICE = {
    "is `async`": "declared functions must be plain synchronous fns",
    "is `unsafe`": "declared functions must be safe fns",
    "is `extern`": "declared functions use the Rust ABI; remove `extern`",
    "is `default`": "remove `default`",
    "has generic": "declared functions are not generic: use the declared types, no type or "
    "lifetime parameters",
    "has a `where`": "remove the `where` clause",
}


def function_name(node: ts.Node) -> str:
    name = node.child_by_field_name("name")
    return syn.text(name) if name is not None else "?"


def _one_line(source: str) -> str:
    return " ".join(source.split())


def _type_text(node: ts.Node | None) -> str:
    """Normalised type spelling; `()` and no type at all are the same return type."""
    if node is None or node.type == "unit_type":
        return ""
    return syn.normalise(node)


def _differences(decl: FunctionDecl, node: ts.Node) -> list[str]:
    _, params, ret, problems = function_parts(node)
    found: list[str] = []
    for problem in problems:
        if problem == "is `const`":  # `const fn` is callable like any fn
            continue
        advice = next((a for key, a in _ADVICE.items() if problem.startswith(key)), "")
        found.append(f"{problem}: {advice}" if advice else problem)
    if node.type == "function_signature_item":
        found.append("has no body: write the whole function")
    if len(params) != len(decl.params):
        found.append(f"takes {len(params)} parameter(s), expected {len(decl.params)}")
    else:
        for i, (param, declared) in enumerate(zip(params, decl.params, strict=True), 1):
            type_node = param.child_by_field_name("type")
            if _type_text(type_node) != declared.type_text:
                written = syn.text(type_node) if type_node is not None else "?"
                found.append(
                    f"parameter {i} has type `{_one_line(written)}`, "
                    f"expected `{declared.type.rust}`"
                )
    if _type_text(ret) != decl.ret_text:
        written = f"`{_one_line(syn.text(ret))}`" if ret is not None else "nothing"
        expected = f"`{decl.ret.rust}`" if decl.ret_text else "nothing"
        found.append(f"returns {written}, expected {expected}")
    return found


def _header(node: ts.Node, raw: bytes) -> str:
    body = node.child_by_field_name("body")
    return _one_line(raw[node.start_byte : body.start_byte if body else node.end_byte].decode())


@dataclass(frozen=True, slots=True, kw_only=True)
class Mismatch:
    """What is wrong with the candidate's functions: ``report`` lists every mismatched one;
    ``error``, ``line``, ``expected`` and ``got`` describe the first."""

    report: str
    error: str
    line: int | None
    expected: str
    got: str | None


def _report(
    decl: FunctionDecl, defs: list[ts.Node], root: ts.Node, raw: bytes
) -> tuple[str, int | None, str, str | None] | None:
    """What is wrong with ``decl``'s definitions (a report whose second line is the first
    problem), the line to point at and the written header; None if nothing."""
    head = f"`{decl.name}`:\n    expected: {decl.signature}"
    if not defs:
        nested = any(
            n.type == "function_item" and function_name(n) == decl.name for n in syn.walk(root)
        )
        where = (
            " (it is defined inside a `mod`, `impl` or function: declared functions must be "
            "top-level items)"
            if nested
            else ""
        )
        return f"{head}\n    - missing function `{decl.name}`{where}", None, "", None
    if len(defs) > 1:
        times = "twice" if len(defs) == 2 else f"{len(defs)} times"
        at = ", ".join(str(n.start_point[0] + 1) for n in defs)
        line = defs[1].start_point[0] + 1
        return f"{head}\n    - `{decl.name}` is defined {times} (lines {at})", line, "", None
    differences = _differences(decl, defs[0])
    if not differences:
        return None
    items = "".join(f"\n    - {d}" for d in differences)
    header = _header(defs[0], raw)
    return f"{head}\n    written:  {header}{items}", defs[0].start_point[0] + 1, items, header


def check_signatures(root: ts.Node, code: str, decls: Declarations) -> Mismatch | None:
    """What does not match the declared signatures, or None if everything does."""
    raw = code.encode("utf-8")
    top: dict[str, list[ts.Node]] = {}
    for node in root.named_children:
        if node.type in ("function_item", "function_signature_item"):
            top.setdefault(function_name(node), []).append(node)
    reports: list[tuple[FunctionDecl, str, int | None, str, str | None]] = []
    for decl in decls.functions:
        found = _report(decl, top.get(decl.name, []), root, raw)
        if found is not None:
            reports.append((decl, *found))
    if not reports:
        return None
    decl, report, _, items, got = reports[0]
    problem = (items or report.split("\n    - ", 1)[-1]).strip().removeprefix("- ")
    lines = [r[2] for r in reports if r[2] is not None]
    return Mismatch(
        report="\n\n".join(r[1] for r in reports),
        error=f"`{decl.name}`: {problem.splitlines()[0]}",
        line=min(lines, default=None),
        expected=decl.signature,
        got=got,
    )
