"""Forbidden constructs: each is refused with its own feedback, line and construct."""

import pytest

from symbiont._decl import evolvable
from symbiont._validate import Candidate, Rejection, validate, validate_code

DECLS = evolvable("fn score(xs: &[f64]) -> f64 { 0.0 }")
SCORE = "fn score(xs: &[f64]) -> f64 {\n    xs.iter().sum()\n}\n"


def forbidden(code: str, construct: str, line: int) -> Rejection:
    result = validate_code(code, DECLS)
    assert isinstance(result, Rejection), result
    assert result.kind == "forbidden", result.message
    assert result.construct == construct
    assert result.line == line
    assert f"line {line}: " in result.message
    assert construct in result.message
    return result


def test_unsafe_block() -> None:
    code = "fn score(xs: &[f64]) -> f64 {\n    unsafe { *xs.get_unchecked(0) }\n}\n"
    rejection = forbidden(code, "unsafe block", 2)
    assert "Write safe Rust" in rejection.message


def test_the_column_counts_characters_not_bytes() -> None:
    line = '\tlet s = "中é"; unsafe { *xs.get_unchecked(0) }'
    code = "fn score(xs: &[f64]) -> f64 {\n" + line + "\n}\n"
    rejection = forbidden(code, "unsafe block", 2)
    assert rejection.column == line.index("unsafe") + 1


def test_unsafe_helper_fn() -> None:
    code = SCORE + "unsafe fn first(xs: &[f64]) -> f64 {\n    xs[0]\n}\n"
    forbidden(code, "unsafe fn", 4)


def test_unsafe_impl() -> None:
    forbidden(SCORE + "struct P(*mut u8);\nunsafe impl Send for P {}\n", "unsafe impl", 5)


def test_unsafe_trait() -> None:
    forbidden(SCORE + "unsafe trait Raw {}\n", "unsafe trait", 4)


def test_unsafe_extern_block() -> None:
    rejection = forbidden(
        SCORE + 'unsafe extern "C" {\n    fn abs(x: i32) -> i32;\n}\n', "unsafe extern", 4
    )
    assert "extern block" in rejection.message


def test_unsafe_attribute() -> None:
    code = SCORE + "#[unsafe(no_mangle)]\nfn helper() {}\n"
    rejection = forbidden(code, "#[unsafe(...)]", 4)
    assert "#[no_mangle]" in rejection.message


def test_unsafe_inside_macro_call() -> None:
    code = (
        "fn score(xs: &[f64]) -> f64 {\n"
        '    println!("{}", unsafe { *xs.as_ptr() });\n'
        "    xs[0]\n}\n"
    )
    rejection = forbidden(code, "unsafe", 2)
    assert "inside a macro call" in rejection.message


def test_extern_block() -> None:
    code = SCORE + 'extern "C" {\n    fn getpid() -> i32;\n}\n'
    rejection = forbidden(code, "extern block", 4)
    assert "Remove it" in rejection.message


def test_extern_crate() -> None:
    forbidden("extern crate alloc;\n" + SCORE, "extern crate", 1)


def test_static_item() -> None:
    rejection = forbidden("static LIMIT: f64 = 1.0;\n" + SCORE, "static", 1)
    assert "`const`" in rejection.message


def test_static_inside_function_body() -> None:
    code = "fn score(xs: &[f64]) -> f64 {\n    static SEEN: usize = 0;\n    xs[SEEN]\n}\n"
    forbidden(code, "static", 2)


def test_static_mut() -> None:
    forbidden(SCORE + "static mut CALLS: u64 = 0;\n", "static mut", 4)


def test_thread_local() -> None:
    code = SCORE + "thread_local! {\n    static CACHE: Vec<f64> = Vec::new();\n}\n"
    forbidden(code, "thread_local!", 4)


def test_macro_rules() -> None:
    forbidden("macro_rules! sq {\n    ($x:expr) => { $x * $x };\n}\n" + SCORE, "macro_rules!", 1)


