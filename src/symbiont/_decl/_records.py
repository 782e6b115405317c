"""Shared types declared in the prelude: ``#[repr(C)]`` structs and fieldless enums.

A struct crosses the boundary as the bytes numpy holds for a structured dtype, so Python must
know its layout exactly. The layout computed here follows C's rules (each field at the next
multiple of its alignment, the size rounded up to the largest alignment), which is what
``#[repr(C)]`` promises; the generated crate asserts every offset, the size and the alignment
against rustc's own, so a disagreement is a build error rather than corrupted memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from symbiont._decl import _syntax as syn
from symbiont._decl._types import ELEMENT_SIZE, INTEGERS, NUMPY_DTYPE

if TYPE_CHECKING:
    import tree_sitter as ts

# Buffer-protocol type characters numpy uses for native-endian scalars.
_FORMAT_CHAR = {
    "i8": "b", "u8": "B", "i16": "h", "u16": "H", "i32": "i", "u32": "I", "i64": "l",
    "u64": "L", "isize": "l", "usize": "L", "f32": "f", "f64": "d", "bool": "?",
}  # fmt: skip

# Attributes of the record classes (rt.types.S, _load/_records.py) a field must not shadow;
# names starting with two underscores are mangled by Python in a class's slots.
RESERVED_FIELDS = frozenset({"dtype", "zeros", "to_numpy", "_decl", "_fields"})

SUPPORTED_FIELDS = (
    "numeric scalars, bool, fixed-size arrays `[T; N]` of those, and other #[repr(C)] structs "
    "made of them"
)


class TypeProblem(Exception):
    """A prelude type that cannot cross the boundary; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    """One field of a struct: a scalar (``scalar``) or a struct (``struct``), possibly inside
    fixed-size arrays of ``shape``."""

    name: str
    rust: str  # the field's type as written, e.g. ``[f32; 3]``
    scalar: str = ""
    struct: StructDecl | None = None
    shape: tuple[int, ...] = ()
    offset: int = 0

    @property
    def count(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def element_size(self) -> int:
        return self.struct.size if self.struct is not None else ELEMENT_SIZE[self.scalar]

    @property
    def align(self) -> int:
        return self.struct.align if self.struct is not None else ELEMENT_SIZE[self.scalar]

    @property
    def size(self) -> int:
        return self.element_size * self.count


@dataclass(frozen=True, slots=True, kw_only=True)
class StructDecl:
    """A ``#[repr(C)]`` struct that can cross the boundary, with its C layout."""

    name: str
    fields: tuple[Field, ...]
    size: int
    align: int
    doc: str = ""

    @property
    def buffer_format(self) -> str:
        """The buffer-protocol format numpy exports for this struct's dtype. numpy writes no
        trailing padding (the itemsize says it), and pads before a field from where the
        previous field's content ended, a nested struct's trailing padding excluded."""
        parts: list[str] = []
        at = 0
        for f in self.fields:
            parts.append("x" * (f.offset - at))
            dims = f"({','.join(map(str, f.shape))})" if f.shape else ""
            inner = f.struct.buffer_format if f.struct is not None else _FORMAT_CHAR[f.scalar]
            parts.append(f"{dims}{inner}:{f.name}:")
            at = f.offset + f.count * (
                f.struct.content_size if f.struct is not None else f.element_size
            )
        return "T{" + "".join(parts) + "}"

    @property
    def content_size(self) -> int:
        """Where the last field's content ends, as numpy's format accounts for it."""
        last = self.fields[-1]
        inner = last.struct.content_size if last.struct is not None else last.element_size
        return last.offset + last.count * inner

    def dtype_spec(self) -> dict[str, Any]:
        """The argument of ``numpy.dtype`` for this struct (nested structs included)."""
        formats: list[Any] = []
        for f in self.fields:
            base: Any = f.struct.dtype_spec() if f.struct is not None else NUMPY_DTYPE[f.scalar]
            formats.append((base, f.shape) if f.shape else base)
        return {
            "names": [f.name for f in self.fields],
            "formats": formats,
            "offsets": [f.offset for f in self.fields],
            "itemsize": self.size,
            "aligned": True,
        }

    def bool_offsets(self) -> tuple[int, ...]:
        """Offsets of every bool byte: a byte other than 0 or 1 there is not a valid value."""
        out: list[int] = []
        for f in self.fields:
            for k in range(f.count):
                base = f.offset + k * f.element_size
                if f.struct is not None:
                    out.extend(base + o for o in f.struct.bool_offsets())
                elif f.scalar == "bool":
                    out.append(base)
        return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class EnumDecl:
    """A fieldless enum with an integer ``#[repr]``: crosses as that integer."""

    name: str
    repr: str
    variants: tuple[tuple[str, int], ...]
    doc: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Variant:
    """One variant of an enum with data: its fields by name (``_0``, ``_1``... for a tuple
    variant) with their boundary types."""

    name: str
    fields: tuple[tuple[str, Any], ...] = ()  # (name, RustType)
    tuple_like: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DataEnumDecl:
    """An enum whose variants carry data: returned as one frozen dataclass per variant."""

    name: str
    variants: tuple[Variant, ...]
    doc: str = ""

    @property
    def field_types(self) -> tuple[Any, ...]:
        return tuple(t for v in self.variants for _, t in v.fields)


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsupported:
    """A prelude struct or enum that cannot cross, and why (reported if a signature uses it)."""

    name: str
    reason: str


TypeDecl = StructDecl | EnumDecl | DataEnumDecl | Unsupported

_REPR = re.compile(r"#\s*\[\s*repr\s*\(([^)]*)\)\s*\]")


def _reprs(node: ts.Node) -> list[str]:
    found: list[str] = []
    prev = node.prev_sibling
    while prev is not None and prev.type in ("line_comment", "attribute_item", "block_comment"):
        if prev.type == "attribute_item":
            for m in _REPR.finditer(syn.text(prev)):
                found.extend(x.strip() for x in m.group(1).split(","))
        prev = prev.prev_sibling
    return found


def prelude_types(root: ts.Node) -> dict[str, TypeDecl]:
    """Every struct and enum of a parsed prelude, by name, resolved to what can cross."""
    nodes = {}
    for node in root.named_children:
        if node.type in ("struct_item", "enum_item"):
            name_node = node.child_by_field_name("name")
            if name_node is not None:
                nodes[syn.text(name_node)] = node
    out: dict[str, TypeDecl] = {}

    def resolve(name: str, stack: tuple[str, ...]) -> TypeDecl:
        if name in out:
            return out[name]
        node = nodes[name]
        try:
            if node.type == "enum_item":
                decl: TypeDecl = _enum(name, node)
            else:
                decl = _struct(
                    name,
                    node,
                    lambda n: resolve(n, (*stack, name)) if n in nodes else None,
                    stack,
                )
        except TypeProblem as exc:
            decl = Unsupported(name=name, reason=str(exc))
        out[name] = decl
        return decl

    data_enums = [n for n, node in nodes.items() if node.type == "enum_item" and _has_data(node)]
    for declared in nodes:
        if declared not in data_enums:
            resolve(declared, ())
    # Enums with data last: their fields may name the structs and enums above.
    for name in data_enums:
        try:
            out[name] = _data_enum(name, nodes[name], out)
        except TypeProblem as exc:
            out[name] = Unsupported(name=name, reason=str(exc))
    return out


def _has_data(node: ts.Node) -> bool:
    body = node.child_by_field_name("body")
    return any(
        c.type in ("field_declaration_list", "ordered_field_declaration_list")
        for v in (body.named_children if body is not None else [])
        if v.type == "enum_variant"
        for c in v.children
    )


def _data_enum(name: str, node: ts.Node, types: dict[str, TypeDecl]) -> DataEnumDecl:
    from symbiont._decl._types import UnsupportedType, return_type

    body = node.child_by_field_name("body")
    variants: list[Variant] = []
    for v in body.named_children if body is not None else []:
        if v.type != "enum_variant":
            continue
        vname_node = v.child_by_field_name("name")
        vname = syn.text(vname_node) if vname_node is not None else "?"
        fields: list[tuple[str, Any]] = []
        tuple_like = False
        for c in v.children:
            if c.type == "field_declaration_list":
                pairs = [
                    (f.child_by_field_name("name"), f.child_by_field_name("type"))
                    for f in c.named_children
                    if f.type == "field_declaration"
                ]
            elif c.type == "ordered_field_declaration_list":
                tuple_like = True
                pairs = [(None, t) for t in c.named_children if t.type != "attribute_item"]
            else:
                continue
            for i, (fname, tnode) in enumerate(pairs):
                if tnode is None:
                    continue
                label = syn.text(fname) if fname is not None else f"_{i}"
                try:
                    ftype = return_type(tnode, syn.text(tnode), types)
                except UnsupportedType as exc:
                    raise TypeProblem(f"enum `{name}`, variant `{vname}`: {exc}") from None
                fields.append((label, ftype))
        variants.append(Variant(name=vname, fields=tuple(fields), tuple_like=tuple_like))
    return DataEnumDecl(name=name, variants=tuple(variants), doc=syn.doc_comment(node))


def _enum(name: str, node: ts.Node) -> EnumDecl:
    reprs = [r for r in _reprs(node) if r in INTEGERS]
    body = node.child_by_field_name("body")
    variants: list[tuple[str, int]] = []
    value = 0
    for v in body.named_children if body is not None else []:
        if v.type != "enum_variant":
            continue
        vname = v.child_by_field_name("name")
        if any(c.type in ("field_declaration_list", "ordered_field_declaration_list")
               for c in v.children):  # fmt: skip
            raise TypeProblem(
                f"enum `{name}` has variants with data: only fieldless enums with an integer "
                "#[repr] cross the boundary"
            )
        disc = v.child_by_field_name("value")
        if disc is not None:
            try:
                value = int(syn.text(disc).replace("_", ""), 0)
            except ValueError:
                raise TypeProblem(
                    f"enum `{name}`: discriminant `{syn.text(disc)}` must be an integer literal"
                ) from None
        variants.append((syn.text(vname) if vname is not None else "?", value))
        value += 1
    if not reprs:
        raise TypeProblem(
            f"enum `{name}` needs an integer representation to cross the boundary: add "
            "#[repr(u8)] (or another integer type) above it"
        )
    lo, hi = INTEGERS[reprs[0]]
    for variant, number in variants:
        if not lo <= number <= hi:
            raise TypeProblem(
                f"enum `{name}`: {variant} = {number} does not fit #[repr({reprs[0]})]"
            )
    return EnumDecl(name=name, repr=reprs[0], variants=tuple(variants), doc=syn.doc_comment(node))


def _field_type(
    node: ts.Node, resolve: Any, stack: tuple[str, ...]
) -> tuple[str, StructDecl | None, tuple[int, ...]]:
    """(scalar, struct, shape) of a field type node."""
    if node.type == "primitive_type" and syn.text(node) in ELEMENT_SIZE:
        return syn.text(node), None, ()
    if node.type == "array_type":
        elem = node.child_by_field_name("element")
        length = node.child_by_field_name("length")
        if elem is not None and length is not None and length.type == "integer_literal":
            scalar, struct, shape = _field_type(elem, resolve, stack)
            n = int(re.sub(r"_|usize$", "", syn.text(length)), 0)
            return scalar, struct, (n, *shape)
        raise TypeProblem(f"array field `{syn.text(node)}` needs an integer literal length")
    if node.type == "type_identifier":
        name = syn.text(node)
        if name in stack:
            raise TypeProblem(f"struct `{name}` contains itself")
        decl = resolve(name)
        if isinstance(decl, StructDecl):
            return "", decl, ()
        if isinstance(decl, Unsupported):
            raise TypeProblem(decl.reason)
    raise TypeProblem(f"field type `{syn.text(node)}` cannot cross; supported: {SUPPORTED_FIELDS}")


def _struct(name: str, node: ts.Node, resolve: Any, stack: tuple[str, ...]) -> StructDecl:
    if "C" not in _reprs(node):
        raise TypeProblem(
            f"struct `{name}` must be #[repr(C)] to cross the boundary (Rust may reorder the "
            "fields of any other struct): add #[repr(C)] above it"
        )
    body = node.child_by_field_name("body")
    if body is None or body.type != "field_declaration_list":
        raise TypeProblem(f"struct `{name}` needs named fields to cross the boundary")
    if any(c.type == "type_parameters" for c in node.children):
        raise TypeProblem(f"struct `{name}` is generic; only concrete structs cross")
    fields: list[Field] = []
    at = 0
    align = 1
    for fnode in body.named_children:
        if fnode.type != "field_declaration":
            continue
        fname_node = fnode.child_by_field_name("name")
        tnode = fnode.child_by_field_name("type")
        if fname_node is None or tnode is None:
            continue
        fname = syn.text(fname_node)
        if fname in RESERVED_FIELDS or fname.startswith("__"):
            raise TypeProblem(
                f"struct `{name}`, field `{fname}`: the name is taken on the Python side "
                f"(rt.types.{name}.{fname}); rename the field"
            )
        try:
            scalar, struct, shape = _field_type(tnode, resolve, (*stack, name))
        except TypeProblem as exc:
            raise TypeProblem(f"struct `{name}`, field `{fname}`: {exc}") from None
        f = Field(name=fname, rust=" ".join(syn.text(tnode).split()), scalar=scalar, struct=struct,
                  shape=shape)  # fmt: skip
        at = -(-at // f.align) * f.align
        f = Field(name=fname, rust=f.rust, scalar=scalar, struct=struct, shape=shape, offset=at)
        at += f.size
        align = max(align, f.align)
        fields.append(f)
    if not fields:
        raise TypeProblem(f"struct `{name}` has no fields; it cannot cross the boundary")
    size = -(-at // align) * align
    return StructDecl(
        name=name, fields=tuple(fields), size=size, align=align, doc=syn.doc_comment(node)
    )
