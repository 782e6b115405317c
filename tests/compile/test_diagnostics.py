"""rustc's JSON diagnostics rendered in terms of the code the LLM wrote.

Every case compiles a real crate: ``candidate.rs`` is an instrumented copy of an original
snippet (guard calls inserted after some braces, as symbiont does), and the diagnostics are
rendered back onto the original. ``@E`` and ``@T`` in a snippet mark where ``__sb_enter();`` and
``__sb_tick();`` are inserted; they are not part of the original.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from symbiont._compile import Diagnostics, find_toolchain, parse_rustc_json

_MARKS = {"@E": "__sb_enter();", "@T": "__sb_tick();"}
_GUARDS = "#[inline(always)] fn __sb_enter() {}\n#[inline(always)] fn __sb_tick() {}\n"


def _instrument(marked: str) -> tuple[str, list[tuple[int, str]], str]:
    """(original, insertions, compiled) for a snippet with ``@E``/``@T`` marks."""
    original = ""
    insertions: list[tuple[int, str]] = []
    rest = marked
    while True:
        at = min((i for i in (rest.find(m) for m in _MARKS) if i >= 0), default=-1)
        if at < 0:
            original += rest
            break
        original += rest[:at]
        insertions.append((len(original.encode()), _MARKS[rest[at : at + 2]]))
        rest = rest[at + 2 :]
    data = original.encode()
    compiled, pos = b"", 0
    for offset, text in insertions:
        compiled += data[pos:offset] + text.encode()
        pos = offset
    compiled += data[pos:]
    return original, insertions, compiled.decode()


def _rustc(tmp_path: Path, compiled: str, glue: str = "") -> str:
    (tmp_path / "lib.rs").write_text(f'{_GUARDS}include!("candidate.rs");\n{glue}')
    (tmp_path / "candidate.rs").write_text(compiled)
    proc = subprocess.run(
        [find_toolchain().rustc, "--edition", "2021", "--crate-type", "cdylib",
         "--error-format=json", "lib.rs", "-o", "out.so"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode != 0, "the snippet was meant not to compile"
    return proc.stderr


def _no_leak(diags: Diagnostics) -> None:
    for d in diags.errors:
        assert "__sb_" not in d.rendered, d.rendered
        assert "__sb_" not in d.message, d.message
    assert "__sb_" not in diags.render()


def _diagnose(tmp_path: Path, marked: str, glue: str = "") -> Diagnostics:
    original, insertions, compiled = _instrument(marked)
    stderr = _rustc(tmp_path, compiled, glue)
    diags = parse_rustc_json(stderr, source=original, insertions=insertions)
    assert diags.errors
    _no_leak(diags)
    return diags


def _rustc_rendered(stderr: str) -> list[str]:
    """rustc's own rendered texts of the errors, in order."""
    out = []
    for line in stderr.splitlines():
        d = json.loads(line)
        if d["level"] == "error" and not d["message"].startswith("aborting"):
            out.append(d["rendered"].rstrip())
    return out


def test_instrument_helper_marks_what_it_inserts() -> None:
    original, insertions, compiled = _instrument("fn f() {@E for _ in 0..1 {@T } }")
    assert original == "fn f() { for _ in 0..1 { } }"
    assert insertions == [(8, "__sb_enter();"), (24, "__sb_tick();")]
    assert compiled == "fn f() {__sb_enter(); for _ in 0..1 {__sb_tick(); } }"


def test_caret_sits_under_the_original_characters_after_an_insertion(tmp_path: Path) -> None:
    diags = _diagnose(
        tmp_path,
        "fn total(n: u32) -> u32 {@E\n"
        "    let mut t = 0;\n"
        '    for i in 0..n {@T let y: u8 = "x"; t += i + y as u32; }\n'
        "    t\n"
        "}\n",
    )
    [d] = diags.errors
    assert d.code == "E0308"
    assert (d.file, d.line, d.column) == ("candidate.rs", 3, 33)
    assert d.rendered.splitlines() == [
        "error[E0308]: mismatched types",
        " --> candidate.rs:3:33",
        "  |",
        '3 |     for i in 0..n { let y: u8 = "x"; t += i + y as u32; }',
        "  |                            --   ^^^ expected `u8`, found `&str`",
        "  |                            |",
        "  |                            expected due to this",
    ]


def test_one_liner_with_an_insertion_after_the_brace(tmp_path: Path) -> None:
    diags = _diagnose(tmp_path, 'fn f(x: u64) -> u64 {@E x * "3" }\n')
    [d] = diags.errors
    assert (d.line, d.column) == (1, 25)
    lines = d.rendered.splitlines()
    assert lines[:5] == [
        "error[E0277]: cannot multiply `u64` by `&str`",
        " --> candidate.rs:1:25",
        "  |",
        '1 | fn f(x: u64) -> u64 { x * "3" }',
        "  |                         ^ no implementation for `u64 * &str`",
    ]
    assert "  = help: the trait `Mul<&str>` is not implemented for `u64`" in lines


