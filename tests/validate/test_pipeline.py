"""validate_code end to end: parse errors, crate attributes, check order, the accepted value."""

from symbiont._decl import evolvable
from symbiont._decl._syntax import normalise_source
from symbiont._validate import Candidate, Rejection, validate, validate_code

DECLS = evolvable("fn score(xs: &[f64]) -> f64 { 0.0 }")
SCORE = "fn score(xs: &[f64]) -> f64 {\n    xs.iter().sum()\n}\n"


def test_parse_error_names_line_column_and_shows_a_caret() -> None:
    code = "fn score(xs: &[f64]) -> f64 {\n    let n = ;\n    xs[0]\n}\n"
    result = validate_code(code, DECLS)
    assert isinstance(result, Rejection)
    assert result.kind == "parse_error"
    assert result.line == 2
    assert result.code == code
    assert "line 2, column 11: unexpected `=`" in result.message
    assert "   2 |     let n = ;\n" in result.message
    assert "^" in result.message
    assert (result.error, result.column) == ("unexpected `=`", 11)
    assert "balanced" in result.failure().feedback
    assert "Never closed" not in result.message


def test_parse_errors_come_before_signature_and_policy_checks() -> None:
    result = validate_code("unsafe fn other() {\n    let = 1;\n}\n", DECLS)
    assert isinstance(result, Rejection)
    assert result.kind == "parse_error"


def test_signature_check_comes_before_the_policy_scan() -> None:
    result = validate_code("unsafe fn score(xs: &[f64]) -> f64 {\n    xs[0]\n}\n", DECLS)
    assert isinstance(result, Rejection)
    assert result.kind == "signature_mismatch"
    assert "is `unsafe`" in result.message


def test_lint_attributes_and_inner_docs_are_removed_keeping_line_numbers() -> None:
    code = (
        "#![allow(dead_code)]\n"
        "//! Fast scoring.\n"
        "#![warn(clippy::all)] #![deny(unused)]\n"
        "#![forbid(\n    unsafe_code,\n)]\n"
        "/*! block\n    docs */\n" + SCORE
    )
    result = validate_code(code, DECLS)
    assert isinstance(result, Candidate)
    assert result.code == "\n" * 8 + SCORE
    assert result.normalised == normalise_source(SCORE)


def test_removed_attributes_do_not_shift_later_reports() -> None:
    code = "#![allow(unused)]\n//! docs\n" + SCORE + "static mut N: u64 = 0;\n"
    result = validate_code(code, DECLS)
    assert isinstance(result, Rejection)
    assert result.kind == "forbidden"
    assert result.line == 6


def test_inner_attributes_inside_items_are_left_alone() -> None:
    code = "mod helpers {\n    #![allow(unused)]\n    //! Helpers.\n}\n" + SCORE
    result = validate_code(code, DECLS)
    assert isinstance(result, Candidate)
    assert result.code == code


def test_candidate_keeps_code_verbatim_and_normalises_layout() -> None:
    code = "// a comment\nfn score(xs: &[f64]) -> f64 {\n    xs.iter()\n      .sum()\n}\n"
    result = validate_code(code, DECLS)
    assert isinstance(result, Candidate)
    assert result.code == code
    assert result.normalised == "fn score ( xs : & [ f64 ] ) -> f64 { xs . iter ( ) . sum ( ) }"


def test_windows_line_endings_in_code() -> None:
    result = validate_code(SCORE.replace("\n", "\r\n"), DECLS)
    assert isinstance(result, Candidate)
    assert result.code == SCORE


def test_no_code_message_lists_every_declared_signature() -> None:
    decls = evolvable("fn a(x: i32) -> i32 { x }\nfn b(s: &str) -> String { s.into() }")
    result = validate("I think the current version is fine.", decls)
    assert isinstance(result, Rejection)
    assert result.kind == "no_code"
    assert "fn a(x: i32) -> i32\nfn b(s: &str) -> String" in result.failure().feedback
    assert result.line is None


def test_the_summary_names_the_error_and_its_line() -> None:
    # Logs, errors and the examples' progress lines show this one line.
    parse = validate_code("fn score(xs: &[f64]) -> f64 {\n    let = 1;\n}\n", DECLS)
    wrong = validate_code("fn score(xs: &[f32]) -> f64 {\n    0.0\n}\n", DECLS)
    forbidden = validate_code(SCORE + "static N: u8 = 0;\n", DECLS)
    nothing = validate("No code today.", DECLS)
    summaries = [r.failure().summary for r in (parse, wrong, forbidden, nothing)]  # type: ignore[union-attr]
    assert summaries == [
        "parse error on line 2: unexpected `=`",
        "signature mismatch on line 1: `score`: parameter 1 has type `&[f32]`, expected `&[f64]`",
        "forbidden construct on line 4: a `static` item is not allowed: "
        + summaries[2].split(": ", 2)[2],
        "no code: no fenced ```rust code block defining the functions",
    ]
    assert "\n" not in "".join(summaries)
