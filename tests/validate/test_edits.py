"""SEARCH/REPLACE edit replies: parsing and applying (pure), and an evolve round that uses them."""

from __future__ import annotations

import textwrap

import pytest

import symbiont as sb
from symbiont._validate import Rejection, code_from_edits
from symbiont._validate._edits import (
    EditBlock,
    EditFailure,
    apply_edits,
    has_edits,
    parse_edits,
)
from symbiont.testing import ScriptedAgent

CODE = textwrap.dedent(
    """\
    fn helper(x: u32) -> u32 {
        x + 1
    }

    fn f(x: u32) -> u32 {
        let y = helper(x);
        y * 2
    }

    fn g(x: u32) -> u32 {
        let y = helper(x);
        y * 3
    }
    """
)


def edit(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def applied(reply: str, code: str = CODE) -> str | EditFailure:
    blocks = parse_edits(reply)
    return blocks if isinstance(blocks, EditFailure) else apply_edits(code, blocks)


def test_exact_edit_applies_in_place() -> None:
    reply = "Doubling is wrong here:\n```rust\n" + edit("    y * 2", "    y * 4") + "```\n"
    assert has_edits(reply)
    assert applied(reply) == CODE.replace("y * 2", "y * 4")


def test_blocks_apply_in_order_each_to_the_previous_result() -> None:
    reply = edit("    x + 1", "    x + 10") + "and\n" + edit("    y * 3", "    y * 30")
    assert applied(reply) == CODE.replace("x + 1", "x + 10").replace("y * 3", "y * 30")


def test_replacement_may_delete_or_insert_lines() -> None:
    reply = edit("fn g(x: u32) -> u32 {\n    let y = helper(x);\n    y * 3\n}", "")
    result = applied(reply)
    assert isinstance(result, str)
    assert "fn g" not in result and "fn f" in result


def test_ambiguous_block_is_refused_with_the_matching_lines() -> None:
    result = applied(edit("    let y = helper(x);", "    let y = helper(x + 1);"))
    assert result == EditFailure(
        kind="ambiguous", block=1, search="    let y = helper(x);", lines=(6, 11)
    )


def test_block_that_matches_nothing_quotes_the_nearest_lines() -> None:
    result = applied(edit("    y * 5\n}", "    y * 6\n}"))
    assert isinstance(result, EditFailure)
    assert result.kind == "not_found" and result.block == 1
    # The closest window, verbatim so that it can be copied: the end of f (line 7) or of g.
    assert (result.nearest, result.nearest_line) in (("    y * 2\n}", 7), ("    y * 3\n}", 12))


def test_nothing_close_quotes_nothing() -> None:
    result = applied(edit("struct Unrelated { field: Vec<String> }", "x"))
    assert isinstance(result, EditFailure) and result.nearest is None


def test_whitespace_tolerance_applies_only_when_unambiguous() -> None:
    # Indented by 2 instead of 4, trailing spaces: one loose match, re-indented by the difference.
    result = applied(edit("  y * 2  ", "  let z = y;\n  z * 4"))
    assert result == CODE.replace("    y * 2", "    let z = y;\n    z * 4")
    # Loosely, `let y = helper(x);` is in two places: refused, not guessed.
    loose_twice = applied(edit("  let y  =  helper(x);", "  let y = 0;"))
    assert isinstance(loose_twice, EditFailure) and loose_twice.kind == "ambiguous"


def test_overlapping_blocks_fail_on_the_one_that_no_longer_matches() -> None:
    # Block 2 searches lines that block 1 already replaced: it matches nothing, so the whole
    # reply fails (no partial edit) and the correction names block 2 and its nearest lines.
    reply = edit("    let y = helper(x);\n    y * 2", "    helper(x) * 2") + edit(
        "    y * 2\n}", "    y * 5\n}"
    )
    result = applied(reply)
    assert isinstance(result, EditFailure)
    assert (result.kind, result.block) == ("not_found", 2)
    assert result.nearest is not None


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("<<<<<<< SEARCH\nfoo\n>>>>>>> REPLACE\n", "no ======= line"),
        ("<<<<<<< SEARCH\nfoo\n=======\nbar\n", "does not end with >>>>>>> REPLACE"),
        ("<<<<<<< SEARCH\n\n=======\nbar\n>>>>>>> REPLACE\n", "empty SEARCH part"),
        ("=======\nbar\n>>>>>>> REPLACE\n", "outside any block"),
    ],
)
def test_malformed_blocks_say_what_is_wrong(reply: str, problem: str) -> None:
    result = parse_edits(reply)
    assert isinstance(result, EditFailure) and result.kind == "malformed"
    assert problem in result.problem


