"""Parsing the user's declaration block into functions (evolvable) and a prelude (fixed)."""

from __future__ import annotations

import keyword
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from symbiont._decl import _syntax as syn
from symbiont._decl._types import RustType, UnsupportedType, param_type, return_type
from symbiont._errors import DeclarationError

if TYPE_CHECKING:
    import tree_sitter as ts


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    """One parameter: its name in the declaration and its boundary type."""

    name: str
    type: RustType
    type_text: str  # token-normalised spelling, compared by the validator

    def __str__(self) -> str:
        return f"{self.name}: {self.type.rust}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionDecl:
    """A declared evolvable function."""

    name: str
    params: tuple[Param, ...]
    ret: RustType
    ret_text: str  # token-normalised spelling of the return type; "" for none
    doc: str
    has_default: bool
    source: str  # the item as declared (doc comment, attributes, signature, body or `;`)

    @property
    def signature(self) -> str:
        """Canonical Rust signature, e.g. ``fn step(counter: &mut usize)``."""
        params = ", ".join(str(p) for p in self.params)
        ret = "" if self.ret.kind == "unit" else f" -> {self.ret.rust}"
        return f"fn {self.name}({params}){ret}"

    @property
    def default_item(self) -> str:
        """The item as compiled into revision 0."""
        if self.has_default:
            return self.source
        stub = f'{{ unimplemented!("`{self.name}` has no default body yet: evolve it first") }}'
        head = self.source.rstrip().removesuffix(";").rstrip()
        return f"{head} {stub}"

    def __str__(self) -> str:
        return self.signature


@dataclass(frozen=True, slots=True, kw_only=True)
class Declarations:
    """The result of :func:`evolvable`: evolvable functions plus the fixed prelude.

    ``prelude`` holds every non-function item (consts, ``#[repr(C)]`` structs, enums, ``use``
    lines, type aliases); it is compiled into every revision and shown to the LLM as given.
    """

    source: str
    functions: tuple[FunctionDecl, ...]
    prelude: str
    prelude_names: frozenset[str] = field(default_factory=frozenset)

    def __getitem__(self, name: str) -> FunctionDecl:
        for f in self.functions:
            if f.name == name:
                return f
        raise KeyError(f"no declared function {name!r}; declared: {', '.join(self.names)}")

    def __iter__(self) -> Iterator[FunctionDecl]:
        return iter(self.functions)

    def __len__(self) -> int:
        return len(self.functions)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.functions)

    @property
    def default_code(self) -> str:
        """The source of revision 0: every function with its default body."""
        return "\n\n".join(f.default_item for f in self.functions) + "\n"

    @property
    def signatures_text(self) -> str:
        """The declared functions as a Rust listing with doc comments and no bodies."""
        parts = []
        for f in self.functions:
            doc = "".join(f"/// {line}\n" if line else "///\n" for line in f.doc.splitlines())
            parts.append(f"{doc}{f.signature}")
        return "\n\n".join(parts)


def _fail(source: str, node: ts.Node, what: str) -> DeclarationError:
    row = node.start_point[0]
    line = source.splitlines()[row] if source.splitlines() else ""
    return DeclarationError(f"{what}\n  line {row + 1}: {line.strip()}")


_NAMED_ITEMS = {
    "const_item",
    "struct_item",
    "enum_item",
    "type_item",
    "union_item",
    "trait_item",
    "mod_item",
    "static_item",
}


def item_name(node: ts.Node) -> str | None:
    if node.type in _NAMED_ITEMS:
        name = node.child_by_field_name("name")
        return syn.text(name) if name is not None else None
    return None


def function_parts(
    node: ts.Node,
) -> tuple[str, list[ts.Node], ts.Node | None, list[str]]:
    """Name, parameter nodes, return-type node and the problems that rule the item out.

    Problems are phrased for both declarations and candidates: generics, `self`, qualifiers
    (`async`, `unsafe`, `extern`, `const`) and variadics.
    """
    name_node = node.child_by_field_name("name")
    name = syn.text(name_node) if name_node is not None else "?"
    problems: list[str] = []
    for child in node.children:
        if child.type == "function_modifiers":
            problems.extend(
                f"is `{syn.text(m)}`" if m.type != "extern_modifier" else "is `extern`"
                for m in child.children
            )
        elif child.type == "type_parameters":
            problems.append(f"has generic parameters `{syn.text(child)}`")
        elif child.type == "where_clause":
            problems.append("has a `where` clause")
    params_node = node.child_by_field_name("parameters")
    params: list[ts.Node] = []
    if params_node is not None:
        for p in params_node.named_children:
            if p.type == "self_parameter":
                problems.append("takes `self`: declare free functions only")
            elif p.type == "variadic_parameter":
                problems.append("is variadic")
            elif p.type == "parameter":
                params.append(p)
            elif p.type not in ("line_comment", "block_comment", "attribute_item"):
                problems.append(f"has an unsupported parameter `{syn.text(p)}`")
    ret = node.child_by_field_name("return_type")
    return name, params, ret, problems


