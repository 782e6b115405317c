"""Code extraction from realistic LLM replies."""

from symbiont._decl import evolvable
from symbiont._validate import Candidate, Rejection, extract_code, validate

DECLS = evolvable("fn mean(xs: &[f64]) -> f64 { 0.0 }")
CODE = "fn mean(xs: &[f64]) -> f64 {\n    xs.iter().sum::<f64>() / xs.len() as f64\n}\n"


def test_prose_around_a_rust_block() -> None:
    reply = f"Sure! Here is a faster version:\n\n```rust\n{CODE}```\n\nIt sums in one pass."
    assert extract_code(reply, DECLS) == CODE


def test_think_section_with_its_own_code_is_dropped() -> None:
    reply = (
        "<think>\nMaybe:\n```rust\nfn mean(xs: &[f64]) -> f64 { todo!() }\n```\n"
        "No, better to sum.\n</think>\n"
        f"```rust\n{CODE}```"
    )
    assert extract_code(reply, DECLS) == CODE


def test_thinking_and_reasoning_tags_are_case_insensitive() -> None:
    for tag in ("THINKING", "Reasoning"):
        reply = f"<{tag}>```rust\nfn mean() {{}}\n```</{tag}>\n```rust\n{CODE}```"
        assert extract_code(reply, DECLS) == CODE


def test_unclosed_think_at_start_runs_to_the_first_fence() -> None:
    reply = f"<think>\nThe mean is the sum over n, fn mean works.\n\n```rust\n{CODE}```\n"
    assert extract_code(reply, DECLS) == CODE


def test_unclosed_think_without_any_fence_is_all_reasoning() -> None:
    reply = "<think>\nfn mean(xs: &[f64]) -> f64 could be written with a fold\n"
    assert extract_code(reply, DECLS) is None


def test_closing_tag_without_opening_ends_the_reasoning() -> None:
    # Chat templates that put `<think>` into the prompt leave only the closing tag.
    reply = f"```rust\nfn mean() {{}}\n```\nhmm, wrong.\n</think>\n```rust\n{CODE}```"
    assert extract_code(reply, DECLS) == CODE


def test_usage_example_block_after_the_answer_is_skipped() -> None:
    usage = 'fn main() {\n    println!("{}", mean(&[1.0, 2.0]));\n}\n'
    reply = f"```rust\n{CODE}```\n\nUsage:\n\n```rust\n{usage}```\n"
    assert extract_code(reply, DECLS) == CODE


def test_last_good_block_wins_over_an_earlier_draft() -> None:
    draft = "fn mean(xs: &[f64]) -> f64 {\n    xs[0]\n}\n"
    reply = f"First try:\n```rust\n{draft}```\nBetter:\n```rust\n{CODE}```"
    assert extract_code(reply, DECLS) == CODE


def test_rust_tagged_block_wins_over_untagged() -> None:
    other = "fn mean(xs: &[f64]) -> f64 { 1.0 }\n"
    reply = f"```rust\n{CODE}```\n\n```\n{other}```"
    assert extract_code(reply, DECLS) == CODE


def test_untagged_block_is_used_when_no_block_is_tagged_rust() -> None:
    reply = f'```toml\n[package]\nname = "x"\n```\n\n```\n{CODE}```'
    assert extract_code(reply, DECLS) == CODE


def test_rs_tag_and_tilde_fences_and_info_string_extras() -> None:
    assert extract_code(f"~~~rs\n{CODE}~~~\n", DECLS) == CODE
    assert extract_code(f'```Rust title="mean.rs"\n{CODE}```', DECLS) == CODE
    assert extract_code(f"```rust,ignore\n{CODE}```", DECLS) == CODE


def test_other_languages_are_ignored() -> None:
    reply = "```python\ndef mean(xs):\n    return sum(xs) / len(xs)\n```\n```bash\ncargo run\n```"
    assert extract_code(reply, DECLS) is None


def test_fence_must_start_a_line() -> None:
    reply = f"Inline ```rust fn mean() {{}}``` is not a block.\n\n```rust\n{CODE}```\n"
    assert extract_code(reply, DECLS) == CODE


def test_indented_fence_content_loses_the_fence_indentation() -> None:
    indented = "".join(f"  {line}\n" for line in CODE.splitlines())
    assert extract_code(f"  ```rust\n{indented}  ```", DECLS) == CODE


def test_longer_closing_fence_and_nested_shorter_fence() -> None:
    code = 'fn mean(xs: &[f64]) -> f64 {\n    let _doc = "```";\n    xs[0]\n}\n'
    reply = f"````rust\n{code}````\n"
    assert extract_code(reply, DECLS) == code


def test_windows_line_endings() -> None:
    reply = f"Here:\r\n```rust\r\n{CODE.replace(chr(10), chr(13) + chr(10))}```\r\n"
    assert extract_code(reply, DECLS) == CODE


def test_raw_code_without_fences_is_taken_whole() -> None:
    raw = f"use std::iter::Sum;\n\n{CODE}"
    assert extract_code(raw, DECLS) == raw


def test_prose_only_reply_has_no_code() -> None:
    reply = "I cannot improve this function further; the fn is already optimal."
    assert extract_code(reply, DECLS) is None
    rejection = validate(reply, DECLS)
    assert isinstance(rejection, Rejection)
    assert rejection.kind == "no_code"
    assert rejection.expected == "fn mean(xs: &[f64]) -> f64"
    feedback = rejection.failure().feedback
    assert "```rust" in feedback
    assert "fn mean(xs: &[f64]) -> f64" in feedback
    assert rejection.code is None


def test_truncated_reply_reports_the_parse_error() -> None:
    reply = "Here is the code:\n```rust\nfn mean(xs: &[f64]) -> f64 {\n    let n = xs.len();\n"
    code = extract_code(reply, DECLS)
    assert code is not None
    assert code.startswith("fn mean")
    rejection = validate(reply, DECLS)
    assert isinstance(rejection, Rejection)
    assert rejection.kind == "parse_error"
    assert "line 1, column 1" in rejection.message
    assert "Never closed: `{` on line 1" in rejection.message
    assert "cut off" in rejection.message


def test_broken_declared_block_beats_a_clean_usage_block() -> None:
    broken = "fn mean(xs: &[f64]) -> f64 {\n    xs.iter().sum::<f64>(\n}\n"
    reply = f"```rust\n{broken}```\n```rust\nfn main() {{}}\n```"
    assert extract_code(reply, DECLS) == broken


def test_without_declarations_the_last_clean_block_wins() -> None:
    reply = f"```rust\n{CODE}```\n```rust\nfn main() {{}}\n```"
    assert extract_code(reply) == "fn main() {}\n"


def test_block_without_function_is_returned_as_last_resort() -> None:
    reply = "```rust\nconst K: u32 = 3;\n```"
    assert extract_code(reply, DECLS) == "const K: u32 = 3;\n"


def test_full_reply_validates_to_a_candidate() -> None:
    reply = (
        "<think>the user wants a mean</think>\nHere you go:\n\n"
        f"```rust\n{CODE}```\n\nExample:\n```rust\nfn main() {{ mean(&[1.0]); }}\n```\n"
    )
    result = validate(reply, DECLS)
    assert isinstance(result, Candidate)
    assert result.code == CODE
