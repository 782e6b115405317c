"""The candidate's top-level functions against the declared signatures."""

from symbiont._decl import evolvable
from symbiont._validate import Candidate, Rejection, validate_code

DECLS = evolvable(
    """
/// Advance the counter, return the new mean.
fn step(counter: &mut usize, xs: &[f64]) -> f64 { 0.0 }
fn scale(x: u64, factor: i64) -> i64;
fn reset(buf: &mut [f64]) {}
"""
)
STEP = "fn step(counter: &mut usize, xs: &[f64]) -> f64 {\n    *counter += 1;\n    xs[0]\n}\n"
SCALE = "fn scale(x: u64, factor: i64) -> i64 {\n    x as i64 * factor\n}\n"
RESET = "fn reset(buf: &mut [f64]) {\n    buf.fill(0.0);\n}\n"
KEEP = "Keep the declared signatures exactly; only parameter names may differ."


def mismatch(code: str) -> Rejection:
    result = validate_code(code, DECLS)
    assert isinstance(result, Rejection), result
    assert result.kind == "signature_mismatch"
    assert KEEP in result.failure().feedback
    assert KEEP not in result.message  # the report is facts; the advice is worded once
    return result


def test_exact_signatures_are_accepted() -> None:
    assert isinstance(validate_code(STEP + SCALE + RESET, DECLS), Candidate)


def test_renamed_parameters_are_accepted() -> None:
    code = STEP.replace("counter", "n").replace("xs", "values") + SCALE + RESET
    assert isinstance(validate_code(code, DECLS), Candidate)


def test_mut_pattern_and_wildcard_are_accepted() -> None:
    scale = "fn scale(mut x: u64, _: i64) -> i64 {\n    x += 1;\n    x as i64\n}\n"
    assert isinstance(validate_code(STEP + scale + RESET, DECLS), Candidate)


def test_layout_pub_const_and_unit_return_are_accepted() -> None:
    step = "pub fn step(\n    counter: &mut usize,\n    xs: & [ f64 ],\n) -> f64 {\n    xs[0]\n}\n"
    scale = "pub(crate) const fn scale(x: u64, factor: i64) -> i64 {\n    x as i64 * factor\n}\n"
    reset = "fn reset(buf: &mut [f64]) -> () {\n    buf.fill(0.0);\n}\n"
    assert isinstance(validate_code(step + scale + reset, DECLS), Candidate)


def test_extra_helpers_and_items_are_accepted() -> None:
    extras = (
        "const K: i64 = 3;\nstruct Acc { n: usize }\nimpl Acc { fn step(&mut self) {} }\n"
        "trait Twice { fn twice(&self) -> Self; }\n"
        "fn helper(v: &[f64]) -> f64 { v.iter().sum() }\n"
        "mod inner { pub fn scale() {} }\n"
    )
    assert isinstance(validate_code(STEP + SCALE + RESET + extras, DECLS), Candidate)


def test_wrong_parameter_type() -> None:
    rejection = mismatch(STEP + SCALE.replace("factor: i64", "factor: u64") + RESET)
    assert "expected: fn scale(x: u64, factor: i64) -> i64" in rejection.message
    assert "written:  fn scale(x: u64, factor: u64) -> i64" in rejection.message
    assert "parameter 2 has type `u64`, expected `i64`" in rejection.message
    assert rejection.line == 5


def test_wrong_parameter_order() -> None:
    scale = "fn scale(factor: i64, x: u64) -> i64 {\n    x as i64 * factor\n}\n"
    rejection = mismatch(STEP + scale + RESET)
    assert "parameter 1 has type `i64`, expected `u64`" in rejection.message
    assert "parameter 2 has type `u64`, expected `i64`" in rejection.message


def test_wrong_parameter_count() -> None:
    rejection = mismatch(STEP + "fn scale(x: u64) -> i64 { x as i64 }\n" + RESET)
    assert "takes 1 parameter(s), expected 2" in rejection.message


def test_wrong_return_type() -> None:
    rejection = mismatch(STEP.replace("-> f64", "-> f32") + SCALE + RESET)
    assert "returns `f32`, expected `f64`" in rejection.message


def test_missing_and_added_return_type() -> None:
    reset = "fn reset(buf: &mut [f64]) -> usize {\n    buf.len()\n}\n"
    rejection = mismatch(STEP.replace(" -> f64", "") + SCALE + reset)
    assert "returns nothing, expected `f64`" in rejection.message
    assert "returns `usize`, expected nothing" in rejection.message


def test_missing_function() -> None:
    rejection = mismatch(STEP + RESET)
    assert "missing function `scale`" in rejection.message
    assert "expected: fn scale(x: u64, factor: i64) -> i64" in rejection.message


def test_function_defined_only_inside_a_module_is_missing() -> None:
    rejection = mismatch(STEP + "mod m {\n" + SCALE + "}\n" + RESET)
    assert "missing function `scale`" in rejection.message
    assert "top-level" in rejection.message


def test_duplicate_function() -> None:
    rejection = mismatch(STEP + SCALE + SCALE + RESET)
    assert "`scale` is defined twice (lines 5, 8)" in rejection.message
    assert rejection.line == 8


def test_async_function() -> None:
    rejection = mismatch("async " + STEP + SCALE + RESET)
    assert "is `async`: declared functions must be plain synchronous fns" in rejection.message
    assert "written:  async fn step(" in rejection.message


def test_unsafe_function() -> None:
    rejection = mismatch(STEP + "unsafe " + SCALE + RESET)
    assert "is `unsafe`" in rejection.message


def test_extern_c_function() -> None:
    rejection = mismatch(STEP + SCALE + 'extern "C" ' + RESET)
    assert "is `extern`" in rejection.message


def test_generic_function() -> None:
    reset = "fn reset<T: Default>(buf: &mut [f64]) {\n    buf.fill(0.0);\n}\n"
    rejection = mismatch(STEP + SCALE + reset)
    assert "has generic parameters `<T: Default>`" in rejection.message


def test_lifetime_generic_function() -> None:
    step = "fn step<'a>(counter: &mut usize, xs: &'a [f64]) -> f64 {\n    xs[0]\n}\n"
    rejection = mismatch(step + SCALE + RESET)
    assert "has generic parameters `<'a>`" in rejection.message
    assert "parameter 2 has type `&'a [f64]`, expected `&[f64]`" in rejection.message


def test_where_clause() -> None:
    reset = "fn reset(buf: &mut [f64]) where f64: Copy {\n    buf.fill(0.0);\n}\n"
    rejection = mismatch(STEP + SCALE + reset)
    assert "has a `where` clause" in rejection.message


def test_self_parameter() -> None:
    reset = "fn reset(self, buf: &mut [f64]) {}\n"
    rejection = mismatch(STEP + SCALE + reset)
    assert "takes `self`" in rejection.message


def test_function_without_body() -> None:
    rejection = mismatch(STEP + SCALE + "fn reset(buf: &mut [f64]);\n")
    assert "has no body" in rejection.message


def test_every_offending_function_is_reported() -> None:
    rejection = mismatch(STEP.replace("usize", "u32") + RESET.replace("f64", "f32"))
    message = rejection.message
    assert "`step`:" in message
    assert "`scale`:" in message
    assert "`reset`:" in message
    assert message.index("`step`:") < message.index("`scale`:") < message.index("`reset`:")


def test_variadic_function() -> None:
    rejection = mismatch(STEP + "fn scale(x: u64, factor: i64, ...) -> i64 {\n    0\n}\n" + RESET)
    assert "is variadic" in rejection.message
