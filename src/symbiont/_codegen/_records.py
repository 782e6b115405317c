"""Generated glue for the prelude's shared types: layout assertions, trait impls, and the
argument and result lines of entry points that take or return them (see rt_types.rs).

The layout Python assumes for a ``#[repr(C)]`` struct (_decl/_records.py) is asserted against
rustc's in constant items: size, alignment and every field offset, and each field's type by a
typed borrow. A candidate that redefines the struct differently, or a prelude whose layout
Python got wrong, fails to build; it never corrupts memory.
"""

from __future__ import annotations

from symbiont._decl import Declarations, EnumDecl, RustType, StructDecl

_ERR = "Err(()) => return std::ptr::null_mut()"


def _bytes_literal(text: str) -> str:
    return 'b"' + text.replace("\\", "\\\\").replace('"', '\\"') + '\\0"'


def _struct_items(s: StructDecl) -> str:
    n = s.name
    checks = [
        f"    assert!(std::mem::size_of::<{n}>() == {s.size}, "
        f'"`{n}` is not laid out as declared: its size differs");',
        f"    assert!(std::mem::align_of::<{n}>() == {s.align}, "
        f'"`{n}` is not laid out as declared: its alignment differs");',
    ]
    typed = []
    for f in s.fields:
        checks.append(
            f"    assert!(std::mem::offset_of!({n}, {f.name}) == {f.offset}, "
            f'"`{n}.{f.name}` is not at the declared offset: is `{n}` #[repr(C)]?");'
        )
        typed.append(f"    let _: &{f.rust} = &s.{f.name};")
    bools = ", ".join(map(str, s.bool_offsets()))
    return "\n".join(
        [
            "const _: () = {",
            *checks,
            "};",
            f"fn __symbiont_fields_{n}(s: &{n}) {{",
            *typed,
            "}",
            f"unsafe impl rt::Struct for {n} {{",
            f"    const FORMAT: &'static [u8] = {_bytes_literal(s.buffer_format)};",
            f"    const BOOLS: &'static [usize] = &[{bools}];",
            "}",
        ]
    )


def _enum_items(e: EnumDecl) -> str:
    n, r = e.name, e.repr
    checks = [
        f"    assert!(std::mem::size_of::<{n}>() == std::mem::size_of::<{r}>(), "
        f'"`{n}` is not #[repr({r})]");'
    ]
    checks += [
        f"    assert!({n}::{v} as {r} == {value}{r}, "
        f'"`{n}::{v}` does not have the declared value {value}");'
        for v, value in e.variants
    ]
    values = ", ".join(f"{value}{r}" for _, value in e.variants)
    return "\n".join(
        [
            "const _: () = {",
            *checks,
            "};",
            f"unsafe impl rt::Enum for {n} {{",
            f"    type Repr = {r};",
            f"    const VALUES: &'static [{r}] = &[{values}];",
            "}",
        ]
    )


def types_module(decls: Declarations) -> str:
    """A module of the generated crate holding the shared types' assertions and impls (empty
    when the prelude declares none). It sees the crate root, so a candidate's own definition
    of a type is the one checked."""
    items = [_struct_items(s) for s in decls.structs] + [_enum_items(e) for e in decls.enums]
    if not items:
        return ""
    body = "\n\n".join(items)
    return (
        "#[doc(hidden)]\n#[allow(unused_imports)]\nmod __symbiont_types {\n"
        "    use super::*;\n    use super::__symbiont_rt as rt;\n\n" + body + "\n}\n"
    )


def shared(t: RustType) -> bool:
    """Whether a parameter type involves a shared struct or enum (generated here)."""
    if t.kind in ("struct", "enum", "ref"):
        return True
    return t.kind in ("slice", "mut_ref") and t.elem is not None and t.elem.kind == "struct"


def param_lines(
    index: int, pi: int, t: RustType, o: str
) -> tuple[list[str], str | None, str | None]:
    """Lines acquiring parameter ``pi`` (as ``a{pi}``), its memory span for the overlap check
    (or None) and the line writing it back after the call (or None)."""
    a = f"a{pi}"
    where = f"&mut pin, {index}, {pi}, {o}"
    if t.kind == "enum":
        return ([f"    let {a}: crate::{t.name} = match rt::enum_arg::<crate::{t.name}>({where}) "
                 f"{{ Ok(v) => v, {_ERR} }};"], None, None)  # fmt: skip
    assert t.elem is not None or t.kind == "struct"
    s = f"crate::{t.name if t.kind == 'struct' else t.elem.name}"  # type: ignore[union-attr]
    if t.kind == "struct":
        return ([f"    let {a}: {s} = match rt::rec_value::<{s}>({where}) "
                 f"{{ Ok(v) => v, {_ERR} }};"], None, None)  # fmt: skip
    if t.kind == "ref":
        return ([f"    let r{pi}: {s} = match rt::rec_value::<{s}>({where}) "
                 f"{{ Ok(v) => v, {_ERR} }};", f"    let {a}: &{s} = &r{pi};"],
                None, None)  # fmt: skip
    if t.kind == "slice":
        fn = "rec_slice_mut" if t.mutable else "rec_slice"
        ref = "&mut " if t.mutable else "&"
        return (
            [f"    let mut v{pi} = rt::View::new();",
             f"    let {a}: {ref}[{s}] = match rt::{fn}::<{s}>({where}, &mut v{pi}) "
             f"{{ Ok(v) => v, {_ERR} }};"],
            f"({pi}, v{pi}.bytes(), {'true' if t.mutable else 'false'})",
            None,
        )  # fmt: skip
    # &mut S
    return (
        [f"    let mut v{pi} = rt::View::new();",
         f"    let mut t{pi} = std::mem::MaybeUninit::<{s}>::uninit();",
         f"    let {a}: &mut {s} = match rt::rec_mut::<{s}>({where}, &mut v{pi}, &mut t{pi}) "
         f"{{ Ok(v) => v, {_ERR} }};"],
        f"({pi}, v{pi}.bytes(), true)",
        f"    if !rt::rec_back::<{s}>({where}, &v{pi}, t{pi}.as_ptr()) "
        "{ return std::ptr::null_mut(); }",
    )  # fmt: skip


def finish_line(index: int, ret: RustType) -> str | None:
    """The last line of an entry returning a shared type (None: the ordinary `rt::finish`)."""
    if ret.kind == "struct":
        return f"    rt::finish_record::<crate::{ret.name}>(pin, {index}, r, stopped, timeout_ns)"
    if ret.kind == "enum":
        return f"    rt::finish_enum::<crate::{ret.name}>(pin, {index}, r, stopped, timeout_ns)"
    return None