def test_help_suggestion_is_applied_to_the_original_line(tmp_path: Path) -> None:
    diags = _diagnose(
        tmp_path, "fn bump(counter: &mut usize) {@E for _ in 0..2 {@T counter += 3; } }\n"
    )
    [d] = diags.errors
    original = "fn bump(counter: &mut usize) { for _ in 0..2 { counter += 3; } }"
    pad = " " * original.index("counter +=")
    assert (d.line, d.column) == (1, len(pad) + 1) == (1, 48)
    lines = d.rendered.splitlines()
    assert lines[:8] == [
        "error[E0368]: binary assignment operation `+=` cannot be applied to type `&mut usize`",
        " --> candidate.rs:1:48",
        "  |",
        f"1 | {original}",
        f"  | {pad}-------^^^^^",
        f"  | {pad}|",
        f"  | {pad}cannot use `+=` on type `&mut usize`",
        "  |",
    ]
    assert lines[8].startswith("help: ") and "dereference" in lines[8]
    assert lines[9:] == [
        "  |",
        "1 | fn bump(counter: &mut usize) { for _ in 0..2 { *counter += 3; } }",
        f"  | {pad}+",
    ]


def test_deletion_is_shown_as_the_line_before_and_after(tmp_path: Path) -> None:
    diags = _diagnose(tmp_path, "fn h() -> u32 {@E\n    let x = 1u32;\n    x;\n}\n")
    [d] = diags.errors
    lines = d.rendered.splitlines()
    assert lines[:3] == ["error[E0308]: mismatched types", " --> candidate.rs:1:11", "  |"]
    assert "1 | fn h() -> u32 {" in lines
    assert lines[-3:] == ["  |", "3 -     x;", "3 +     x"]
    assert lines[-4].startswith("help: remove this semicolon")


def test_multi_line_span_shows_first_and_last_line(tmp_path: Path) -> None:
    diags = _diagnose(
        tmp_path,
        "fn pick(v: &[u32]) -> u32 {@E\n"
        "    let t = if v.len() > 2 {@T\n"
        "        1u32\n"
        "    } else {\n"
        '        "none"\n'
        "    };\n"
        "    t\n"
        "}\n",
    )
    [d] = diags.errors
    assert d.rendered.splitlines() == [
        "error[E0308]: `if` and `else` have incompatible types",
        " --> candidate.rs:5:9",
        "  |",
        "2 |       let t = if v.len() > 2 {",
        "  |  _____________-",
        "3 | |         1u32",
        "  | |         ---- expected because of this",
        "4 | |     } else {",
        '5 | |         "none"',
        "  | |         ^^^^^^ expected `u32`, found `&str`",
        "6 | |     };",
        "  | |_____- `if` and `else` have incompatible types",
    ]


def test_distant_lines_are_elided(tmp_path: Path) -> None:
    diags = _diagnose(
        tmp_path,
        "fn take(v: Vec<u32>) -> usize {@E\n"
        "    let a = v;\n"
        "    let n = 1;\n"
        "    let m = 2;\n"
        "    for _ in 0..n + m {@T }\n"
        "    v.len() + a.len()\n"
        "}\n",
    )
    [d] = diags.errors
    lines = d.rendered.splitlines()
    assert lines[:11] == [
        "error[E0382]: borrow of moved value: `v`",
        " --> candidate.rs:6:5",
        "  |",
        "1 | fn take(v: Vec<u32>) -> usize {",
        "  |         - move occurs because `v` has type `Vec<u32>`, which does not implement the "
        "`Copy` trait",
        "2 |     let a = v;",
        "  |             - value moved here",
        "...",
        "6 |     v.len() + a.len()",
        "  |     ^ value borrowed here after move",
        "  |",
    ]
    assert "2 |     let a = v.clone();" in lines


def test_non_ascii_line_counts_characters_and_display_width(tmp_path: Path) -> None:
    diags = _diagnose(
        tmp_path,
        "fn s() -> u32 {@E\n"
        '    let café = "日本語"; for _ in 0..1 {@T let n: u32 = café; }\n'
        "    0\n"
        "}\n",
    )
    [d] = diags.errors
    line = '    let café = "日本語"; for _ in 0..1 { let n: u32 = café; }'
    column = line.rindex("café") + 1
    assert (d.line, d.column) == (2, column) == (2, 52)
    assert d.rendered.splitlines()[1] == " --> candidate.rs:2:52"
    # The three wide characters take two cells each, so the markers sit three cells further
    # right than the character count says.
    under = " " * (line.index("u32") + 3)
    assert d.rendered.splitlines()[3:5] == [
        f"2 | {line}",
        f"  | {under}---   ^^^^ expected `u32`, found `&str`",
    ]


def test_unresolved_name(tmp_path: Path) -> None:
    diags = _diagnose(
        tmp_path,
        "fn u(n: u32) -> u32 {@E let mut s = 0; for i in 0..n {@T s += undefined_name * i; } s }\n",
    )
    [d] = diags.errors
    original = "fn u(n: u32) -> u32 { let mut s = 0; for i in 0..n { s += undefined_name * i; } s }"
    pad = " " * original.index("undefined_name")
    assert d.message == "cannot find value `undefined_name` in this scope"
    assert (d.line, d.column) == (1, len(pad) + 1) == (1, 59)
    assert d.rendered.splitlines() == [
        "error[E0425]: cannot find value `undefined_name` in this scope",
        " --> candidate.rs:1:59",
        "  |",
        f"1 | {original}",
        f"  | {pad}^^^^^^^^^^^^^^ not found in this scope",
    ]


