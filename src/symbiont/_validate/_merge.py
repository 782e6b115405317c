"""One function at a time: a candidate that defines only some declared functions, completed
with the rest of a parent revision's code.

The candidate's code comes first (so compiler diagnostics keep its line numbers); then every
top-level item of the parent whose name the candidate does not define again (a candidate's
helper replaces the parent's helper of that name, its ``impl Foo`` the parent's when it defines
``Foo``); ``use`` declarations the candidate repeats are kept once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symbiont._decl import Declarations
from symbiont._decl import _syntax as syn

if TYPE_CHECKING:
    import tree_sitter as ts


def _name(node: ts.Node) -> str | None:
    if node.type == "impl_item":
        target = node.child_by_field_name("type")
        return f"impl {syn.text(target)}" if target is not None else None
    name = node.child_by_field_name("name")
    return syn.text(name) if name is not None else None


def _items(code: str) -> list[tuple[ts.Node, int, int]]:
    """Top-level items with the byte span that includes their doc comments and attributes."""
    root = syn.parse(code).root_node
    out: list[tuple[ts.Node, int, int]] = []
    pending: int | None = None
    for node in root.named_children:
        if node.type in ("line_comment", "block_comment", "attribute_item"):
            pending = node.start_byte if pending is None else pending
            continue
        out.append((node, node.start_byte if pending is None else pending, node.end_byte))
        pending = None
    return out


def complete_from_parent(candidate: str, parent: str) -> str:
    """``candidate`` followed by the items of ``parent`` it does not redefine."""
    names: set[str] = set()
    uses: set[str] = set()
    for node, _, _ in _items(candidate):
        if node.type == "use_declaration":
            uses.add(syn.normalise_source(syn.text(node)))
            continue
        name = _name(node)
        if name is not None:
            names.add(name)
            if node.type in ("struct_item", "enum_item", "union_item", "type_item"):
                names.add(f"impl {name}")
    raw = parent.encode()
    kept: list[str] = []
    for node, start, end in _items(parent):
        if node.type == "use_declaration":
            if syn.normalise_source(syn.text(node)) in uses:
                continue
        elif _name(node) in names:
            continue
        kept.append(raw[start:end].decode())
    if not kept:
        return candidate
    rest = "\n\n".join(kept)
    return f"{candidate.rstrip()}\n\n// Kept from the parent revision.\n{rest}\n"


def subset(decls: Declarations, functions: tuple[str, ...]) -> Declarations:
    """The declarations a candidate for ``functions`` only is checked against."""
    chosen = tuple(f for f in decls.functions if f.name in functions)
    source = "\n\n".join([decls.prelude.rstrip(), *(f.source for f in chosen)]).strip()
    return Declarations(
        source=source, functions=chosen, prelude=decls.prelude, prelude_names=decls.prelude_names
    )
