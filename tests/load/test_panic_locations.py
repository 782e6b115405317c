"""Panic locations name a line and character column of the code the LLM wrote, whatever guards
were inserted before the panic on its line, however the line is indented, and in whichever
layout of the same tokens the library was built from."""

from __future__ import annotations

import pytest

import symbiont as sb
from symbiont.testing import ScriptedAgent

DECL = "fn run(n: u64) -> u64 { n }"

# A tab and a wide character before the panic, and a loop whose body gets a guard inserted
# before it on the same line: rustc counts display cells there (a tab is four, `中` two).
LINE = '\tlet s = "中"; let mut t = 0; for i in 0..n { t += i; } [s.len() as u64][n as usize] + t'
CODE = "fn run(n: u64) -> u64 {\n" + LINE + "\n}"
COLUMN = LINE.index("[s.len()") + 1  # 1-based characters


def fenced(code: str) -> str:
    return f"```rust\n{code}\n```"


def test_a_panic_after_a_guard_on_an_indented_line_reports_the_written_column() -> None:
    rt = sb.Runtime(sb.evolvable(DECL))
    n = rt.register(CODE)
    assert rt.revision(n).fns.run(0) == 3
    with pytest.raises(sb.PanicError, match="index out of bounds") as info:
        rt.revision(n).fns.run(5)
    assert (info.value.file, info.value.line, info.value.column) == ("candidate.rs", 2, COLUMN)


def test_a_panic_in_a_library_built_from_another_layout_points_at_the_code_sent() -> None:
    rt = sb.Runtime(sb.evolvable(DECL))
    spaced = (
        "// another layout of the same tokens\nfn run(n: u64)\n    -> u64\n{\n\n" + LINE + "\n}"
    )
    rt.register(spaced)  # built from this layout: the panic is on its line 6
    agent = ScriptedAgent([fenced(CODE), fenced("fn run(n: u64) -> u64 { n + 11 }")])
    info = rt.evolve(agent, "Do not panic.", check=lambda fns: fns.run(5))
    failure = info.trace.attempts[0].failure
    assert failure is not None and failure.kind == "panic"
    assert (failure.line, failure.column) == (2, COLUMN)
    # The excerpt's caret sits under the `[` of the written line.
    lines = failure.excerpt.splitlines()
    assert lines[0].endswith(LINE)
    assert lines[1].index("^") - (len(lines[0]) - len(LINE)) == COLUMN - 1
