"""Generated glue for the prelude's shared types: layout assertions, trait impls, and the
argument and result lines of entry points that take or return them (see rt_types.rs).

The layout Python assumes for a ``#[repr(C)]`` struct (_decl/_records.py) is asserted against
rustc's in constant items: size, alignment and every field offset, and each field's type by a
typed borrow. A candidate that redefines the struct differently, or a prelude whose layout
Python got wrong, fails to build; it never corrupts memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from symbiont._decl import DataEnumDecl, Declarations, EnumDecl, RustType, StructDecl

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
    light = f"__SYMBIONT_LIGHT_{n}"
    # CPython lays out the slots of a class in sorted name order (_load/_records.py checks).
    slots = sorted(f.name for f in s.fields)
    reads = ", ".join(f"{f.name}: rt::slot(p, {slots.index(f.name)})?" for f in s.fields)
    items = ", ".join(f"rt::Field::to_field(&self.{name}, k)" for name in slots)
    return "\n".join(
        [
            "const _: () = {",
            *checks,
            "};",
            f"fn __symbiont_fields_{n}(s: &{n}) {{",
            *typed,
            "}",
            f"static {light}: rt::LightClass = rt::LightClass::new();",
            f"unsafe impl rt::Struct for {n} {{",
            f"    const FORMAT: &'static [u8] = {_bytes_literal(s.buffer_format)};",
            f"    const BOOLS: &'static [usize] = &[{bools}];",
            f'    const NAME: &\'static std::ffi::CStr = c"{n}";',
            f"    fn light() -> &'static rt::LightClass {{ &{light} }}",
            "    unsafe fn write_light(&self, o: rt::Obj, k: rt::Obj) -> bool {",
            f"        rt::light_set(&{light}, o, &[{items}])",
            "    }",
            "}",
            f"impl rt::Field for {n} {{",
            "    #[inline(always)]",
            "    unsafe fn from_field(o: rt::Obj) -> Option<Self> {",
            f"        let p = {light}.slots(o)?;",
            f"        Some({n} {{ {reads} }})",
            "    }",
            "    unsafe fn to_field(&self, k: rt::Obj) -> rt::Obj {",
            f'        if !rt::light_ready(&{light}, k, c"{n}") {{ return std::ptr::null_mut(); }}',
            f"        rt::light_new(&{light}, &[{items}])",
            "    }",
            "}",
            f"impl rt::Ret for {n} {{",
            "    const CONTAINER: bool = true;",
            "    unsafe fn into_py(self) -> rt::Obj { rt::no_keeper() }",
            "    unsafe fn into_py_k(self, k: rt::Obj) -> rt::Obj { "
            "rt::Field::to_field(&self, k) }",
            "}",
            f"impl rt::VecItem for {n} {{",
            f"    unsafe fn vec_into_py(v: Vec<{n}>, k: rt::Obj) -> rt::Obj {{ "
            f'rt::vec_array(v, k, c"{n}") }}',
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
            f"impl rt::Ret for {n} {{",
            "    const CONTAINER: bool = true;",
            "    unsafe fn into_py(self) -> rt::Obj { rt::no_keeper() }",
            "    unsafe fn into_py_k(self, k: rt::Obj) -> rt::Obj { "
            f'rt::enum_py::<{n}>(k, self, c"{n}") }}',
            "}",
        ]
    )


def _data_enum_items(e: DataEnumDecl) -> str:
    """A data enum result: each variant's fields converted (structs and enums through the
    keeper too) and handed to the keeper, which builds the variant's dataclass."""
    n = e.name
    arms = []
    for i, v in enumerate(e.variants):
        binds = [f"f{j}" for j in range(len(v.fields))]
        if not v.fields:
            pattern = f"{n}::{v.name}"
        elif v.tuple_like:
            pattern = f"{n}::{v.name}({', '.join(binds)})"
        else:
            named = ", ".join(f"{f}: {b}" for (f, _), b in zip(v.fields, binds, strict=True))
            pattern = f"{n}::{v.name} {{ {named} }}"
        items = ", ".join(f"rt::Ret::into_py_k({b}, k)" for b in binds)
        arms.append(f'            {pattern} => rt::variant_py(k, c"{n}", {i}, &[{items}]),')
    return "\n".join(
        [
            f"impl rt::Ret for {n} {{",
            "    const CONTAINER: bool = true;",
            "    unsafe fn into_py(self) -> rt::Obj { rt::no_keeper() }",
            "    unsafe fn into_py_k(self, k: rt::Obj) -> rt::Obj {",
            "        match self {",
            *arms,
            "        }",
            "    }",
            "}",
        ]
    )


def types_module(decls: Declarations) -> str:
    """A module holding the shared types' assertions and impls (empty when the prelude declares
    none), nested in the glue module, the one place that names the support crate `rt`. It
    glob-imports the crate root, so a candidate's own definition of a type is the one checked."""
    items = [_struct_items(s) for s in decls.structs] + [_enum_items(e) for e in decls.enums]
    items += [_data_enum_items(e) for e in decls.data_enums]
    if not items:
        return ""
    body = "\n\n".join(items)
    return (
        "#[allow(unused_imports)]\nmod __symbiont_types {\n"
        "    use crate::*;\n    use super::rt;\n\n" + body + "\n}\n"
    )


