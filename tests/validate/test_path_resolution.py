"""Denied paths, resolved through `use` aliases, nested use trees, globs and macro token trees."""

import pytest

from symbiont._decl import evolvable
from symbiont._validate import Candidate, Policy, Rejection, validate_code

DECLS = evolvable("fn score(xs: &[f64]) -> f64 { 0.0 }")
DEFAULT = Policy()


def score(body: str) -> str:
    """A candidate whose `score` body is ``body`` (starting on line 2)."""
    return f"fn score(xs: &[f64]) -> f64 {{\n{body}    xs[0]\n}}\n"


def denied(code: str, construct: str, line: int, policy: Policy = DEFAULT) -> Rejection:
    result = validate_code(code, DECLS, policy)
    assert isinstance(result, Rejection), result
    assert result.kind == "forbidden", result.message
    assert result.construct == construct
    assert result.line == line
    assert construct in result.message
    return result


def accepted(code: str, policy: Policy = DEFAULT) -> None:
    result = validate_code(code, DECLS, policy)
    assert isinstance(result, Candidate), getattr(result, "message", result)


def test_plain_path() -> None:
    rejection = denied(score("    std::process::exit(0);\n"), "std::process::exit", 2)
    assert "exits the host Python process" in rejection.message


def test_leading_colons() -> None:
    denied(score("    ::std::process::exit(0);\n"), "std::process::exit", 2)


def test_core_spelling_is_matched_as_std() -> None:
    rejection = denied(
        score("    let c = core::cell::Cell::new(1);\n"),
        "std::cell::Cell::new",
        2,
        Policy.create(deny=["std::cell"]),
    )
    assert "`core::cell::Cell::new` (that is `std::cell::Cell::new`)" in rejection.message


def test_use_module_then_relative_path() -> None:
    code = "use std::process;\n" + score("    process::exit(1);\n")
    rejection = denied(code, "std::process", 1)
    assert "line 3: `process::exit` (that is `std::process::exit`)" in rejection.message


def test_use_module_alias() -> None:
    code = "use std::process as p;\n" + score("    p::exit(0);\n")
    rejection = denied(code, "std::process", 1)
    assert "`p::exit` (that is `std::process::exit`)" in rejection.message


def test_crate_alias() -> None:
    code = "use std as s;\n" + score("    s::process::exit(0);\n")
    denied(code, "std::process::exit", 3)


def test_nested_use_tree() -> None:
    code = "use std::{fs, process::{self as pr, exit}};\n" + score("    pr::abort();\n")
    rejection = denied(code, "std::fs", 1)
    assert "`use std::process`" in rejection.message
    assert "`use std::process::exit`" in rejection.message
    assert "line 3: `pr::abort` (that is `std::process::abort`)" in rejection.message


def test_use_of_a_denied_item_is_rejected_at_the_use() -> None:
    code = "use std::process::exit;\n" + score("    exit(0);\n")
    rejection = denied(code, "std::process::exit", 1)
    assert "`use std::process::exit`" in rejection.message
    assert "line 3: `exit` (that is `std::process::exit`)" in rejection.message


def test_glob_of_a_denied_module_is_rejected_at_the_use() -> None:
    code = "use std::process::*;\n" + score("    exit(0);\n")
    rejection = denied(code, "std::process::*", 1)
    assert "`use std::process::*`" in rejection.message


def test_glob_of_std_resolves_later_paths() -> None:
    code = "use std::*;\n" + score("    process::exit(0);\n")
    denied(code, "std::process::exit", 3)


def test_glob_of_a_parent_module_resolves_a_denied_item() -> None:
    code = "use std::io::*;\n" + score(
        "    let mut line = String::new();\n    stdin().read_line(&mut line).ok();\n"
    )
    rejection = denied(code, "std::io::stdin", 4)
    assert "standard input" in rejection.message


def test_use_chain_through_an_earlier_import() -> None:
    code = "use std::io;\n" + score("    let _ = io::stdin();\n")
    denied(code, "std::io::stdin", 3)


def test_path_inside_a_macro_token_tree() -> None:
    code = score('    println!("{}", std::process::id());\n')
    denied(code, "std::process::id", 2)


def test_path_inside_a_nested_macro_and_format_args() -> None:
    code = score('    let s = format!("{:?}", vec![std::env::args().count()]);\n')
    denied(code, "std::env::args", 2)


def test_path_in_a_type_position() -> None:
    code = score("    let _f: Option<std::fs::File> = None;\n")
    denied(code, "std::fs::File", 2)


def test_path_in_a_helper_signature() -> None:
    code = score("") + "fn open(p: &str) -> std::io::Result<std::fs::File> {\n    todo!()\n}\n"
    denied(code, "std::fs::File", 4)