@pytest.mark.parametrize(
    ("attribute", "name"),
    [
        ("no_mangle", "no_mangle"),
        ('export_name = "score2"', "export_name"),
        ('link_section = ".init_array"', "link_section"),
        ('link(name = "m")', "link"),
        ("used", "used"),
        ("global_allocator", "global_allocator"),
        ("panic_handler", "panic_handler"),
        ("alloc_error_handler", "alloc_error_handler"),
        ("start", "start"),
        ("naked", "naked"),
    ],
)
def test_symbol_and_runtime_hook_attributes(attribute: str, name: str) -> None:
    code = SCORE + f"#[{attribute}]\nfn helper() {{}}\n"
    rejection = forbidden(code, f"#[{name}]", 4)
    assert "Remove it" in rejection.message


@pytest.mark.parametrize(
    ("call", "construct"),
    [
        ("std::panic::set_hook(Box::new(|_| {}));", "std::panic::set_hook"),
        ("let _ = std::panic::take_hook();", "std::panic::take_hook"),
        ("std::panic::update_hook(|prev, info| prev(info));", "std::panic::update_hook"),
        ("std::panic::always_abort();", "std::panic::always_abort"),
        ("std::alloc::set_alloc_error_hook(|_| {});", "std::alloc::set_alloc_error_hook"),
    ],
)
def test_panic_hook_tampering(call: str, construct: str) -> None:
    code = f"fn score(xs: &[f64]) -> f64 {{\n    {call}\n    xs[0]\n}}\n"
    rejection = forbidden(code, construct, 2)
    assert "panic" in rejection.message


def test_panic_hook_through_use() -> None:
    code = "use std::panic;\n" + SCORE + "fn quiet() {\n    panic::set_hook(Box::new(|_| {}));\n}\n"
    rejection = forbidden(code, "std::panic::set_hook", 6)
    assert "`panic::set_hook` (that is `std::panic::set_hook`)" in rejection.message


def test_panic_hook_through_alloc_spelling() -> None:
    code = SCORE + "fn hook() {\n    alloc::alloc::set_alloc_error_hook(|_| {});\n}\n"
    forbidden(code, "std::alloc::set_alloc_error_hook", 5)


@pytest.mark.parametrize(
    ("call", "construct"),
    [
        ('include!("data.rs")', "include!"),
        ('include_str!("/etc/passwd")', "include_str!"),
        ('include_bytes!("weights.bin")', "include_bytes!"),
        ('env!("HOME")', "env!"),
        ('option_env!("HOME")', "option_env!"),
        ('std::include_str!("secret.txt")', "include_str!"),
    ],
)
def test_denied_macros(call: str, construct: str) -> None:
    code = f"fn score(xs: &[f64]) -> f64 {{\n    let _data = {call};\n    xs[0]\n}}\n"
    rejection = forbidden(code, construct, 2)
    assert "compile time" in rejection.message


def test_denied_macro_nested_in_another_macro() -> None:
    code = 'fn score(xs: &[f64]) -> f64 {\n    println!("{}", env!("USER"));\n    xs[0]\n}\n'
    forbidden(code, "env!", 2)


def test_other_crate_attributes_are_forbidden() -> None:
    rejection = forbidden("#![no_std]\n" + SCORE, "#![no_std]", 1)
    assert "crate-level attributes" in rejection.message
    forbidden(SCORE + "#![feature(portable_simd)]\n", "#![feature]", 4)


def test_all_findings_are_reported_in_source_order() -> None:
    code = (
        "static mut N: u64 = 0;\n"
        "fn score(xs: &[f64]) -> f64 {\n"
        "    unsafe { N += 1; }\n"
        "    std::process::exit(0)\n"
        "}\n"
        "extern crate core;\n"
    )
    rejection = forbidden(code, "static mut", 1)
    lines = [line for line in rejection.message.splitlines() if line.startswith("- line")]
    assert [line.split(":")[0] for line in lines] == [
        "- line 1",
        "- line 3",
        "- line 4",
        "- line 6",
    ]


def test_many_findings_are_capped() -> None:
    body = "".join(f"    std::process::exit({i});\n" for i in range(8))
    code = f"fn score(xs: &[f64]) -> f64 {{\n{body}    xs[0]\n}}\n"
    rejection = forbidden(code, "std::process::exit", 2)
    assert rejection.message.count("- line") == 5
    assert "(and 3 more)" in rejection.message


