"""Failure records: facts from every layer, one line of summary naming the error, one wording."""

from __future__ import annotations

import typing

import pytest

import symbiont as sb
from symbiont._errors import CrashError
from symbiont._failures import Failure, FailureKind
from symbiont._validate import Rejection, code_from_edits, validate

DECL = "fn f(x: u64) -> u64 { x }"


@pytest.fixture(scope="module")
def rt() -> sb.Runtime:
    return sb.Runtime(DECL, check_timeout=0.5)


def rejected(rt: sb.Runtime, code: str, check: typing.Any = None) -> Failure:
    with pytest.raises(sb.CandidateError) as info:
        rt.register(code, check=check)
    failure: Failure = info.value.failure
    return failure


def edit_failure(rt: sb.Runtime) -> Failure:
    """The failure of an edit reply whose SEARCH part is not in the current code."""
    current = "fn f(x: u64) -> u64 {\n    x + 1\n}\n"
    reply = "<<<<<<< SEARCH\n    x + 2\n=======\n    x + 3\n>>>>>>> REPLACE\n"
    rejection = code_from_edits(reply, current)
    assert isinstance(rejection, Rejection)
    return rejection.failure()


def real_failures(rt: sb.Runtime) -> dict[str, Failure]:
    """A failure of each kind the pipeline produces in this process, made for real."""

    def spins(fns: typing.Any) -> None:
        fns.f(1)

    return {
        "parse_error": rejected(rt, "fn f(x: u64) -> u64 {\n    let = x;\n}"),
        "signature_mismatch": rejected(rt, "fn f(x: u32) -> u64 { x as u64 }"),
        "forbidden": rejected(rt, "fn f(x: u64) -> u64 {\n    unsafe { x }\n}"),
        "compile_error": rejected(rt, 'fn f(x: u64) -> u64 {\n    x + "a"\n}'),
        "panic": rejected(
            rt, "fn f(x: u64) -> u64 {\n    x / (x - x)\n}", check=lambda fns: fns.f(3)
        ),
        "check_failed": rejected(
            rt, "fn f(x: u64) -> u64 { x + 2 }", check=lambda fns: fns.f(1) == 7
        ),
        "timeout": rejected(rt, "fn f(x: u64) -> u64 {\n    loop {}\n}", check=spins),
        "edit_failed": edit_failure(rt),
    }


def test_every_kind_has_a_one_line_summary_naming_the_error(rt: sb.Runtime) -> None:
    made = real_failures(rt)
    crash = CrashError("the evaluation worker died with SIGSEGV", signal="SIGSEGV",
                       exit_code=None, stderr="Segmentation fault")  # fmt: skip
    no_code = validate("The current version is fine.", rt.declarations)
    assert isinstance(no_code, Rejection)
    made |= {
        "no_code": no_code.failure(),
        "build_timeout": Failure(kind="build_timeout", message="the build was stopped after 1 s"),
        "load_error": Failure(kind="load_error", message="undefined symbol: foo"),
        "crash": Failure(kind="crash", message=str(crash), details=crash.stderr, crash=crash),
        "repeat": Failure(kind="repeat", message=made["panic"].summary),
    }
    assert set(made) == set(typing.get_args(FailureKind))
    for kind, failure in made.items():
        assert failure.kind == kind
        summary = failure.summary
        assert "\n" not in summary and len(summary) <= 200, summary
        assert failure.message.strip(), kind
        assert " ".join(failure.message.split())[:60] in summary, (kind, summary)
        if failure.line is not None:
            assert f"line {failure.line}" in summary, summary
        assert not summary.endswith(":"), summary
        assert failure.feedback.strip(), kind


def test_the_real_failures_carry_facts(rt: sb.Runtime) -> None:
    made = real_failures(rt)
    parse = made["parse_error"]
    assert (parse.line, parse.column, parse.message) == (2, 9, "unexpected `=`")
    assert parse.summary == "parse error on line 2: unexpected `=`"
    sig = made["signature_mismatch"]
    assert (sig.expected, sig.got) == ("fn f(x: u64) -> u64", "fn f(x: u32) -> u64")
    assert made["forbidden"].construct == "unsafe block" and made["forbidden"].line == 2
    compile_error = made["compile_error"]
    assert compile_error.line == 2 and "cannot add" in compile_error.message
    panic = made["panic"]
    assert (panic.function, panic.line) == ("f", 2)
    assert "divide by zero" in panic.message
    assert panic.summary.startswith("panic in `f` on line 2: ")
    assert "^" in panic.excerpt
    assert made["check_failed"].message == "the check returned False"


def test_corrections_say_each_thing_once(rt: sb.Runtime) -> None:
    from symbiont._prompts import correction

    for failure in real_failures(rt).values():
        text = correction(failure, attempt=1, max_attempts=10)
        assert text.count("```rust block") == 1, text
        assert text.count("not allowed here") <= 1, text
        assert text.count("does not parse") <= 1, text


def test_a_check_message_ending_in_a_colon_keeps_its_first_item(rt: sb.Runtime) -> None:
    def suite(fns: typing.Any) -> None:
        raise AssertionError("2 of 3 cases fail:\nf(1) returned 3, expected 1\nf(2) returned 4")

    failure = rejected(rt, "fn f(x: u64) -> u64 { x + 2 }", check=suite)
    assert failure.summary == "check failed: 2 of 3 cases fail: f(1) returned 3, expected 1"
    assert "f(2) returned 4" in failure.feedback


def test_an_edit_that_matches_nothing_is_located_by_the_nearest_lines(rt: sb.Runtime) -> None:
    failure = edit_failure(rt)
    assert failure.line == 2 and failure.excerpt == "    x + 1"
    assert failure.details == "    x + 2"
    assert failure.summary == (
        "edit not applied near line 2: the SEARCH part of block 1 matches nothing in the "
        "current code"
    )
