"""Rust syntax trees: the tree-sitter parser, parse-error reports and token normalisation.

Shared by the declaration parser and the validator, so both see Rust the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tree_sitter as ts

_lock = threading.Lock()
_parsers: dict[int, ts.Parser] = {}


def parse(source: str) -> ts.Tree:
    """Parse Rust source. tree-sitter parsers are not thread-safe: one per thread."""
    key = threading.get_ident()
    parser = _parsers.get(key)
    if parser is None:
        import tree_sitter
        import tree_sitter_rust

        with _lock:
            parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_rust.language()))
            _parsers[key] = parser
    return parser.parse(source.encode("utf-8"))


def text(node: ts.Node) -> str:
    raw = node.text
    return raw.decode("utf-8") if raw is not None else ""


def walk(node: ts.Node) -> Iterator[ts.Node]:
    """Every node below ``node`` (inclusive), depth first, in source order."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def leaves(node: ts.Node) -> Iterator[ts.Node]:
    for n in walk(node):
        if n.child_count == 0:
            yield n


_LITERALS = frozenset(
    {"string_literal", "raw_string_literal", "char_literal", "line_comment", "block_comment"}
)


def tokens(node: ts.Node) -> Iterator[ts.Node]:
    """Leaf tokens with literals kept whole and comments dropped."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in ("line_comment", "block_comment"):
            continue
        if current.child_count == 0 or current.type in _LITERALS:
            yield current
            continue
        stack.extend(reversed(current.children))


def normalise(node: ts.Node) -> str:
    """Token text joined by single spaces: equal for code that differs only in layout/comments."""
    return " ".join(text(t) for t in tokens(node))


def normalise_source(source: str) -> str:
    return normalise(parse(source).root_node)


@dataclass(frozen=True, slots=True, kw_only=True)
class SyntaxProblem:
    """One parse error: 1-based line and column in the parsed text, and a rendered excerpt."""

    line: int
    column: int
    message: str
    excerpt: str

    def render(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}\n{self.excerpt}"


def _char_col(line: str, byte_col: int) -> int:
    """tree-sitter columns count bytes; carets must count characters."""
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def _render(line_text: str, row: int, col: int, width: int) -> str:
    width = max(1, min(width, len(line_text) - col, 60))
    gutter = f"{row + 1:>4} | "
    return f"{gutter}{line_text}\n{' ' * (len(gutter) + col)}{'^' * width}"


def _excerpt(lines: list[str], row: int, byte_col: int, width: int) -> tuple[int, str]:
    line_text = lines[row] if row < len(lines) else ""
    col = _char_col(line_text, byte_col)
    return col, _render(line_text, row, col, width)


def excerpt(code: str, line: int, column: int) -> str:
    """Line ``line`` of ``code`` with a caret under ``column`` (both 1-based, characters)."""
    lines = code.splitlines()
    if not 1 <= line <= len(lines):
        return ""
    return _render(lines[line - 1], line - 1, max(column - 1, 0), 1)


def syntax_problems(tree: ts.Tree, source: str, limit: int = 5) -> list[SyntaxProblem]:
    """The parse errors of ``tree`` (ERROR and MISSING nodes), first ``limit`` of them."""
    root = tree.root_node
    if not root.has_error:
        return []
    lines = source.splitlines() or [""]
    problems: list[SyntaxProblem] = []
    stack = [root]
    while stack and len(problems) < limit:
        node = stack.pop()
        row, byte_col = node.start_point
        if node.is_missing:
            col, excerpt = _excerpt(lines, row, byte_col, 1)
            message = f"expected `{node.type}` here"
        elif node.is_error:
            end_row, end_col = node.end_point
            snippet = text(node).strip().splitlines()
            what = snippet[0][:40] if snippet else ""
            if what:
                message = f"unexpected `{what}`"
            else:
                message = "unexpected end of input (unbalanced braces or an unfinished item?)"
            width = end_col - byte_col if end_row == row else 60
            col, excerpt = _excerpt(lines, row, byte_col, width)
        else:
            if node.has_error:
                stack.extend(reversed(node.children))
            continue
        # Errors nested inside this one are the same problem seen again: children not pushed.
        problems.append(
            SyntaxProblem(line=row + 1, column=col + 1, message=message, excerpt=excerpt)
        )
    return problems


def doc_comment(node: ts.Node) -> str:
    """The `///` doc comment lines directly above an item (attributes may sit in between)."""
    docs: list[str] = []
    prev = node.prev_sibling
    while prev is not None and prev.type in ("line_comment", "attribute_item"):
        if prev.type == "line_comment":
            body = text(prev)
            if not body.startswith("///") or body.startswith("////"):
                break
            docs.append(body[3:].rstrip("\n").removeprefix(" "))
        prev = prev.prev_sibling
    return "\n".join(reversed(docs))


def item_start(node: ts.Node) -> int:
    """Byte offset where an item begins, including its doc comments and attributes."""
    start = node.start_byte
    prev = node.prev_sibling
    while prev is not None and prev.type in ("line_comment", "attribute_item"):
        if prev.type == "line_comment" and not text(prev).startswith("///"):
            break
        start = prev.start_byte
        prev = prev.prev_sibling
    return start