def test_forbidden_construct_in_a_reply_counts_lines_in_the_extracted_code() -> None:
    reply = f"Here:\n\n```rust\n{SCORE}static mut N: u64 = 0;\n```\n"
    rejection = validate(reply, DECLS)
    assert isinstance(rejection, Rejection)
    assert rejection.kind == "forbidden"
    assert rejection.line == 4
    assert rejection.code == SCORE + "static mut N: u64 = 0;\n"


@pytest.mark.parametrize(
    "code",
    [
        '    let s = "unsafe { std::process::exit(0) }";\n',
        '    let s = r#"static X: i32 = 0; #[no_mangle] include_str!("x")"#;\n',
        "    // unsafe { call() } and std::fs::remove_file are fine in a comment\n",
        "    /* static mut X; extern crate foo; */\n",
        "    let c = '#';\n",
    ],
)
def test_words_in_strings_and_comments_are_not_constructs(code: str) -> None:
    source = f"fn score(xs: &[f64]) -> f64 {{\n{code}    xs[0]\n}}\n"
    assert isinstance(validate_code(source, DECLS), Candidate)


def test_harmless_attributes_lifetimes_and_helpers_are_accepted() -> None:
    code = (
        "#[derive(Debug, Clone, Copy)]\nstruct P { x: f64 }\n"
        "const NAMES: &'static [&'static str] = &[\"a\"];\n"
        "#[inline(always)]\n#[must_use]\n"
        "fn first<'a>(v: &'a [f64]) -> &'a f64 { &v[0] }\n"
        '#[allow(unused)]\nextern "C" fn callback(x: i32) -> i32 { x }\n' + SCORE
    )
    assert isinstance(validate_code(code, DECLS), Candidate)


def test_catch_unwind_is_refused_because_deadlines_unwind() -> None:
    from symbiont._decl import evolvable
    from symbiont._validate import Rejection, validate_code

    decls = evolvable("fn f(x: u64) -> u64 { x }")
    code = "use std::panic;\nfn f(x: u64) -> u64 {\n    panic::catch_unwind(|| x).unwrap_or(0)\n}\n"
    result = validate_code(code, decls)
    assert isinstance(result, Rejection)
    assert result.kind == "forbidden"
    assert result.line == 3
    assert "catch_unwind" in result.message and "deadline" in result.message


@pytest.mark.parametrize(
    ("code", "construct", "line"),
    [
        ('std::arch::global_asm!(".section .init_array");', "global_asm!", 4),
        ('core::arch::global_asm!("nop");', "global_asm!", 4),
        ('::core::arch::global_asm!("nop");', "global_asm!", 4),
        ('use std::arch::global_asm as emit;\nemit!("nop");', "global_asm!", 4),
        ('use std::arch::{global_asm as emit};\nemit!("nop");', "global_asm!", 4),
        ('use std::arch::*;\nglobal_asm!("nop");', "global_asm!", 5),
        ('use core::arch;\narch::global_asm!("nop");', "global_asm!", 5),
        ('use core::arch as a;\nfn h() {\n    a::naked_asm!("ret");\n}', "naked_asm!", 6),
        ('fn h() {\n    std::arch::asm!("nop");\n}', "asm!", 5),
    ],
)
def test_machine_code_macros_in_every_path_form(code: str, construct: str, line: int) -> None:
    rejection = forbidden(SCORE + code + "\n", construct, line)
    assert "raw machine code" in rejection.message
    assert "Write the function in Rust" in rejection.message


@pytest.mark.parametrize(
    ("attribute", "name", "says"),
    [
        ('link_section = ".init_array"', "link_section", "link section"),
        ("used", "used", "link section"),
        ("r#used", "used", "link section"),
        ("unsafe(naked)", "naked", "naked function"),
        ('cfg_attr(all(), link_section = ".init_array")', "link_section", "link section"),
        ('path = "/etc/passwd"', "path", "read a file"),
        ('cfg_attr(all(), path = "/etc/passwd")', "path", "read a file"),
        ('debugger_visualizer(gdb_script_file = "/etc/passwd")', "debugger_visualizer", "file"),
    ],
)
def test_section_naked_and_file_attributes_have_their_own_feedback(
    attribute: str, name: str, says: str
) -> None:
    code = SCORE + f"#[{attribute}]\nmod helper {{}}\n"
    result = validate_code(code, DECLS)
    assert isinstance(result, Rejection), result
    finding = next(
        f for f in result.message.splitlines() if f.startswith(f"- line 4: the `#[{name}]`")
    )
    assert f"line 4: the `#[{name}]` attribute is not allowed" in finding
    assert says in finding