def test_without_insertions_the_rendering_matches_rustc(tmp_path: Path) -> None:
    source = (
        "fn g() -> u32 {\n"
        '    let s: u32 = "héllo";\n'
        "    undefined_name + 1\n"
        "}\n"
        "fn e() -> u64 { let a: u32 = 1; a }\n"
    )
    stderr = _rustc(tmp_path, source)
    ours = parse_rustc_json(stderr, source=source)
    theirs = parse_rustc_json(stderr)
    assert [d.rendered.rstrip() for d in ours.errors] == _rustc_rendered(stderr)
    assert [(d.line, d.column) for d in ours.errors] == [(d.line, d.column) for d in theirs.errors]
    assert len(ours.errors) == 3


def test_error_in_generated_code_keeps_rustc_text(tmp_path: Path) -> None:
    diags = _diagnose(
        tmp_path,
        "pub fn f(x: u64) -> u64 {@E x }\n",
        glue="pub fn wrapper() -> u64 { f(1u32) }\n",
    )
    [d] = diags.errors
    assert (d.file, d.line, d.column) == ("lib.rs", 4, 29)
    lines = d.rendered.splitlines()
    assert lines[:2] == ["error[E0308]: mismatched types", " --> lib.rs:4:29"]
    assert "4 | pub fn wrapper() -> u64 { f(1u32) }" in lines
    # rustc's excerpt of the candidate, with the insertion stripped and its place moved back.
    assert " --> candidate.rs:1:8" in lines
    assert "1 | pub fn f(x: u64) -> u64 { x }" in lines
    assert "(this error is reported in lib.rs" in diags.render()


def test_no_rendered_output_contains_inserted_text(tmp_path: Path) -> None:
    marked = (
        "fn cl() -> u32 {@E let f = |x: u32| {@E x + 1 }; f }\n"
        "fn b3(x: bool) -> Option<u32> {@E if x { Some(1) } else { for _ in 0..1 {@T } } }\n"
        "fn d(x: u32) -> Option<u32> {@E loop {@T break x; } }\n"
        "fn w(v: &mut Vec<u32>) -> u32 {@E let a = &v[0]; for _ in 0..1 {@T v.push(1); } *a }\n"
        "fn r(n: u64) -> u64 {@E if n == 0 {@T 0 } else { r(n - 1, 2) } }\n"
    )
    diags = _diagnose(tmp_path, marked)  # asserts the absence everywhere
    assert len(diags.errors) == 5
    text = diags.render()
    # rustc names the closure by its place in the compiled file; it is moved back.
    assert "`{closure@candidate.rs:1:26: 1:34}`" in text
    # A tail expression suggested at the end of an instrumented block.
    assert "2 | fn b3(x: bool) -> Option<u32> { if x { Some(1) } else { for _ in 0..1 { }" in text
    assert "3 | None } }\n  | ++++" in text


def test_without_source_behaviour_is_unchanged(tmp_path: Path) -> None:
    _, _, compiled = _instrument(
        'fn f(x: u64) -> u64 {@E let y = (1); x * "3" }\nfn g() -> u32 {@E nope }\n'
    )
    stderr = _rustc(tmp_path, compiled)
    diags = parse_rustc_json(stderr)
    assert [d.rendered.rstrip() for d in diags.errors] == _rustc_rendered(stderr)
    assert diags.warnings == 1
    # Nothing to map back to: rustc's coordinates and excerpts of the compiled file.
    assert [(d.message, d.line, d.column) for d in diags.errors] == [
        ("cannot find value `nope` in this scope", 2, 30),
        ("cannot multiply `u64` by `&str`", 1, 51),
    ]
    assert all("__sb_enter();" in d.rendered for d in diags.errors)
    text = diags.render()
    assert "parentheses" not in text and "aborting due to" not in text


def test_render_limits_the_errors_it_shows(tmp_path: Path) -> None:
    marked = "".join(f"fn f{i}() -> u32 {{@E missing_{i} }}\n" for i in range(10))
    diags = _diagnose(tmp_path, marked)
    assert len(diags.errors) == 10
    text = diags.render(limit=3)
    assert "missing_2" in text and "missing_3" not in text
    assert text.endswith("... and 7 more error(s)")


@pytest.mark.parametrize("source", [None, "fn f() {}\n"])
def test_stray_stderr_is_kept_when_no_structured_error(source: str | None) -> None:
    stderr = "error: linking with `cc` failed: exit status: 1\nnote: ld: cannot find -lfoo\n"
    diags = parse_rustc_json(stderr, source=source, insertions=[(8, "__sb_enter();")])
    [d] = diags.errors
    assert d.rendered == stderr.rstrip()
    assert d.file is None