def test_failed_edits_become_facts_of_an_edit_failed_failure() -> None:
    assert code_from_edits("```rust\nfn f() {}\n```", CODE) is None  # whole code: not edits
    assert code_from_edits(edit("    y * 2", "    y * 4"), None) is None  # nothing to edit
    assert code_from_edits(edit("    y * 2", "    y * 4"), CODE) == CODE.replace("y * 2", "y * 4")

    ambiguous = code_from_edits(edit("    let y = helper(x);", "    let y = 0;"), CODE)
    assert isinstance(ambiguous, Rejection)
    failure = ambiguous.failure()
    assert failure.kind == "edit_failed" and failure.line is None
    assert failure.message == "the SEARCH part of block 1 matches 2 places (lines 6, 11)"
    assert failure.details == "    let y = helper(x);"  # the SEARCH part, verbatim

    malformed = code_from_edits("<<<<<<< SEARCH\nfoo\n>>>>>>> REPLACE\n", CODE)
    assert isinstance(malformed, Rejection)
    assert malformed.failure().summary.startswith(
        "edit not applied: the edit blocks cannot be read: block 1 has no ======="
    )

    missing = code_from_edits(edit("    y * 5\n}", "    y * 6\n}"), CODE)
    assert isinstance(missing, Rejection)
    failure = missing.failure()
    assert (failure.line, failure.excerpt) in ((7, "    y * 2\n}"), (12, "    y * 3\n}"))
    # The feedback quotes the SEARCH part and the nearest lines, so that they can be copied.
    assert "    y * 5\n}" in failure.feedback and failure.excerpt in failure.feedback


def test_parse_keeps_replacement_lines_verbatim() -> None:
    blocks = parse_edits(edit("a", "  b  \n\n c"))
    assert blocks == [EditBlock(search=("a",), replace=("  b  ", "", " c"))]


# -- in the loop -------------------------------------------------------------------------------

DECL = """
const SCALE: u32 = 2;

/// Scale x.
fn f(x: u32) -> u32 { x * SCALE }
"""

# A helper that shadows the prelude's SCALE: edits must reach it, and the build must use it.
SHADOWING = "const SCALE: u32 = 3;\n\nfn f(x: u32) -> u32 {\n    x * SCALE\n}\n"


def test_evolve_round_with_an_edit_reply() -> None:
    rt = sb.Runtime(DECL)
    rt.activate(rt.register(SHADOWING))
    assert rt.fns.f(2) == 6
    agent = ScriptedAgent(
        [
            "Make it bigger:\n" + edit("const SCALE: u32 = 4;", "const SCALE: u32 = 5;"),
            # Overlapping: block 2 searches what block 1 already changed.
            edit("x * SCALE", "x * SCALE + 1") + edit("x * SCALE", "x * SCALE + 2"),
            "```rust\n" + edit("const SCALE: u32 = 3;", "const SCALE: u32 = 5;") + "```",
        ]
    )
    info = rt.evolve(agent, "Use a scale of 5.", check=lambda fns: fns.f(2) == 10 or 0.0)
    first, second, third = info.trace.attempts
    assert first.failure is not None and first.failure.kind == "edit_failed"
    assert second.failure is not None and second.failure.kind == "edit_failed"
    assert third.decision == "registered"
    prompt = agent.requests[0].messages[-1].content
    assert "<<<<<<< SEARCH" in prompt and "const SCALE: u32 = 3;" in prompt
    correction = agent.requests[1].messages[-1].content
    assert "Your edits could not be applied" in correction
    assert "matches nothing" in correction and "const SCALE: u32 = 3;" in correction
    overlapping = agent.requests[2].messages[-1].content
    assert "the SEARCH part of block 2 matches nothing" in overlapping
    assert "x * SCALE + 1" in overlapping  # the nearest lines, after block 1
    assert overlapping.endswith("or SEARCH/REPLACE edits to the current code.")
    assert second.failure.excerpt == "    x * SCALE + 1" and second.failure.line == 4
    assert second.failure.summary == (
        "edit not applied near line 4: the SEARCH part of block 2 matches nothing in the "
        "current code"
    )
    assert rt.code(info.revision) == SHADOWING.replace("= 3", "= 5")
    assert rt.fns.f(2) == 10


def test_no_edits_are_offered_without_current_code() -> None:
    rt = sb.Runtime("fn f(x: u32) -> u32 { unimplemented!() }")
    agent = ScriptedAgent(["```rust\nfn f(x: u32) -> u32 { x }\n```"])
    rt.evolve(agent, "Return x.")
    assert "SEARCH" not in agent.requests[0].messages[-1].content


def test_edits_off_reads_only_whole_code() -> None:
    rt = sb.Runtime(DECL, options=sb.Options(edits=False))
    rt.activate(rt.register(SHADOWING))
    agent = ScriptedAgent(
        [edit("const SCALE: u32 = 3;", "const SCALE: u32 = 5;"), "```rust\n" + SHADOWING + "```"]
    )
    info = rt.evolve(agent, "Anything.", activate=False)
    assert "<<<<<<< SEARCH" not in agent.requests[0].messages[-1].content
    first = info.trace.attempts[0]
    assert first.failure is not None and first.failure.kind != "edit_failed"
    correction = agent.requests[1].messages[-1].content
    assert correction.endswith("in one ```rust block.") and "SEARCH" not in correction