def test_out_of_line_module_is_refused() -> None:
    rejection = forbidden(SCORE + "mod secrets;\n", "out-of-line module", 4)
    assert "`mod secrets;`" in rejection.message
    assert "mod name { ... }" in rejection.message


def test_inline_module_is_accepted() -> None:
    code = SCORE + "mod helpers {\n    pub fn two() -> f64 { 2.0 }\n}\n"
    assert isinstance(validate_code(code, DECLS), Candidate)


@pytest.mark.parametrize(
    ("use", "call", "construct"),
    [
        ("use std::include_str as text;", 'text!("/etc/passwd")', "include_str!"),
        ("use core::include_bytes as bytes;", 'bytes!("/etc/passwd")', "include_bytes!"),
        ("use std::{include as inc};", 'inc!("/etc/passwd")', "include!"),
        ("use core::option_env as var;", 'var!("API_KEY")', "option_env!"),
    ],
)
def test_file_and_environment_macros_through_use_renames(
    use: str, call: str, construct: str
) -> None:
    code = f"{use}\nfn score(xs: &[f64]) -> f64 {{\n    let _data = {call};\n    xs[0]\n}}\n"
    rejection = forbidden(code, construct, 1)
    assert "compile time" in rejection.message


@pytest.mark.parametrize(
    "expression",
    [
        'concat!("a", include_str!("/etc/passwd"))',
        'stringify!(x).len() + include_bytes!(concat!("/etc/", "passwd")).len()',
        'format!("{}", concat!(env!("HOME"), "/.ssh"))',
    ],
)
def test_file_macros_nested_in_concat_and_stringify(expression: str) -> None:
    code = f"fn score(xs: &[f64]) -> f64 {{\n    let _data = {expression};\n    xs[0]\n}}\n"
    result = validate_code(code, DECLS)
    assert isinstance(result, Rejection)
    assert result.kind == "forbidden"
    assert "compile time" in result.message


@pytest.mark.parametrize(
    ("code", "construct"),
    [
        ("fn h() -> u64 {\n    std::r#process::exit(7)\n}", "std::process::exit"),
        ("fn h() -> u64 {\n    r#std::process::r#exit(7)\n}", "std::process::exit"),
        ("fn h() -> u64 {\n    ::r#core::r#panic::catch_unwind(|| 1).unwrap()\n}",
         "std::panic::catch_unwind"),
        ("fn h() {\n    std::panic::r#set_hook(Box::new(|_| {}));\n}", "std::panic::set_hook"),
        ("fn h() {\n    r#__sb_enter();\n}", "__sb_enter"),
    ],
)  # fmt: skip
def test_raw_identifiers_name_what_their_plain_spelling_names(code: str, construct: str) -> None:
    # `r#process` is `process` to rustc: each of these compiled, and the first ended the host.
    forbidden(SCORE + code + "\n", construct, 5)


@pytest.mark.parametrize(
    ("use", "construct"),
    [
        ("use std::r#process as p;", "std::process"),
        ("use r#std::r#process::{r#exit as e};", "std::process::exit"),
        ("use std::r#fs::*;", "std::fs::*"),
    ],
)
def test_raw_identifiers_in_use_declarations(use: str, construct: str) -> None:
    forbidden(use + "\n" + SCORE, construct, 1)


def test_a_raw_alias_is_the_alias() -> None:
    code = "use std::process as r#p;\n" + SCORE + "fn h() {\n    p::exit(1);\n}\n"
    result = validate_code(code, DECLS)
    assert isinstance(result, Rejection)
    assert "std::process" in result.message


