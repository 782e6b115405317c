"""The generated crate: prelude + candidate + one CPython entry per function.

Layout of a generated crate (all files in one build directory)::

    lib.rs        lint allowances, `mod __symbiont_prelude { include!("prelude.rs") }`,
                  `include!("candidate.rs")` at the crate root, the guard functions, and the
                  exported entry points (one per function, plus a vectorised one per scalar
                  function)
    prelude.rs    the declaration's non-function items, made `pub` so the root can glob-import
                  them (a candidate may shadow a prelude item instead of clashing with it)
    candidate.rs  the code under test, verbatim: compiler spans and panic locations already
                  point at the lines the LLM wrote
and, compiled once per toolchain and profile into an rlib every revision links
(``extern crate symbiont_rt``): rt.rs, the conversions, buffer views, panic capture, deadlines
and vectorised loops. Compiling it with every candidate would more than double each build.

Only the entry points (``__symbiont_entry_<i>``, ``__symbiont_map_<i>``) and
``__symbiont_init`` are exported. The candidate's own functions keep mangled, local symbols, so a
helper named ``qsort`` can never preempt libc's.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources

from symbiont._codegen import _records
from symbiont._codegen._guards import instrument
from symbiont._decl import Declarations, FunctionDecl
from symbiont._decl import _syntax as syn

# Bump when the generated glue or rt.rs changes in a way that alters the binary interface with
# symbiont._load: cached libraries built by another glue version are then never reused.
GLUE_ABI = 6
ENTRY_PREFIX = "__symbiont_entry_"
MAP_PREFIX = "__symbiont_map_"
INIT_SYMBOL = "__symbiont_init"
# Parameter index the vectorised entry reports for its input `pi`: MAP_INPUT - pi.
MAP_INPUT = -10

_LINTS = (
    "dead_code, unused, non_snake_case, non_camel_case_types, non_upper_case_globals, "
    "unreachable_code, unused_must_use, clippy::all"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CrateSource:
    """The files of one generated crate and the exported entry symbol of each function.

    ``candidate`` is the code as written; ``files["candidate.rs"]`` is what is compiled (with
    guards inserted when ``guards``); ``insertions`` maps one to the other.
    """

    files: dict[str, str]
    entries: tuple[str, ...]
    candidate: str
    guards: bool = True
    insertions: tuple[tuple[int, str], ...] = ()
    runtime: str = ""  # source of the support crate this crate links (see runtime_source)

    def digest(self, normalised_candidate: str) -> str:
        """Content hash of everything but the candidate's layout and comments."""
        h = hashlib.sha256()
        h.update(f"glue-abi={GLUE_ABI}\nguards={int(self.guards)}\n".encode())
        h.update(b"runtime\0" + self.runtime.encode() + b"\0")
        for name in sorted(self.files):
            if name == "candidate.rs":
                continue
            h.update(name.encode() + b"\0" + self.files[name].encode() + b"\0")
        # The guards placed, in order (independent of layout, like the normalised candidate):
        # a change in where guards go must not reuse a library built with the old placement.
        h.update(b"guards\0" + "\0".join(text for _, text in self.insertions).encode() + b"\0")
        h.update(b"candidate\0" + normalised_candidate.encode())
        return h.hexdigest()


def vectorisable(f: FunctionDecl) -> bool:
    """Numeric scalars in, a numeric or bool scalar out: such functions also get a vectorised
    entry. (bool inputs are left out: a byte other than 0 or 1 in a buffer would be an invalid
    Rust bool, and checking every element would cost as much as the call.)"""
    ret = f.ret
    return (
        bool(f.params)
        and all(p.type.numeric for p in f.params)
        and (ret.numeric or (ret.is_scalar and ret.name == "bool"))
    )


RUNTIME_CRATE = "symbiont_rt"
_LINT_HEADER = f"#![allow({_LINTS})]\n"


@functools.cache
def abi_source() -> str:
    """abi.rs: the declarations the trampoline and every revision library share. Prepended to
    both sources, so it is part of every hash that keys their cached builds."""
    return resources.files("symbiont._codegen").joinpath("abi.rs").read_text(encoding="utf-8")