def param_name(p: ts.Node, index: int) -> str:
    pattern = p.child_by_field_name("pattern")
    if pattern is not None and pattern.type == "identifier":
        return syn.text(pattern)
    return f"arg{index}"


def evolvable(source: str) -> Declarations:
    """Parse one Rust source block declaring evolvable functions and their shared prelude.

    Every function (with a default body, or a signature ending in ``;``) is evolvable; every
    other item (consts, ``#[repr(C)]`` structs, enums, ``use`` lines) is a prelude compiled into
    every revision. Raises :class:`DeclarationError` naming the function and the problem.
    """
    if not isinstance(source, str):
        raise DeclarationError(
            f"evolvable() takes Rust source as a str, got {type(source).__name__}"
        )
    tree = syn.parse(source)
    problems = syn.syntax_problems(tree, source)
    if problems:
        details = "\n".join(p.render() for p in problems)
        raise DeclarationError(f"the declaration block does not parse as Rust:\n{details}")
    functions: list[FunctionDecl] = []
    prelude_parts: list[str] = []
    prelude_names: set[str] = set()
    root = tree.root_node
    raw = source.encode("utf-8")
    for node in root.named_children:
        if node.type in ("line_comment", "block_comment", "attribute_item"):
            continue
        start = syn.item_start(node)
        item_src = raw[start : node.end_byte].decode("utf-8")
        if node.type in ("function_item", "function_signature_item"):
            functions.append(_function(source, node, item_src))
        elif node.type == "inner_attribute_item":
            raise _fail(source, node, "inner attributes (`#![...]`) cannot be declared")
        elif node.type in ("macro_invocation", "macro_definition"):
            raise _fail(source, node, "macros cannot be declared in the prelude")
        else:
            prelude_parts.append(item_src)
            name = item_name(node)
            if name:
                prelude_names.add(name)
    if not functions:
        raise DeclarationError(
            "the declaration block declares no function: write at least one "
            "`fn name(args) -> ret { default body }` or `fn name(args) -> ret;`"
        )
    seen: set[str] = set()
    for f in functions:
        if f.name in seen:
            raise DeclarationError(f"function `{f.name}` is declared twice")
        if f.name in prelude_names:
            raise DeclarationError(f"`{f.name}` is declared both as a function and a prelude item")
        seen.add(f.name)
    prelude = "\n\n".join(prelude_parts)
    return Declarations(
        source=source,
        functions=tuple(functions),
        prelude=prelude + ("\n" if prelude else ""),
        prelude_names=frozenset(prelude_names),
    )


def _function(source: str, node: ts.Node, item_src: str) -> FunctionDecl:
    name, param_nodes, ret_node, problems = function_parts(node)
    if problems:
        raise _fail(source, node, f"function `{name}` {problems[0]}")
    if name.startswith("__symbiont") or keyword.iskeyword(name):
        raise _fail(source, node, f"function `{name}`: this name is reserved")
    params: list[Param] = []
    for i, p in enumerate(param_nodes):
        pname = param_name(p, i)
        type_node = p.child_by_field_name("type")
        if type_node is None:
            raise _fail(source, node, f"function `{name}`: parameter {i + 1} has no type")
        try:
            ptype = param_type(type_node, syn.text(type_node))
        except UnsupportedType as exc:
            raise _fail(source, node, f"function `{name}`, parameter `{pname}`: {exc}") from None
        params.append(Param(name=pname, type=ptype, type_text=syn.normalise(type_node)))
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise _fail(source, node, f"function `{name}` repeats a parameter name")
    try:
        ret = return_type(ret_node, syn.text(ret_node) if ret_node is not None else "")
    except UnsupportedType as exc:
        raise _fail(source, node, f"function `{name}`, return type: {exc}") from None
    ret_text = "" if ret_node is None or ret.kind == "unit" else syn.normalise(ret_node)
    has_default = node.type == "function_item"
    return FunctionDecl(
        name=name,
        params=tuple(params),
        ret=ret,
        ret_text=ret_text,
        doc=syn.doc_comment(node),
        has_default=has_default,
        source=item_src,
    )