def shared(t: RustType) -> bool:
    """Whether a parameter type is acquired by the lines generated here: shared structs and
    enums, ``Option`` arguments and rows of fixed size (``&[[f64; 3]]``)."""
    if t.kind in ("struct", "enum", "ref", "option"):
        return True
    return (
        t.kind in ("slice", "mut_ref") and t.elem is not None and t.elem.kind in ("struct", "array")
    )


def _value(t: RustType, where: str) -> str:
    """The expression acquiring a by-value argument of type ``t`` (a Result)."""
    if t.kind == "enum":
        return f"rt::enum_arg::<crate::{t.name}>({where})"
    if t.kind == "struct":
        return f"rt::rec_value::<crate::{t.name}>({where})"
    return f"rt::arg::<{t.rust}>({where})"


@dataclass(frozen=True, slots=True)
class ParamLines:
    """How an entry point acquires one shared-type parameter (as ``a{pi}``)."""

    acquire: list[str]
    span: str | None = None  # its memory, for the overlap check
    back: str | None = None  # the line writing it back after the call
    view: str | None = None  # the buffer view to release before the pin drops
    recheck: str | None = None  # a condition its bool bytes are still valid, once all are held


def param_lines(index: int, pi: int, t: RustType, o: str) -> ParamLines:
    """The lines acquiring parameter ``pi`` of function ``index`` from the object ``o``."""
    a = f"a{pi}"
    where = f"&mut pin, {index}, {pi}, {o}"
    if t.kind in ("enum", "struct"):
        return ParamLines([f"    let {a}: {_rust(t)} = match {_value(t, where)} "
                           f"{{ Ok(v) => v, {_ERR} }};"])  # fmt: skip
    if t.kind == "option":
        assert t.elem is not None
        return ParamLines([f"    let {a}: Option<{_rust(t.elem)}> = if rt::is_none({o}) "
                           f"{{ None }} else {{ Some(match {_value(t.elem, where)} "
                           f"{{ Ok(v) => v, {_ERR} }}) }};"])  # fmt: skip
    assert t.elem is not None
    if t.elem.kind == "array":
        assert t.elem.elem is not None
        fn = "rows_mut" if t.mutable else "rows"
        ref = "&mut " if t.mutable else "&"
        e, n = t.elem.elem.rust, t.elem.length
        return ParamLines(
            [f"    let mut v{pi} = rt::View::new();",
             f"    let {a}: {ref}[[{e}; {n}]] = match rt::{fn}::<{e}, {n}>({where}, &mut v{pi}) "
             f"{{ Ok(v) => v, {_ERR} }};"],
            span=f"({pi}, v{pi}.bytes(), {'true' if t.mutable else 'false'})",
            view=f"v{pi}",
            recheck=f"rt::still_valid::<bool>({where}, &v{pi})" if e == "bool" else None,
        )  # fmt: skip
    s = f"crate::{t.elem.name}"
    if t.kind == "ref":
        return ParamLines([f"    let r{pi}: {s} = match rt::rec_value::<{s}>({where}) "
                           f"{{ Ok(v) => v, {_ERR} }};",
                           f"    let {a}: &{s} = &r{pi};"])  # fmt: skip
    # Records held in place: a later argument's Python code may write their bool bytes.
    recheck = f"rt::rec_still_valid::<{s}>({where}, &v{pi})" if t.elem.decl.bool_offsets() else None
    if t.kind == "slice":
        fn = "rec_slice_mut" if t.mutable else "rec_slice"
        ref = "&mut " if t.mutable else "&"
        return ParamLines(
            [f"    let mut v{pi} = rt::View::new();",
             f"    let {a}: {ref}[{s}] = match rt::{fn}::<{s}>({where}, &mut v{pi}) "
             f"{{ Ok(v) => v, {_ERR} }};"],
            span=f"({pi}, v{pi}.bytes(), {'true' if t.mutable else 'false'})",
            view=f"v{pi}",
            recheck=recheck,
        )  # fmt: skip
    # &mut S
    return ParamLines(
        [f"    let mut v{pi} = rt::View::new();",
         f"    let mut t{pi} = std::mem::MaybeUninit::<{s}>::uninit();",
         f"    let {a}: &mut {s} = match rt::rec_mut::<{s}>({where}, &mut v{pi}, &mut t{pi}) "
         f"{{ Ok(v) => v, {_ERR} }};"],
        span=f"({pi}, v{pi}.bytes(), true)",
        back=f"    if !rt::rec_back::<{s}>({where}, &v{pi}, t{pi}.as_ptr()) "
        "{ return std::ptr::null_mut(); }",
        view=f"v{pi}",
        recheck=recheck,
    )  # fmt: skip


def _rust(t: RustType) -> str:
    return f"crate::{t.name}" if t.kind in ("struct", "enum") else t.rust