@functools.cache
def runtime_source() -> str:
    """The support crate's root: abi.rs, rt.rs and rt_types.rs behind crate-level lint
    allowances."""
    here = resources.files("symbiont._codegen")
    parts = [here.joinpath(name).read_text(encoding="utf-8") for name in ("rt.rs", "rt_types.rs")]
    return _LINT_HEADER + abi_source() + "\n".join(parts)


def public_prelude(prelude: str) -> str:
    """The prelude with `pub` added where it is missing, so the crate root can glob-import it."""
    if not prelude.strip():
        return ""
    tree = syn.parse(prelude)
    inserts: list[int] = []

    def needs_pub(node_children: list[str]) -> bool:
        return "visibility_modifier" not in node_children

    for item in tree.root_node.named_children:
        kinds = [c.type for c in item.children]
        if item.type in ("line_comment", "block_comment", "attribute_item"):
            continue
        if item.type == "impl_item":
            if item.child_by_field_name("trait") is not None:
                continue
            body = item.child_by_field_name("body")
            for member in body.named_children if body else []:
                if member.type in ("function_item", "const_item") and needs_pub(
                    [c.type for c in member.children]
                ):
                    inserts.append(member.start_byte)
            continue
        if needs_pub(kinds) and item.type not in ("macro_invocation", "foreign_mod_item"):
            inserts.append(item.start_byte)
        if item.type == "struct_item":
            body = item.child_by_field_name("body")
            if body is None:
                continue
            if body.type == "field_declaration_list":
                for field in body.named_children:
                    if field.type == "field_declaration" and needs_pub(
                        [c.type for c in field.children]
                    ):
                        inserts.append(field.start_byte)
            elif body.type == "ordered_field_declaration_list":
                prev_vis = False
                for child in body.children:
                    if child.type == "visibility_modifier":
                        prev_vis = True
                    elif child.is_named and child.type not in ("attribute_item",):
                        if not prev_vis:
                            inserts.append(child.start_byte)
                        prev_vis = False
    raw = bytearray(prelude.encode("utf-8"))
    for pos in sorted(inserts, reverse=True):
        raw[pos:pos] = b"pub "
    return raw.decode("utf-8")


