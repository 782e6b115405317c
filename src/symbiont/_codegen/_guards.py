"""Guards: the checks symbiont inserts into candidate code so a runaway call can be stopped.

- After the `{` of every loop body and closure body: ``crate::__sb_tick();``, one relaxed load
  of a process-wide counter that becomes non-zero only when some call is past its deadline.
- After the `{` of every function that can recurse: ``crate::__sb_enter();``, the tick plus a
  stack-depth check, so unbounded recursion stops with a panic instead of overflowing the
  stack. A function can recurse when it is on a cycle of the name-based call graph (references
  to a function's name count as calls), and every method of a trait implementation counts too:
  operators, `Drop`, `Index`, `Iterator::next` are called without their name being written.
  Recursion without names (a closure reached again through a `&dyn Fn` it is handed) passes a
  call through a value (a parameter, a binding, a field), so the function or closure that
  makes such a call gets the check too.
  Other functions get no entry check: its cost would land on every call.

Insertions never add a line, so line numbers in compiler errors and panic locations stay those
of the code the LLM wrote; columns after an insertion shift, and the recorded insertions let the
diagnostics and panic reports map them back (``SourceMap.with_insertions``). Code in const
contexts (const items, statics, `const fn`, const blocks) is left alone: guards are not `const`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from symbiont._decl import SourceMap
from symbiont._decl import _syntax as syn

if TYPE_CHECKING:
    import tree_sitter as ts

TICK = "crate::__sb_tick();"
ENTER = "crate::__sb_enter();"

_LOOPS = ("loop_expression", "while_expression", "for_expression")
_CONST_CONTEXTS = ("const_item", "static_item", "const_block")


@dataclass(frozen=True, slots=True)
class Instrumented:
    """The code to compile, and the ``(byte offset in the original, inserted text)`` pairs."""

    code: str
    insertions: tuple[tuple[int, str], ...]


def _in_const_context(node: ts.Node) -> bool:
    p = node.parent
    while p is not None:
        if p.type in _CONST_CONTEXTS:
            return True
        if p.type == "function_item" and _is_const_fn(p):
            return True
        p = p.parent
    return False


def _is_const_fn(fn: ts.Node) -> bool:
    for child in fn.children:
        if child.type == "function_modifiers":
            return any(syn.text(m) == "const" for m in child.children)
    return False


def _in_trait_impl(fn: ts.Node) -> bool:
    """A method of `impl Trait for Type`: callable implicitly (operators, drop, indexing)."""
    body = fn.parent
    impl = body.parent if body is not None else None
    return (
        impl is not None
        and impl.type == "impl_item"
        and impl.child_by_field_name("trait") is not None
    )


def _functions(root: ts.Node) -> Iterator[ts.Node]:
    for node in syn.walk(root):
        if node.type == "function_item":
            yield node


def recursive_functions(root: ts.Node) -> set[str]:
    """Names of functions on a cycle of the call graph (calls and references by name)."""
    bodies: dict[str, list[ts.Node]] = {}
    for fn in _functions(root):
        name_node = fn.child_by_field_name("name")
        body = fn.child_by_field_name("body")
        if name_node is not None and body is not None:
            bodies.setdefault(syn.text(name_node), []).append(body)
    edges: dict[str, set[str]] = {}
    for name, blocks in bodies.items():
        out = edges.setdefault(name, set())
        for block in blocks:
            for leaf in syn.walk(block):
                if leaf.type in ("identifier", "field_identifier") and syn.text(leaf) in bodies:
                    out.add(syn.text(leaf))
    # A name is recursive when it can reach itself.
    recursive: set[str] = set()
    for start, targets in edges.items():
        stack = list(targets)
        seen: set[str] = set()
        while stack:
            n = stack.pop()
            if n == start:
                recursive.add(start)
                break
            if n in seen:
                continue
            seen.add(n)
            stack.extend(edges.get(n, ()))
    return recursive


# `a.f(x)` is a method call (a `field_expression` callee); calling a field that holds a
# closure takes parentheses, `(a.f)(x)`.
_VALUE_CALLEES = (
    "parenthesized_expression",
    "index_expression",
    "call_expression",
)
_BINDERS = {"parameter": "pattern", "let_declaration": "pattern", "closure_parameters": None}


def value_callers(root: ts.Node) -> set[int]:
    """Start bytes of the functions and closures that call a value (not a named function):
    every cycle of calls that names no function passes through one of them."""
    bound: set[str] = set()
    for node in syn.walk(root):
        if node.type in _BINDERS:
            field = _BINDERS[node.type]
            pattern = node.child_by_field_name(field) if field else node
            for leaf in syn.walk(pattern) if pattern is not None else ():
                if leaf.type == "identifier":
                    bound.add(syn.text(leaf))
    callers: set[int] = set()
    for node in syn.walk(root):
        if node.type != "call_expression":
            continue
        callee = node.child_by_field_name("function")
        if callee is None or not (
            callee.type in _VALUE_CALLEES
            or (callee.type == "identifier" and syn.text(callee) in bound)
        ):
            continue
        p = node.parent
        while p is not None and p.type not in ("function_item", "closure_expression"):
            p = p.parent
        if p is not None:
            callers.add(p.start_byte)
    return callers


def instrument(code: str) -> Instrumented:
    """Inserts the guards into ``code`` (see the module docstring)."""
    tree = syn.parse(code)
    recursive = recursive_functions(tree.root_node)
    callers = value_callers(tree.root_node)
    inserts: list[tuple[int, str]] = []

    def after_brace(block: ts.Node | None, text: str) -> None:
        if block is not None and block.type == "block" and block.child_count > 0:
            inserts.append((block.children[0].end_byte, text))

    for node in syn.walk(tree.root_node):
        if node.has_error or _in_const_context(node):
            continue
        if node.type in _LOOPS:
            after_brace(node.child_by_field_name("body"), TICK)
        elif node.type == "closure_expression":
            body = node.child_by_field_name("body")
            if body is None:
                continue
            guard = ENTER if node.start_byte in callers else TICK
            if body.type == "block":
                after_brace(body, guard)
            else:
                inserts.append((body.start_byte, "{ " + guard + " "))
                inserts.append((body.end_byte, " }"))
        elif node.type == "function_item" and not _is_const_fn(node):
            name = node.child_by_field_name("name")
            if (
                (name is not None and syn.text(name) in recursive)
                or _in_trait_impl(node)
                or node.start_byte in callers
            ):
                after_brace(node.child_by_field_name("body"), ENTER)
    inserts.sort(key=lambda item: item[0])
    # The compiled text is the map's: what is compiled and how it maps back cannot disagree.
    compiled = SourceMap.with_insertions(code, inserts).compiled.text
    return Instrumented(code=compiled, insertions=tuple(inserts))
