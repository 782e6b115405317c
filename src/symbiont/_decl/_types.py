"""Boundary types: the Rust types that can cross between Python and a native function.

| Rust                         | Python                                                      |
|------------------------------|-------------------------------------------------------------|
| i8..i64, u8..u64, isize/usize | int (range-checked)                                         |
| f32, f64                     | float (or int)                                              |
| bool                         | bool                                                        |
| char                         | 1-character str                                             |
| &[T], &mut [T] (numeric T)   | any C-contiguous buffer of T: numpy, array.array, bytes...  |
| &mut T (scalar T)            | symbiont.Cell, or a writable 1-element buffer of T          |
| &str (argument)              | str                                                         |
| String (return)              | str                                                         |
| () / no return               | None                                                        |
| Option<T> (scalar/struct/enum T) | None or T (argument and return)                          |
| tuples (return)              | tuple                                                       |
| Vec<T> (return)              | numpy array (numeric/bool T, or a struct's dtype); char: list |
| &[[T; N]], &mut [[T; N]]     | C-contiguous array of T with shape (n, N)                   |
| #[repr(C)] struct S          | numpy record / structured array of its dtype (_records.py)  |
|   S, &S, &mut S, &[S], &mut [S], S returned                                               |
| fieldless enum, int #[repr]  | enum.IntEnum member (or int)                                |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import tree_sitter as ts

INTEGERS: dict[str, tuple[int, int]] = {
    "i8": (-(2**7), 2**7 - 1),
    "i16": (-(2**15), 2**15 - 1),
    "i32": (-(2**31), 2**31 - 1),
    "i64": (-(2**63), 2**63 - 1),
    "isize": (-(2**63), 2**63 - 1),
    "u8": (0, 2**8 - 1),
    "u16": (0, 2**16 - 1),
    "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
    "usize": (0, 2**64 - 1),
}
FLOATS = ("f32", "f64")
SCALARS = (*INTEGERS, *FLOATS, "bool", "char")
NUMERIC = (*INTEGERS, *FLOATS)

# Size in bytes and the buffer-protocol format characters accepted for each element type.
# Integer codes are accepted by signedness and size, so numpy's 'l' for int64 on Linux matches.
ELEMENT_SIZE: dict[str, int] = {
    "i8": 1, "u8": 1, "i16": 2, "u16": 2, "i32": 4, "u32": 4, "f32": 4,
    "i64": 8, "u64": 8, "isize": 8, "usize": 8, "f64": 8, "bool": 1,
}  # fmt: skip
NUMPY_DTYPE: dict[str, str] = {
    "i8": "int8", "u8": "uint8", "i16": "int16", "u16": "uint16", "i32": "int32",
    "u32": "uint32", "i64": "int64", "u64": "uint64", "isize": "int64", "usize": "uint64",
    "f32": "float32", "f64": "float64", "bool": "bool",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class RustType:
    """A boundary type.

    ``kind`` is one of ``scalar`` (``name`` is the primitive), ``slice`` (``elem`` scalar,
    ``mutable``), ``mut_ref`` (``&mut`` scalar), ``str`` (``&str``), ``string``, ``unit``,
    ``option`` (``elem``), ``tuple`` (``items``), ``vec`` (``elem``), ``struct`` (a
    ``#[repr(C)]`` struct of the prelude by value; ``name``, ``decl`` its StructDecl), ``enum``
    (a fieldless enum; ``decl`` its EnumDecl), ``ref`` (``&S`` for a struct ``elem``), ``array``
    (``[elem; length]``, only as the row of a slice).
    ``&mut S`` is a ``mut_ref`` and ``&[S]`` a ``slice`` whose ``elem`` is a struct.
    """

    kind: Literal[
        "scalar", "slice", "mut_ref", "str", "string", "unit", "option", "tuple", "vec",
        "struct", "enum", "ref", "array",
    ]  # fmt: skip
    name: str = ""
    elem: RustType | None = None
    items: tuple[RustType, ...] = ()
    mutable: bool = False
    length: int = 0  # of an ``array`` ``[elem; length]`` (a row of ``&[[f64; 3]]``)
    decl: Any = None  # StructDecl / EnumDecl (see _records.py) for ``struct`` and ``enum``

    @property
    def rust(self) -> str:
        """Canonical Rust spelling."""
        match self.kind:
            case "scalar":
                return self.name
            case "slice":
                assert self.elem is not None
                return f"&{'mut ' if self.mutable else ''}[{self.elem.rust}]"
            case "mut_ref":
                assert self.elem is not None
                return f"&mut {self.elem.rust}"
            case "ref":
                assert self.elem is not None
                return f"&{self.elem.rust}"
            case "struct" | "enum":
                return self.name
            case "array":
                assert self.elem is not None
                return f"[{self.elem.rust}; {self.length}]"
            case "str":
                return "&str"
            case "string":
                return "String"
            case "unit":
                return "()"
            case "option":
                assert self.elem is not None
                return f"Option<{self.elem.rust}>"
            case "vec":
                assert self.elem is not None
                return f"Vec<{self.elem.rust}>"
            case "tuple":
                inner = ", ".join(t.rust for t in self.items)
                return f"({inner},)" if len(self.items) == 1 else f"({inner})"
        raise AssertionError(self.kind)

    def __str__(self) -> str:
        return self.rust

    @property
    def is_scalar(self) -> bool:
        return self.kind == "scalar"

    @property
    def numeric(self) -> bool:
        return self.kind == "scalar" and self.name in NUMERIC

    @property
    def is_struct(self) -> bool:
        return self.kind == "struct"


def scalar(name: str) -> RustType:
    return RustType("scalar", name=name)


_SUPPORTED_PARAMS = (
    "integers (i8..i64, u8..u64, isize, usize), f32, f64, bool, char, &str, "
    "&[T] and &mut [T] for numeric T, rows &[[T; N]] and &mut [[T; N]], &mut T for scalar T, "
    "Option<T> for a scalar, struct or enum T, and for a #[repr(C)] struct S of "
    "the prelude: S, &S, &mut S, &[S], &mut [S]; a fieldless enum with an integer #[repr]"
)
_SUPPORTED_RETURNS = (
    "integers, f32, f64, bool, char, String, (), Option<T>, tuples, Vec<T> of scalars or "
    "#[repr(C)] structs, a #[repr(C)] struct of the prelude, an enum of the prelude"
)


class UnsupportedType(Exception):
    """Raised by the converters below; turned into a DeclarationError by the caller."""


def named_type(name: str, types: Mapping[str, Any]) -> RustType | None:
    """The boundary type of a prelude struct or enum called ``name`` (None: not declared)."""
    decl = types.get(name)
    if decl is None:
        return None
    kind = type(decl).__name__
    if kind == "StructDecl":
        return RustType("struct", name=name, decl=decl)
    if kind in ("EnumDecl", "DataEnumDecl"):
        return RustType("enum", name=name, decl=decl)
    raise UnsupportedType(decl.reason)


def param_type(node: ts.Node, rendered: str, types: Mapping[str, Any] | None = None) -> RustType:
    """The boundary type of a parameter's type node; ``types`` holds the prelude's structs and
    enums by name (see _records.py)."""
    types = types or {}
    t = node.type
    if t == "type_identifier":
        named = named_type(rendered, types)
        if named is not None and type(named.decl).__name__ == "DataEnumDecl":
            raise UnsupportedType(
                f"the enum `{rendered}` has variants with data: it can be returned, not taken"
            )
        if named is not None:
            return named
    if t == "primitive_type":
        if rendered in SCALARS:
            return scalar(rendered)
        if rendered == "str":
            raise UnsupportedType("a bare `str` is unsized: take `&str`")
    if t == "reference_type":
        if any(c.type == "lifetime" for c in node.children):
            raise UnsupportedType("explicit lifetimes are not supported: write the reference bare")
        mutable = any(c.type == "mutable_specifier" for c in node.children)
        inner = node.child_by_field_name("type")
        if inner is not None:
            inner_text = inner.text.decode() if inner.text else ""
            if inner.type == "array_type" and inner.child_by_field_name("length") is None:
                elem_node = inner.child_by_field_name("element")
                elem = elem_node.text.decode() if elem_node and elem_node.text else ""
                if elem in NUMERIC or elem == "bool":
                    return RustType("slice", elem=scalar(elem), mutable=mutable)
                if elem_node is not None and elem_node.type == "array_type":
                    return RustType("slice", elem=_row(elem_node), mutable=mutable)
                named = named_type(elem, types)
                if named is not None and named.is_struct:
                    return RustType("slice", elem=named, mutable=mutable)
                raise UnsupportedType(f"slices must hold a numeric type or bool, not `{elem}`")
            if inner.type == "primitive_type" and inner_text == "str" and not mutable:
                return RustType("str")
            if inner.type == "primitive_type" and inner_text in SCALARS and mutable:
                return RustType("mut_ref", elem=scalar(inner_text))
            if inner.type == "primitive_type" and inner_text in SCALARS:
                raise UnsupportedType(f"take `{inner_text}` by value instead of `&{inner_text}`")
            if inner.type == "type_identifier":
                named = named_type(inner_text, types)
                if named is not None and named.is_struct:
                    return RustType("mut_ref" if mutable else "ref", elem=named)
                if named is not None:
                    raise UnsupportedType(f"take the enum `{inner_text}` by value")
    if t == "generic_type":
        base = node.child_by_field_name("type")
        args = node.child_by_field_name("type_arguments")
        arg_nodes = [c for c in args.named_children] if args else []
        if base is not None and syn_text(base) == "Option" and len(arg_nodes) == 1:
            inner_t = param_type(arg_nodes[0], syn_text(arg_nodes[0]), types)
            if inner_t.kind in ("scalar", "struct", "enum"):
                return RustType("option", elem=inner_t)
            raise UnsupportedType(
                f"`Option` parameters must hold a scalar, a struct or an enum, not `{inner_t.rust}`"
            )
    raise UnsupportedType(f"`{rendered}` cannot be a parameter; supported: {_SUPPORTED_PARAMS}")


def _row(node: ts.Node) -> RustType:
    """``[T; N]``, the row of a ``&[[T; N]]`` parameter: numeric T, a literal N > 0."""
    elem_node = node.child_by_field_name("element")
    length = node.child_by_field_name("length")
    elem = syn_text(elem_node) if elem_node is not None else ""
    text = syn_text(length).replace("_", "").removesuffix("usize") if length is not None else ""
    if elem not in NUMERIC and elem != "bool":
        raise UnsupportedType(f"rows `[{elem}; N]` must hold a numeric type or bool")
    try:
        n = int(text, 0)
    except ValueError:
        raise UnsupportedType(
            f"the row length of `{syn_text(node)}` must be an integer literal"
        ) from None
    if n <= 0:
        raise UnsupportedType(f"the rows of `{syn_text(node)}` must not be empty")
    return RustType("array", elem=scalar(elem), length=n)


def return_type(
    node: ts.Node | None, rendered: str, types: Mapping[str, Any] | None = None
) -> RustType:
    """The boundary type of a return type node (``None`` for no return type)."""
    if node is None:
        return RustType("unit")
    types = types or {}
    t = node.type
    if t == "type_identifier":
        named = named_type(rendered, types)
        if named is not None:
            return named
    if t == "unit_type":
        return RustType("unit")
    if t == "primitive_type" and rendered in SCALARS:
        return scalar(rendered)
    if t == "type_identifier" and rendered == "String":
        return RustType("string")
    if t == "tuple_type":
        items = [c for c in node.named_children]
        return RustType(
            "tuple",
            items=tuple(return_type(c, syn_text(c), types) for c in items),
        )
    if t == "generic_type":
        base = node.child_by_field_name("type")
        args = node.child_by_field_name("type_arguments")
        base_text = base.text.decode() if base and base.text else ""
        arg_nodes = [c for c in args.named_children] if args else []
        if base_text in ("Option", "Vec") and len(arg_nodes) == 1:
            arg = arg_nodes[0]
            inner = return_type(arg, syn_text(arg), types)
            if base_text == "Option":
                return RustType("option", elem=inner)
            if inner.is_scalar or inner.is_struct:
                return RustType("vec", elem=inner)
            raise UnsupportedType(
                f"`Vec` returns must hold a scalar type or a #[repr(C)] struct, not `{inner.rust}`"
            )
    raise UnsupportedType(f"`{rendered}` cannot be returned; supported: {_SUPPORTED_RETURNS}")


def syn_text(node: ts.Node) -> str:
    return node.text.decode() if node.text else ""