def _entry(index: int, f: FunctionDecl) -> str:
    """One exported METH_FASTCALL entry point. Its `self` is the dispatcher's slot, which holds
    the library's Python keeper object `k` and the call's deadline."""
    n = len(f.params)
    signature = "    slot: *mut rt::SlotHead, args: *const rt::Obj, nargs: isize,"
    # The body is generic over releasing the GIL, so the GIL-holding path compiles as if the
    # other did not exist and pays one test of the slot's flags (rt.nogil takes the other).
    lines = [
        "#[no_mangle]",
        f'pub unsafe extern "C" fn {ENTRY_PREFIX}{index}(',
        signature,
        ") -> rt::Obj {",
        "    if (*slot).flags & rt::SLOT_RELEASE_GIL != 0 {",
        f"        return __symbiont_released_{index}(slot, args, nargs);",
        "    }",
        f"    __symbiont_body_{index}::<false>(slot, args, nargs)",
        "}",
        "",
        "#[inline(never)]",
        f"unsafe fn __symbiont_released_{index}(",
        signature,
        ") -> rt::Obj {",
        f"    __symbiont_body_{index}::<true>(slot, args, nargs)",
        "}",
        "",
        "#[inline(always)]",
        f"unsafe fn __symbiont_body_{index}<const RELEASE_GIL: bool>(",
        signature,
        ") -> rt::Obj {",
        "    let k = (*slot).keeper;",
        "    let timeout_ns = (*slot).timeout_ns;",
        "    let mut pin = rt::Pin::new(k);",
        f"    if nargs != {n} {{ return rt::arity(&mut pin, {index}, nargs); }}",
    ]
    call_args: list[str] = []
    spans: list[str] = []
    views: list[str] = []
    bools: list[str] = []
    write_backs: list[str] = []
    for pi, p in enumerate(f.params):
        o = f"*args.add({pi})"
        t = p.type
        err = "Err(()) => return std::ptr::null_mut()"
        if _records.shared(t):
            got = _records.param_lines(index, pi, t, o)
            lines.extend(got.acquire)
            spans.extend([got.span] if got.span else [])
            write_backs.extend([got.back] if got.back else [])
            views.extend([got.view] if got.view else [])
            bools.extend([got.recheck] if got.recheck else [])
            call_args.append(f"a{pi}")
        elif t.kind == "scalar":
            lines.append(
                f"    let a{pi}: {t.rust} = match rt::arg(&mut pin, {index}, {pi}, {o}) "
                f"{{ Ok(v) => v, {err} }};"
            )
            call_args.append(f"a{pi}")
        elif t.kind == "str":
            lines.append(
                f"    let a{pi}: &str = match rt::str_arg(&mut pin, {index}, {pi}, {o}) "
                f"{{ Ok(v) => v, {err} }};"
            )
            call_args.append(f"a{pi}")
        elif t.kind == "slice":
            assert t.elem is not None
            fn = "slice_mut" if t.mutable else "slice"
            lines.append(f"    let mut v{pi} = rt::View::new();")
            lines.append(
                f"    let a{pi}: {t.rust} = match rt::{fn}::<{t.elem.rust}>(&mut pin, {index}, "
                f"{pi}, {o}, &mut v{pi}) {{ Ok(v) => v, {err} }};"
            )
            spans.append(f"({pi}, v{pi}.bytes(), {'true' if t.mutable else 'false'})")
            views.append(f"v{pi}")
            if t.elem.rust == "bool":
                bools.append(f"rt::still_valid::<bool>(&mut pin, {index}, {pi}, {o}, &v{pi})")
            call_args.append(f"a{pi}")
        elif t.kind == "mut_ref":
            assert t.elem is not None
            e = t.elem.rust
            lines.append(f"    let mut v{pi} = rt::View::new();")
            lines.append(f"    let mut t{pi}: {e} = Default::default();")
            lines.append(
                f"    let a{pi}: &mut {e} = match rt::mut_ref::<{e}>(&mut pin, {index}, {pi}, {o}, "
                f"&mut v{pi}, &mut t{pi}) {{ Ok(v) => v, {err} }};"
            )
            spans.append(f"({pi}, v{pi}.bytes(), true)")
            views.append(f"v{pi}")
            if e == "bool":
                bools.append(f"rt::still_valid::<bool>(&mut pin, {index}, {pi}, {o}, &v{pi})")
            call_args.append(f"a{pi}")
            write_backs.append(
                f"    if !rt::cell_back(&mut pin, {index}, {pi}, {o}, &v{pi}, t{pi}) "
                "{ return std::ptr::null_mut(); }"
            )
        else:  # pragma: no cover - decl rejects these
            raise AssertionError(t)
    if n > 1:
        # A later argument's conversion may have run Python code that rewrote a checked bool.
        lines.extend(f"    if !{b} {{ return std::ptr::null_mut(); }}" for b in bools)
    if spans:
        lines.append(
            f"    if rt::borrows(&mut pin, {index}, &[{', '.join(spans)}]) "
            "{ return std::ptr::null_mut(); }"
        )
    call = f"crate::{f.name}({', '.join(call_args)})"
    caught = f"std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {call}))"
    lines.append("    let armed = rt::arm(timeout_ns);")
    # A dispatcher made to release the GIL (rt.nogil, release_gil=True) runs only the call
    # itself without it: conversions before, write-back, releases and boxing after, all hold it.
    lines.append("    let r = if RELEASE_GIL {")
    lines.append(f"        rt::released(&mut pin, &[{', '.join(spans)}], || {caught})")
    lines.append(f"    }} else {{ {caught} }};")
    lines.append("    let stopped = rt::disarm(armed);")
    if write_backs:
        lines.append("    if r.is_ok() {")
        lines.extend("    " + w for w in write_backs)
        lines.append("    }")
    # Releasing a view may run Python code: it happens while the pin (consumed by finish) holds.
    lines.extend(f"    {v}.release();" for v in views)
    lines.append(f"    rt::finish(pin, {index}, r, stopped, timeout_ns)")
    lines.append("}")
    return "\n".join(lines)


