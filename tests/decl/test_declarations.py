"""Declaration parsing: functions, prelude, doc comments, and every rejected declaration."""

from __future__ import annotations

import pytest

import symbiont as sb
from symbiont._decl import evolvable

SOURCE = """
use std::collections::HashMap;

/// Number of buckets.
const BUCKETS: usize = 8;

#[repr(C)]
#[derive(Clone, Copy)]
struct Point { x: f64, y: f64 }

/// Advance the counter.
/// Twice documented.
fn step(counter: &mut usize) {
    *counter += 1;
}

/// No default body yet.
pub fn score(xs: &[f64], ys: &mut [f32], name: &str, c: char, flag: bool) -> (String, Option<u8>);

fn pair(a: i8, b: u64) -> Vec<i32> { vec![a as i32, b as i32] }
"""


def test_functions_prelude_and_docs() -> None:
    d = evolvable(SOURCE)
    assert d.names == ("step", "score", "pair")
    step = d["step"]
    assert step.signature == "fn step(counter: &mut usize)"
    assert step.doc == "Advance the counter.\nTwice documented."
    assert step.has_default and "*counter += 1;" in step.source
    score = d["score"]
    assert not score.has_default
    assert score.signature == (
        "fn score(xs: &[f64], ys: &mut [f32], name: &str, c: char, flag: bool) "
        "-> (String, Option<u8>)"
    )
    assert [p.type.kind for p in score.params] == ["slice", "slice", "str", "scalar", "scalar"]
    assert score.params[1].type.mutable
    assert d["pair"].ret.rust == "Vec<i32>"
    assert "const BUCKETS: usize = 8;" in d.prelude
    assert "/// Number of buckets." in d.prelude
    assert "#[repr(C)]" in d.prelude and "struct Point" in d.prelude
    assert "use std::collections::HashMap;" in d.prelude
    assert d.prelude_names == {"BUCKETS", "Point"}


def test_default_code_has_stub_for_missing_body() -> None:
    d = evolvable("fn f(x: u64) -> u64;")
    assert "unimplemented!(" in d.default_code
    assert d.default_code.startswith("fn f(x: u64) -> u64 {")


def test_signatures_text_keeps_docs() -> None:
    d = evolvable(SOURCE)
    assert "/// Advance the counter.\n/// Twice documented.\nfn step(counter: &mut usize)" in (
        d.signatures_text
    )


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("fn f(x: u64 -> u64 { x }", "does not parse"),
        ("const X: u8 = 1;", "declares no function"),
        ("fn f<T>(x: T) -> T { x }", "`f` has generic parameters"),
        ("struct S; impl S { fn g(&self) {} } fn f(s: &S) {}", "parameter `s`"),
        ("fn f(&self) {}", "takes `self`"),
        ("async fn f() {}", "is `async`"),
        ("unsafe fn f() {}", "is `unsafe`"),
        ('extern "C" fn f() {}', "is `extern`"),
        ("fn f(m: HashMap<u8, u8>) {}", "cannot be a parameter"),
        ("fn f(x: &u64) {}", "by value"),
        ('fn f() -> &str { "" }', "cannot be returned"),
        ("fn f(x: &[String]) {}", "numeric"),
        ("fn f(s: &'static str) {}", "lifetimes"),
        ("fn f() {} fn f() {}", "declared twice"),
        ("fn f(a: u8, a: u8) {}", "repeats a parameter"),
        ("macro_rules! m { () => {} } fn f() {}", "macros"),
        ("fn f() -> Vec<String> { vec![] }", "scalar"),
    ],
)
def test_bad_declarations_name_function_and_problem(source: str, fragment: str) -> None:
    with pytest.raises(sb.DeclarationError) as info:
        evolvable(source)
    assert fragment in str(info.value)


def test_parse_error_has_line_and_caret() -> None:
    with pytest.raises(sb.DeclarationError) as info:
        evolvable("fn ok() {}\nfn f(x: u64) -> u64 { x +* }\n")
    message = str(info.value)
    assert "line 2" in message
    assert "^" in message


def test_declaration_error_is_value_error() -> None:
    with pytest.raises(ValueError, match="takes Rust source"):
        evolvable(42)  # type: ignore[arg-type]