def test_use_inside_a_nested_module() -> None:
    code = "mod io_helpers {\n    use std::net::TcpStream;\n}\n" + score("")
    denied(code, "std::net::TcpStream", 2)


def test_use_inside_a_function_body() -> None:
    code = score("    use std::thread;\n    thread::sleep(std::time::Duration::from_millis(1));\n")
    rejection = denied(code, "std::thread", 2)
    assert "line 3: `thread::sleep` (that is `std::thread::sleep`)" in rejection.message


def test_use_in_the_prelude_is_visible_to_the_candidate() -> None:
    decls = evolvable("use std::env;\nfn score(xs: &[f64]) -> f64 { 0.0 }")
    result = validate_code(score("    let n = env::args().count();\n"), decls)
    assert isinstance(result, Rejection)
    assert result.construct == "std::env::args"
    assert result.line == 2


@pytest.mark.parametrize(
    ("path", "construct"),
    [
        ("std::thread::spawn(|| ())", "std::thread::spawn"),
        ('std::fs::read("x")', "std::fs::read"),
        ('std::net::TcpStream::connect("1.2.3.4:80")', "std::net::TcpStream::connect"),
        ('std::env::var("HOME")', "std::env::var"),
        ("std::os::raw::c_int::default()", "std::os::raw::c_int::default"),
        ("std::io::stdin()", "std::io::stdin"),
    ],
)
def test_every_default_denied_module(path: str, construct: str) -> None:
    denied(score(f"    let _ = {path};\n"), construct, 2)


def test_local_module_shadowing_a_glob_import_is_not_denied() -> None:
    code = (
        "use std::*;\n"
        "mod process {\n    pub fn exit(code: i32) -> f64 { code as f64 }\n}\n"
        + score("    process::exit(0);\n")
    )
    accepted(code)


def test_allow_readmits_one_item_of_a_denied_module() -> None:
    policy = Policy.create(allow=["std::thread::sleep"])
    code = score("    std::thread::sleep(std::time::Duration::from_millis(1));\n")
    accepted(code, policy)
    accepted("use std::thread::sleep;\n" + score("    sleep(std::time::Duration::ZERO);\n"), policy)
    denied(score("    std::thread::spawn(|| ());\n"), "std::thread::spawn", 2, policy)


def test_allow_wins_a_tie_with_deny() -> None:
    policy = Policy(denied_paths=("std::fs",), allowed_paths=("std::fs",))
    accepted(score('    let _ = std::fs::read("x");\n'), policy)


def test_longer_deny_beats_a_shorter_allow() -> None:
    policy = Policy(denied_paths=("std::io::stdin",), allowed_paths=("std::io",))
    denied(score("    let _ = std::io::stdin();\n"), "std::io::stdin", 2, policy)


def test_extra_deny_rejects_collections() -> None:
    policy = Policy.create(deny=["std::collections"])
    code = "use std::collections::HashMap;\n" + score(
        "    let mut m = HashMap::new();\n    m.insert(1, 2.0);\n"
    )
    rejection = denied(code, "std::collections::HashMap", 1, policy)
    assert "policy denies `std::collections`" in rejection.message
    assert "line 3: `HashMap::new`" in rejection.message


def test_configured_denied_macros() -> None:
    policy = Policy(denied_macros=("dbg",))
    code = score("    dbg!(xs.len());\n")
    assert "policy denies `dbg!`" in denied(code, "dbg!", 2, policy).message
    accepted(score('    let _ = env!("HOME");\n'), policy)


@pytest.mark.parametrize(
    "body",
    [
        '    let s = "std::process::exit(0)";\n',
        "    let m: std::collections::HashMap<u8, f64> = std::collections::HashMap::new();\n",
        "    let env = xs.len();\n    let process = env + 1;\n    let _ = process;\n",
        '    let mut out = Vec::new();\n    let _ = std::io::Write::write_all(&mut out, b"x");\n',
        "    let _ = std::panic::resume_unwind;\n",
        "    let _ = std::time::Instant::now();\n",
        "    let t = std::thread_local_key_is_not_a_thing;\n",
    ],
)
def test_allowed_paths_and_local_names(body: str) -> None:
    accepted(score(body))


def test_io_write_import_and_local_fields_named_like_denied_modules() -> None:
    code = (
        "use std::io::{self, Write};\nuse std::fmt::Write as _;\n"
        "struct Job { process: u32, env: u32 }\n"
        "impl Job { fn exit(&self) -> u32 { self.process + self.env } }\n"
        + score("    let job = Job { process: 1, env: 2 };\n    let _ = job.exit();\n")
        + "fn sink() -> io::Result<()> { io::sink().flush() }\n"
    )
    accepted(code)