def _map_entry(index: int, f: FunctionDecl) -> str:
    """The vectorised entry of a scalar function: (out, threads, timeout_ns, in_0, step_0, ...),
    every array 1-D, C-contiguous and of the exact element type (the Python side broadcasts)."""
    n = len(f.params)
    ret = f.ret.rust
    err = "Err(()) => return std::ptr::null_mut()"
    lines = [
        "#[no_mangle]",
        f'pub unsafe extern "C" fn {MAP_PREFIX}{index}(',
        "    slot: *mut rt::SlotHead, args: *const rt::Obj, nargs: isize,",
        ") -> rt::Obj {",
        "    let mut pin = rt::Pin::new((*slot).keeper);",
        f"    if nargs != {3 + 2 * n} {{ return rt::arity(&mut pin, {index}, nargs); }}",
        "    let mut vo = rt::View::new();",
        f"    let out: &mut [{ret}] = match rt::slice_mut::<{ret}>(&mut pin, {index}, -1, *args, "
        f"&mut vo) {{ Ok(v) => v, {err} }};",
        f"    let threads: usize = match rt::arg(&mut pin, {index}, -2, *args.add(1)) "
        f"{{ Ok(v) => v, {err} }};",
        f"    let timeout_ns: u64 = match rt::arg(&mut pin, {index}, -3, *args.add(2)) "
        f"{{ Ok(v) => v, {err} }};",
    ]
    for pi, p in enumerate(f.params):
        t = p.type.rust
        lines.append(f"    let mut v{pi} = rt::View::new();")
        array, step = 3 + 2 * pi, 4 + 2 * pi
        lines.append(
            # MAP_INPUT - pi: the keeper's errors name a vectorised input, not a scalar parameter.
            f"    let l{pi} = match rt::lane::<{t}>(&mut pin, {index}, {MAP_INPUT - pi}, "
            f"*args.add({array}), "
            f"*args.add({step}), out.len(), &mut v{pi}) {{ Ok(v) => v, {err} }};"
        )
    call_args = ", ".join(f"l{pi}.at(j)" for pi in range(n))
    spans = ", ".join(
        ["(-1, vo.bytes(), true)", *(f"({pi}, v{pi}.bytes(), false)" for pi in range(n))]
    )
    lines.append(
        f"    rt::run_map(&mut pin, {index}, out, &[{spans}], threads, timeout_ns, "
        f"|j: usize| unsafe {{ crate::{f.name}({call_args}) }})"
    )
    lines.append("}")
    return "\n".join(lines)


def generate(decls: Declarations, candidate: str, *, guards: bool = True) -> CrateSource:
    """The crate for ``candidate`` (Rust source defining every declared function).

    With ``guards``, loops, closures and recursive functions get the checks that let a call be
    stopped at its deadline or before it overflows the stack (see _guards.py).
    """
    entries = tuple(f"{ENTRY_PREFIX}{i}" for i in range(len(decls.functions)))
    if not candidate.endswith("\n"):
        candidate += "\n"
    compiled = instrument(candidate) if guards else None
    glue = "\n\n".join(_entry(i, f) for i, f in enumerate(decls.functions))
    maps = [_map_entry(i, f) for i, f in enumerate(decls.functions) if vectorisable(f)]
    if maps:
        glue += "\n\n" + "\n\n".join(maps)
    lib = f"""// generated by symbiont: do not edit
#![allow({_LINTS})]

#[doc(hidden)]
mod __symbiont_prelude {{
    #![allow(unused_imports)]
    include!("prelude.rs");
}}
#[allow(unused_imports)]
use __symbiont_prelude::*;

// Guards inserted into the candidate (see codegen/_guards.py): the only glue it can name.
#[doc(hidden)]
pub use __symbiont_glue::{{__sb_enter, __sb_tick}};

include!("candidate.rs");

#[doc(hidden)]
mod __symbiont_glue {{
    // Declared here, not at the crate root, and not passed with --extern: the support crate is
    // then a private name of this module and in no prelude, so candidate code cannot reach it.
    extern crate {RUNTIME_CRATE} as rt;

    #[inline(always)]
    #[track_caller]
    pub fn __sb_tick() {{
        rt::tick()
    }}
    #[inline(always)]
    #[track_caller]
    pub fn __sb_enter() {{
        rt::enter()
    }}

{_records.types_module(decls)}
    #[no_mangle]
    pub unsafe extern "C" fn {INIT_SYMBOL}(api: *mut rt::Api) -> u32 {{
        rt::init(api);
        {GLUE_ABI}
    }}

{glue}
}}
"""
    return CrateSource(
        files={
            "lib.rs": lib,
            "prelude.rs": public_prelude(decls.prelude),
            "candidate.rs": compiled.code if compiled else candidate,
        },
        runtime=runtime_source(),
        entries=entries,
        candidate=candidate,
        guards=guards,
        insertions=compiled.insertions if compiled else (),
    )
