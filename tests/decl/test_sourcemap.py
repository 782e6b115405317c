"""Source positions: one text in every unit, the map of guard insertions and of two layouts of
the same tokens, and the units rustc really uses (compiled and run here)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from symbiont._codegen import instrument
from symbiont._compile import find_toolchain
from symbiont._decl._sourcemap import SourceMap, SourceText, display_width

# Line 2 starts with a tab and holds a two-byte, a three-byte and a four-byte character.
TEXT = 'fn f() {\n\tlet s = "é中😀"; x\n}\r\nlast'


# ---------------------------------------------------------------------------------- SourceText


def test_lines_without_their_endings_and_out_of_range() -> None:
    src = SourceText(TEXT)
    assert src.starts == (0, 9, 33, 36)
    assert [src.line(n) for n in range(1, 5)] == ["fn f() {", '\tlet s = "é中😀"; x', "}", "last"]
    assert src.line(0) is None and src.line(5) is None
    assert src.offset(5, 1) is None
    assert src.line_end(2) == 35  # the `\n` of a CRLF line: the `\r` belongs to the line


def test_ascii_positions_agree_in_every_unit() -> None:
    src = SourceText(TEXT)
    for unit in ("byte", "char", "display"):
        assert src.offset(1, 4, unit) == 3  # `f`
        assert src.position(3, unit) == (1, 4)


def test_multibyte_characters_count_differently_per_unit() -> None:
    src = SourceText(TEXT)
    x = TEXT.encode().index(b"; x") + 2  # `x` on line 2
    assert src.position(x, "byte") == (2, 23)
    assert src.position(x, "char") == (2, 17)  # é, 中 and 😀 count one each, the tab too
    assert src.position(x, "display") == (2, 22)  # tab 4, 中 2, 😀 2
    for unit, column in (("byte", 23), ("char", 17), ("display", 22)):
        assert src.offset(2, column, unit) == x
    assert src.locate(x) == (1, 16)


def test_display_columns_skip_zero_width_characters() -> None:
    src = SourceText('"e\u0301"x')  # e + combining acute accent: one cell
    assert display_width('"e\u0301"') == 3
    # The accent shares a cell with the closing quote: that cell is the quote's.
    assert src.offset(1, 3, "display") == len('"e\u0301'.encode())
    assert src.position(len('"e\u0301"'.encode()), "display") == (1, 4)  # `x`
    assert display_width("\u200b\u00ad") == 1  # zero-width space: none; soft hyphen: drawn


def test_end_of_line_end_of_file_and_past_the_end() -> None:
    src = SourceText(TEXT)
    assert src.offset(1, 9) == 8  # just past `{`: the newline
    assert src.offset(1, 99) == 8  # a column past the end is the end of the line
    assert src.offset(3, 2) == 34  # past `}` on a CRLF line: the `\r`, not after it
    assert src.offset(4, 5) == len(TEXT.encode())
    assert src.position(len(TEXT.encode())) == (4, 5)
    assert src.position(10_000) == (4, 5)  # clamped
    assert src.offset(2, 99, "display") == 32
    assert src.offset(2, 99, "byte") == 32


# ---------------------------------------------------------------------------- guard insertions

ENTER = "__sb_enter();"  # 13 bytes
TICK = "__sb_tick();"  # 12 bytes


def test_compiled_offsets_map_back_and_inserted_texts_snap_to_their_place() -> None:
    written = "fn f() { for _ in 0..1 { } }"
    smap = SourceMap.with_insertions(written, [(24, TICK), (8, ENTER)])  # any order
    assert smap.compiled.text == "fn f() {__sb_enter(); for _ in 0..1 {__sb_tick(); } }"
    assert smap.inserted == (ENTER, TICK)
    cases = {0: 0, 8: 8, 14: 8, 21: 8, 30: 17, 37: 24, 49: 24, 52: 27, 53: 28}
    assert {c: smap.to_written(c) for c in cases} == cases
    # ... and the way back: a written byte is where it ended up, after any insertion before it.
    assert [smap.to_compiled(w) for w in (0, 7, 8, 17, 24, 28)] == [0, 7, 21, 30, 49, 53]
    for w in range(len(written) + 1):
        assert smap.to_written(smap.to_compiled(w)) == w


def test_insertions_at_the_start_the_end_and_the_same_place() -> None:
    smap = SourceMap.with_insertions("ab", [(0, "<"), (2, ">"), (2, "}")])
    assert smap.compiled.text == "<ab>}"
    assert [smap.to_written(c) for c in range(6)] == [0, 0, 1, 2, 2, 2]
    assert smap.inserted == ("<", ">", "}")
    empty = SourceMap.with_insertions("", [(0, "x")])
    assert (empty.compiled.text, empty.to_written(1), empty.to_compiled(0)) == ("x", 0, 1)


def test_columns_after_an_insertion_on_a_line_with_wide_characters_and_tabs() -> None:
    written = "fn f() {\n\tlet s = '中'; for i in 0..n { s += i; }\n}\n"
    at = written.encode().index(b"{ s +=") + 1
    smap = SourceMap.with_insertions(written, [(at, TICK)])
    line = smap.compiled.line(2)
    assert line is not None and TICK in line
    s_compiled = line.index("s +=")  # 0-based character column in the compiled line
    want = (2, written.splitlines()[1].index("s +=") + 1)
    assert smap.written_position(2, s_compiled + 1, "char") == want
    display = 1 + 4 + len("let s = '") + 2 + len("'; for i in 0..n {") + len(TICK) + 1
    assert smap.written_position(2, display, "display") == want
    # A place inside the inserted call (a guard's own panic) is the place it was inserted.
    inside = line.index("__sb_tick") + 3
    assert smap.written_position(2, inside, "char") == smap.written.position(at)
    assert smap.written_position(3, 1) == (3, 1)
    assert smap.written_position(9, 1) is None
    # Written to compiled: the same character, its column moved right by the insertion.
    assert smap.compiled_position(*want) == (2, s_compiled + 1)


def test_the_map_of_code_without_guards_is_the_identity() -> None:
    for smap in (SourceMap.identity(TEXT), SourceMap.with_insertions(TEXT, ())):
        assert smap.compiled.text == TEXT and smap.inserted == ()
        for offset in range(len(TEXT.encode()) + 1):
            assert smap.to_written(offset) == offset == smap.to_compiled(offset)
        assert smap.written_position(2, 22, "display") == (2, 17)


def test_the_guards_symbiont_inserts_map_back_token_by_token() -> None:
    code = (
        "fn g(n: u64) -> u64 {\n"
        "\tif n == 0 { 0 } else { (0..n).map(|x| x * 2).sum::<u64>() + g(n - 1) }\n}\n"
    )
    out = instrument(code)
    smap = SourceMap.with_insertions(code, out.insertions)
    assert smap.compiled.text == out.code
    for token in ("(0..n)", "x * 2", "g(n - 1)", "sum"):
        c = out.code.encode().index(token.encode())
        assert smap.to_written(c) == code.encode().index(token.encode()), token


# ----------------------------------------------------------------------------- other layouts

COMPACT = 'fn f(x: u64) -> u64 {\n    let s = "é 中"; if x > 3 { panic!("{s}") }\n    x\n}\n'
SPACED = (
    "// the same tokens, another layout\n"
    "fn f(x: u64) -> u64\n{\n\n"
    '    let s = "é 中";\n'
    "    if x > 3 {\n"
    '        panic!("{s}")  // a comment the other layout lacks\n'
    "    }\n"
    "    x\n}"
)


def test_a_layout_maps_each_token_to_the_same_token() -> None:
    smap = SourceMap.between_layouts(SPACED, COMPACT)
    assert smap is not None
    for token in ("panic", '"{s}"', "if", "x\n}", '"é 中"'):
        old, new = SPACED.encode().index(token.encode()), COMPACT.encode().index(token.encode())
        assert smap.to_written(old) == new, token
        assert smap.to_compiled(new) == old, token
    # Inside a token: the same offset within it (here inside a string with a wide character).
    inside = SPACED.encode().index("中".encode())
    assert smap.to_written(inside) == COMPACT.encode().index("中".encode())
    # Line and character column: `panic` is on line 7 column 9 of one, line 2 of the other.
    assert smap.written_position(7, 9) == (2, COMPACT.splitlines()[1].index("panic") + 1)


def test_whitespace_and_comments_map_to_the_next_token() -> None:
    smap = SourceMap.between_layouts(SPACED, COMPACT)
    assert smap is not None
    comment = SPACED.encode().index(b"// a comment")
    assert smap.to_written(comment) == COMPACT.encode().index(b"}\n    x")
    assert smap.to_written(0) == 0  # the leading comment: the first token, `fn`
    assert smap.written_position(4, 1) == (2, 5)  # the empty line before `let`
    assert smap.to_written(len(SPACED.encode())) == len(COMPACT.encode())


def test_layouts_of_different_tokens_have_no_map() -> None:
    assert SourceMap.between_layouts("fn f() { 1 }", "fn f() { 2 }") is None
    assert SourceMap.between_layouts("fn f() { 1 }", "fn f() {1}") is not None


# ----------------------------------------------------------------- the units rustc really uses


@pytest.fixture(scope="module")
def rustc() -> str:
    return find_toolchain().rustc


def test_rustc_json_spans_are_bytes_and_character_columns(tmp_path: Path, rustc: str) -> None:
    # Tabs, wide characters, an emoji, a combining mark and a CRLF line before each error.
    source = (
        "fn main() {\r\n"
        '\tlet _s = "中😀"; let _ = 1u8 + "a";\n'
        '    let _t = "e\u0301"; let _ = 1u8 + "b";\n'
        "\t\tlet c = |x: u8| x; let () = c;\n"
        "}\n"
    )
    (tmp_path / "a.rs").write_bytes(source.encode())
    proc = subprocess.run(
        [rustc, "--edition", "2021", "--error-format=json", "a.rs", "-o", "a"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    src = SourceText(source)
    spans = []
    closure = None
    for line in proc.stderr.splitlines():
        d = json.loads(line)
        if d.get("level") == "error" and d.get("spans"):
            spans += d["spans"]
            closure = closure or next(
                (c["message"] for c in d["children"] if "{closure@" in c["message"]), None
            )
    assert len(spans) >= 4, proc.stderr
    for span in spans:
        where = (span["line_start"], span["column_start"])
        assert src.offset(*where, "char") == span["byte_start"], span
        assert src.position(span["byte_start"], "char") == where, span
        assert src.position(span["byte_end"], "char") == (span["line_end"], span["column_end"])
    # Places named in messages count characters too.
    lambda_at = src.position(source.encode().index(b"|x: u8|"))
    assert closure is not None and f"a.rs:{lambda_at[0]}:{lambda_at[1]}:" in closure


def test_panic_columns_are_display_cells(tmp_path: Path, rustc: str) -> None:
    body = [
        "a[i]",
        '{ let _s = "中"; a[i] }',
        '{ let _s = "😀e\u0301"; a[i] }',
    ]
    lines = [f"\t\tlet _ = std::panic::catch_unwind(|| {b});" for b in body]
    source = (
        "fn main() {\n"
        "    std::panic::set_hook(Box::new(|i| { let l = i.location().unwrap();"
        ' eprintln!("AT {}:{}", l.line(), l.column()); }));\n'
        "    let a: &[u8] = &[1]; let i = std::hint::black_box(5usize);\n"
        + "\n".join(lines)
        + "\n}\n"
    )
    (tmp_path / "p.rs").write_bytes(source.encode())
    build = subprocess.run(
        [rustc, "--edition", "2021", "p.rs", "-o", "p"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    run = subprocess.run(
        [str(tmp_path / "p")], capture_output=True, text=True, timeout=60, check=False
    )
    reported = [ln.removeprefix("AT ") for ln in run.stderr.splitlines() if ln.startswith("AT ")]
    src = SourceText(source)
    expected = []
    for n, text in enumerate(lines, start=4):
        offset = src.starts[n - 1] + len(text[: text.index("a[i]")].encode())
        line, column = src.position(offset, "display")
        assert src.offset(line, column, "display") == offset
        expected.append(f"{line}:{column}")
    assert reported == expected
    # The first has only the tabs (4 cells each) before it; its character column is smaller.
    assert src.position(src.starts[3] + lines[0].index("a[i]"), "char")[1] + 6 == int(
        expected[0].split(":")[1]
    )