@pytest.mark.parametrize(
    ("call", "construct", "says"),
    [
        # Lists a host directory without naming `std::fs`; the panic carried it to the LLM.
        ('std::path::Path::new("/").read_dir().is_ok()', "std::path::Path::new", "file system"),
        ('std::path::PathBuf::from("/root/.ssh").exists()', "std::path::PathBuf::from",
         "file system"),
        ("std::backtrace::Backtrace::force_capture().to_string().is_empty()",
         "std::backtrace::Backtrace::force_capture", "host process"),
        ("{ std::alloc::handle_alloc_error(std::alloc::Layout::new::<u8>()); }",
         "std::alloc::handle_alloc_error", "aborts"),
    ],
)  # fmt: skip
def test_host_files_paths_and_aborts_reached_without_their_module(
    call: str, construct: str, says: str
) -> None:
    code = f"fn h() -> bool {{\n    {call}\n}}\n"
    rejection = forbidden(SCORE + code, construct, 5)
    assert says in rejection.message


# The lifetime-expansion trick of rust-lang/rust#25860 (as published in the cve-rs crate): safe
# code that compiles with this rustc and reads a freed vector, which can crash the host.
EXPAND = """\
const UNIT: &&() = &&();
fn translate<'a, 'b, T: ?Sized>(_x: &'a &'b (), v: &'b T) -> &'a T {
    v
}
fn expand<'a, 'b, T: ?Sized>(x: &'a T) -> &'b T {
    let f: for<'x> fn(_, &'x T) -> &'b T = translate;
    f(UNIT, x)
}
"""


def test_the_lifetime_expansion_trick_is_refused() -> None:
    rejection = forbidden(SCORE + EXPAND, "tied lifetimes", 5)
    assert "soundness bug" in rejection.message
    assert "`&'a &'b ()`" in rejection.message


@pytest.mark.parametrize(
    "code",
    [
        "fn t<'b, T>(_x: &'static &'b (), v: &'b T) -> &'static T {\n    v\n}",
        "fn t<'a, 'b, T>(_x: std::borrow::Cow<'a, &'b T>) {\n}",
        "fn t<'a, 'b: 'a>(_x: &'a (), _y: &'b ()) {\n}",
        "fn t<'a, 'b>(_x: &'a (), _y: &'b ())\nwhere\n    'b: 'a,\n{\n}",
        "struct W<'a, 'b>(&'a Vec<&'b ()>);",
        "trait Tr {}\nimpl<'a, 'b> Tr for &'a [&'b ()] {}",
    ],
)
def test_other_shapes_that_tie_lifetimes_are_refused(code: str) -> None:
    result = validate_code(SCORE + code + "\n", DECLS)
    assert isinstance(result, Rejection), result
    assert result.construct == "tied lifetimes"


def test_ordinary_lifetimes_are_accepted() -> None:
    code = (
        "struct View<'a> { xs: &'a [f64], names: &'a [&'static str] }\n"
        "impl<'a> View<'a> {\n    fn first(&self) -> &'a f64 { &self.xs[0] }\n}\n"
        "fn pick<'a, T: 'a>(v: &'a mut [T], w: &'a View<'a>) -> &'a mut T { &mut v[0] }\n"
        "fn any(v: &[&str], m: &std::collections::HashMap<&str, &str>) -> usize { v.len() }\n"
    )
    assert isinstance(validate_code(SCORE + code, DECLS), Candidate)


@pytest.mark.parametrize(
    "attribute",
    [
        'target_feature(enable = "tbm")',
        'r#target_feature(enable = "avx512f")',
        'cfg_attr(all(), target_feature(enable = "tbm"))',
    ],
)
def test_target_feature_is_refused(attribute: str) -> None:
    code = f"#[{attribute}]\nfn score(xs: &[f64]) -> f64 {{\n    xs.iter().sum()\n}}\n"
    rejection = forbidden(code, "#[target_feature]", 1)
    assert "instructions this machine's CPU may not have" in rejection.message


def test_target_feature_as_a_cfg_predicate_is_accepted() -> None:
    code = (
        '#[cfg(target_feature = "avx2")]\nfn wide() {}\n'
        '#[cfg_attr(target_feature = "avx2", inline)]\n' + SCORE
    )
    assert isinstance(validate_code(code, DECLS), Candidate)
