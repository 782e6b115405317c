"""Red team: candidates written to escape, as a prompt-injected task or a hostile endpoint would
send them. Each must end as a failure record (or a refused registration) with the host alive,
no host file or secret shown, and every build bounded.

Scenarios that could end the host run in a child process, so a regression fails the test
instead of killing pytest. The machine-code scenarios are x86-64 Linux assembly.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

import symbiont as sb
from symbiont.testing import ScriptedAgent

pytestmark = pytest.mark.timeout(240)

DECL = "fn run(n: u64) -> u64 { n }"
GOOD = "fn run(n: u64) -> u64 { n + 1 }"

x86_64_linux = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")),
    reason="the load-time payload is x86-64 Linux assembly",
)

# Runs `exit_group(42)` from `.init_array` when the library is loaded, before any guard, panic
# capture or check: the whole process ends with status 42. No `unsafe` anywhere.
LOAD_TIME_EXIT = textwrap.dedent(
    """\
    fn run(n: u64) -> u64 { n + 1 }
    std::arch::global_asm!(
        ".pushsection .init_array, \\"aw\\"",
        ".p2align 3",
        ".quad redteam_init",
        ".popsection",
        ".pushsection .text.redteam, \\"ax\\"",
        "redteam_init:",
        "mov edi, 42",
        "mov eax, 231",
        "syscall",
        ".popsection",
    );
    """
)
# The same payload through a `use` rename of the macro.
LOAD_TIME_EXIT_ALIASED = textwrap.dedent(
    """\
    use core::arch::global_asm as emit;
    fn run(n: u64) -> u64 { n + 1 }
    emit!(
        ".pushsection .init_array, \\"aw\\"",
        ".p2align 3",
        ".quad redteam_init",
        ".popsection",
        ".pushsection .text.redteam, \\"ax\\"",
        "redteam_init:",
        "mov edi, 42",
        "mov eax, 231",
        "syscall",
        ".popsection",
    );
    """
)


def fenced(code: str) -> str:
    return f"```rust\n{code.rstrip()}\n```"


def child(script: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Runs ``script`` in a fresh interpreter that imports this symbiont."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script)],
            capture_output=True, text=True, timeout=timeout, check=False, env=env,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the scenario did not finish in {timeout} s: {exc.stdout!r}")


def survived(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (
        f"the host process died with status {proc.returncode}:\n{proc.stderr[-1500:]}"
    )
    return proc.stdout


@pytest.fixture(scope="module")
def rt() -> sb.Runtime:
    return sb.Runtime(DECL)


def refused(rt: sb.Runtime, code: str) -> sb.CandidateError:
    with pytest.raises(sb.CandidateError) as info:
        rt.register(code)
    return info.value


# ------------------------------------------------------------------------ code at load time


@x86_64_linux
@pytest.mark.parametrize("code", [LOAD_TIME_EXIT, LOAD_TIME_EXIT_ALIASED], ids=["sym", "alias"])
def test_load_time_code_does_not_end_the_host_at_register(code: str) -> None:
    out = survived(
        child(
            f"""
            import symbiont as sb
            rt = sb.Runtime({DECL!r})
            try:
                rt.register({code!r})
                print("registered")
            except sb.CandidateError as exc:
                print("refused", exc.failure.kind, exc.failure.summary)
            """
        )
    )
    assert out.startswith("refused forbidden"), out
    assert "global_asm!" in out


@x86_64_linux
def test_load_time_code_does_not_end_the_host_when_evolving_under_isolation() -> None:
    replies = [fenced(LOAD_TIME_EXIT), fenced(GOOD)]
    out = survived(
        child(
            f"""
            import symbiont as sb
            from symbiont.testing import ScriptedAgent
            def check(fns):
                assert fns.run(1) == 2
            rt = sb.Runtime({DECL!r}, isolation="process")
            agent = ScriptedAgent({replies!r})
            info = rt.evolve(agent, "add one", check=check)
            print("revision", info.revision, [a.failure.kind for a in info.trace.attempts
                                              if a.failure is not None])
            print("host ok", rt.fns.run(1))
            rt.close()
            """
        )
    )
    assert "revision 1 ['forbidden']" in out, out
    assert "host ok 2" in out


@x86_64_linux
@pytest.mark.parametrize("with_check", [True, False], ids=["check", "no-check"])
def test_load_time_code_past_the_policy_ends_a_worker_not_the_host(with_check: bool) -> None:
    """The next policy miss, simulated by a scan that finds nothing: under isolation the
    library is loaded in a worker first, so only the worker ends."""
    out = survived(
        child(
            f"""
            import symbiont as sb
            import symbiont._validate._validate as validate
            validate.scan = lambda *args, **kwargs: []  # the policy misses it
            def check(fns):
                assert fns.run(1) == 2
            rt = sb.Runtime({DECL!r}, isolation="process")
            try:
                rt.register({LOAD_TIME_EXIT!r}, check=check if {with_check} else None)
                print("registered")
            except sb.CandidateError as exc:
                print("refused", exc.failure.kind, exc.failure.crash.exit_code)
            print("good", rt.register({GOOD!r}, check=check if {with_check} else None))
            print("host ok", rt.revision(1).fns.run(1))
            rt.close()
            """
        )
    )
    assert "refused crash 42" in out, out
    assert "good 1" in out and "host ok 2" in out


def test_a_raw_identifier_does_not_smuggle_process_exit_into_the_host() -> None:
    # `std::r#process::exit` is `std::process::exit` to rustc; the scan once read it as an
    # unknown path, registered it, and the first call ended the host with status 7.
    proc = child(
        f"""
        import symbiont as sb
        rt = sb.Runtime({DECL!r})
        for code in [
            "fn run(n: u64) -> u64 {{ std::r#process::exit(7) }}",
            "use r#std::r#process as p;\\nfn run(n: u64) -> u64 {{ p::exit(7) }}",
        ]:
            try:
                rt.activate(rt.register(code))
            except sb.CandidateError as exc:
                print(exc.failure.kind)
            print(rt.fns.run(1))
        """
    )
    assert survived(proc).split() == ["forbidden", "1", "forbidden", "1"]


def _cpu_has(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return any(flag in line.split() for line in f if line.startswith("flags"))
    except OSError:
        return False


@x86_64_linux
@pytest.mark.skipif(_cpu_has("tbm"), reason="this CPU runs TBM instructions")
def test_an_instruction_the_cpu_lacks_never_reaches_the_host() -> None:
    # `#[target_feature]` on the entry point needs no `unsafe`: LLVM compiled `!n | (n - 1)` to
    # TBM's `blsic`, and the first call ended the host with SIGILL.
    proc = child(
        f"""
        import symbiont as sb
        rt = sb.Runtime({DECL!r})
        code = (
            '#[target_feature(enable = "tbm")]\\n'
            'fn run(n: u64) -> u64 {{ !n | n.wrapping_sub(1) }}'
        )
        try:
            rt.activate(rt.register(code))
        except sb.CandidateError as exc:
            print(exc.failure.kind)
        print(rt.fns.run(1))
        """
    )
    assert survived(proc).split() == ["forbidden", "1"]


# -------------------------------------------------------------------- host files, secrets


def test_passwd_through_path_is_refused_and_never_quoted(rt: sb.Runtime) -> None:
    error = refused(rt, GOOD + '\n#[path = "/etc/passwd"]\nmod p;\n')
    assert error.failure.kind == "forbidden"
    assert "root:" not in error.failure.feedback
    assert "`#[path]`" in error.failure.feedback


def test_out_of_line_module_is_refused(rt: sb.Runtime) -> None:
    error = refused(rt, GOOD + "\nmod secrets;\n")
    assert error.failure.kind == "forbidden"
    assert "`mod secrets;`" in error.failure.feedback


@pytest.mark.parametrize(
    "code",
    [
        'use core::include_str as text;\nconst S: &str = text!("/etc/passwd");',
        'use std::{include_bytes as raw};\nconst S: &[u8] = raw!("/etc/passwd");',
        'use std::include as inc;\nconst S: &str = inc!("/etc/passwd");',
        'use core::option_env as var;\nconst S: Option<&str> = var!("OPENAI_API_KEY");',
        'use std::env as e;\nconst S: &str = e!("HOME");',
        'const S: usize = [include_bytes!("/etc/passwd")].len();',
        'const S: &str = concat!("x", include_str!("/etc/passwd"));',
        'const S: &[u8] = include_bytes!(concat!("/etc/", "pass", "wd"));',
        'const S: &str = concat!(stringify!(a), option_env!("API_KEY").unwrap_or(""));',
        'const S: Option<&str> = core::prelude::v1::option_env!("API_KEY");',
    ],
)
def test_build_machine_files_and_environment_through_renames_and_nesting(
    rt: sb.Runtime, code: str
) -> None:
    error = refused(rt, f"{code}\nfn run(n: u64) -> u64 {{ n + S.len() as u64 }}\n")
    assert error.failure.kind == "forbidden", error.failure.feedback
    assert "root:" not in error.failure.feedback


@pytest.mark.parametrize(
    "attribute",
    [
        'cfg_attr(all(), link_section = concat!(".init", "_array"))',
        "cfg_attr(all(), used)",
        "cfg_attr(all(), export_name = stringify!(PyInit_symbiont))",
    ],
)
def test_section_and_symbol_attributes_hidden_in_cfg_attr(rt: sb.Runtime, attribute: str) -> None:
    error = refused(rt, f"#[{attribute}]\nconst HOOK: u8 = 1;\nfn run(n: u64) -> u64 {{ n }}\n")
    assert error.failure.kind == "forbidden"


# ------------------------------------------------------------------------- bounded builds


def test_a_2_gib_constant_is_refused_quickly_without_linker_output(rt: sb.Runtime) -> None:
    error = refused(
        rt,
        "const BIG: [u8; 1 << 31] = [7; 1 << 31];\n"
        "fn run(n: u64) -> u64 { BIG[(n as usize) % BIG.len()] as u64 }\n",
    )
    feedback = error.failure.feedback
    assert error.failure.kind == "compile_error"
    assert "tried to allocate more memory than available to compiler" in feedback
    assert "linking" not in feedback and "-Wl," not in feedback and "/tmp" not in feedback


def test_a_terabyte_constant_is_refused_at_const_evaluation(rt: sb.Runtime) -> None:
    error = refused(
        rt,
        "const BIG: [u8; 1 << 40] = [0; 1 << 40];\n"
        "fn run(n: u64) -> u64 { BIG[(n as usize) % 7] as u64 }\n",
    )
    assert error.failure.kind == "compile_error"
    assert "tried to allocate more memory" in error.failure.feedback


def test_a_long_running_const_eval_with_the_lint_allowed_is_stopped_by_the_cpu_limit() -> None:
    rt = sb.Runtime(DECL, build_limits=sb.BuildLimits(cpu_seconds=3), build_timeout=100)
    error = refused(
        rt,
        "#[allow(long_running_const_eval)]\n"
        "const SPIN: u64 = { let mut i = 0u64; let mut s = 0u64;\n"
        "    while i < u64::MAX { s = s.wrapping_add(i ^ (s >> 3)); i += 1; } s };\n"
        "fn run(n: u64) -> u64 { n + SPIN }\n",
    )
    assert error.failure.kind == "build_timeout"
    assert "CPU-time limit of 3 s" in error.failure.feedback


def test_deep_generic_recursion_ends_at_the_recursion_limit(rt: sb.Runtime) -> None:
    error = refused(
        rt,
        "struct Wrap<T>(T);\n"
        "fn deep<T>(n: u64, t: T) -> u64 { if n == 0 { 0 } else { deep(n - 1, Wrap(t)) } }\n"
        "fn run(n: u64) -> u64 { deep(n, 0u8) }\n",
    )
    assert error.failure.kind == "compile_error"
    assert "recursion limit" in error.failure.feedback


def test_a_type_that_doubles_at_every_level_is_bounded() -> None:
    """2^64 nested tuples: rustc must give up (type length limit, memory or CPU limit), not
    run until the wall-clock timeout."""
    levels = "\n".join(f"type T{i + 1} = (T{i}, T{i});" for i in range(64))
    rt = sb.Runtime(DECL, build_limits=sb.BuildLimits(cpu_seconds=10), build_timeout=100)
    error = refused(
        rt,
        f"type T0 = u8;\n{levels}\n"
        "fn run(n: u64) -> u64 { n + std::mem::size_of::<T64>() as u64 }\n",
    )
    assert error.failure.kind in ("compile_error", "build_timeout")
    assert "stopped after 100 s" not in error.failure.feedback


# -------------------------------------------------------------------------- output, workers


def test_candidate_output_in_a_worker_reaches_neither_the_protocol_nor_the_host() -> None:
    code = (
        "fn run(n: u64) -> u64 {\n"
        '    println!("REDTEAM-STDOUT {n}");\n'
        '    eprintln!("REDTEAM-STDERR {n}");\n'
        '    print!("\\x00\\x00\\x00\\x08pickled?");\n'
        "    n + 1\n}\n"
    )
    proc = child(
        f"""
        import symbiont as sb
        def check(fns):
            assert fns.run(1) == 2
        rt = sb.Runtime({DECL!r}, isolation="process")
        print("registered", rt.register({code!r}, check=check))
        rt.close()
        """
    )
    out = survived(proc)
    assert out == "registered 1\n"
    assert "REDTEAM" not in proc.stderr


def test_evolve_under_isolation_feeds_the_refusal_back_and_recovers() -> None:
    rt = sb.Runtime(DECL, isolation="process")
    try:
        agent = ScriptedAgent(
            [
                "```rust\n" + GOOD + '\n#[path = "/etc/passwd"]\nmod p;\n```',
                "```rust\n" + GOOD + "\n```",
            ]
        )
        info = rt.evolve(agent, "add one", check=lambda fns: fns.run(1) == 2)
        assert rt.fns.run(1) == 2
        [failed] = [a.failure for a in info.trace.attempts if a.failure is not None]
        assert failed.kind == "forbidden"
        assert "root:" not in agent.requests[1].messages[-1].content
    finally:
        rt.close()
