"""What a build can reach and what it shows: limits, environment, other files, links, crashes.

Candidates here go straight to the builder, past the policy scan, as a candidate the scan
misses would: these are the second line of defence. Every case runs the real rustc.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import symbiont as sb
from symbiont._codegen import generate
from symbiont._compile import (
    Builder,
    BuildResult,
    build_environment,
    find_toolchain,
    parse_rustc_json,
)
from symbiont._compile import _limits as limits_module
from symbiont._decl import evolvable

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="resource limits: Linux"),
]

DECLS = evolvable("fn f(x: u64) -> u64 { x }")
F = "fn f(x: u64) -> u64 { x }\n"


DEFAULT = sb.BuildLimits()


def build(
    tmp_path: Path, code: str, limits: sb.BuildLimits | None = DEFAULT, **kw: object
) -> BuildResult:
    builder = Builder(find_toolchain(), cache_dir=tmp_path / "cache", limits=limits, **kw)  # type: ignore[arg-type]
    return asyncio.run(builder.build(generate(DECLS, code), code))


def rendered(result: BuildResult) -> str:
    assert not result.ok
    assert result.diagnostics is not None
    return result.diagnostics.render()


@pytest.fixture(params=["prlimit", "python"])
def launcher(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of applying the limits: util-linux's prlimit, and the Python launcher."""
    if request.param == "python":
        monkeypatch.setattr(limits_module, "_prlimit", lambda: None)
    elif limits_module._prlimit() is None:
        pytest.skip("prlimit is not installed")
    return str(request.param)


# ------------------------------------------------------------------------------ other files


def test_a_file_outside_the_candidate_is_never_quoted(tmp_path: Path) -> None:
    secret = tmp_path / "service.env"
    secret.write_text("OPENAI_API_KEY=sk-live-0123456789\nmore text\n")
    text = rendered(build(tmp_path, F + f'#[path = "{secret}"]\nmod p;\n'))
    assert "sk-live" not in text and "OPENAI_API_KEY" not in text
    assert str(secret) not in text and "service.env" not in text
    assert "a file that is not your code" in text


def test_passwd_through_path_is_not_quoted(tmp_path: Path) -> None:
    text = rendered(build(tmp_path, F + '#[path = "/etc/passwd"]\nmod p;\n'))
    assert "root:" not in text and "/etc/passwd" not in text


def test_errors_in_the_candidate_still_show_its_lines(tmp_path: Path) -> None:
    text = rendered(build(tmp_path, 'fn f(x: u64) -> u64 {\n    x + "one"\n}\n'))
    assert '2 |     x + "one"' in text


def test_spans_in_the_standard_library_keep_their_message_but_not_their_path(
    tmp_path: Path,
) -> None:
    (tmp_path / "lib.rs").write_text(
        'pub fn w() -> u64 {\n    let mut v: Vec<u64> = Vec::new();\n    v.push("a");\n    0\n}\n'
    )
    proc = subprocess.run(
        [find_toolchain().rustc, "--crate-type", "rlib", "--error-format=json", "lib.rs"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env=build_environment(),
    )  # fmt: skip
    assert "library/alloc" in proc.stderr  # rustc points into the standard library
    text = parse_rustc_json(proc.stderr, own_files=("lib.rs",)).render()
    assert "library/alloc" not in text and "/rustc/" not in text
    assert "mismatched types" in text and " --> lib.rs:3:12" in text
    assert "method defined here" in text


# ------------------------------------------------------------------------- links, crashes


def test_a_failed_link_is_a_few_lines_without_paths_or_command_line(tmp_path: Path) -> None:
    result = build(tmp_path, F, extra_flags=("-C", "link-arg=-lsymbiont_missing_library"))
    text = rendered(result)
    assert text.startswith("error: linking the library failed")
    assert "symbiont_missing_library" in text  # the linker's own complaint is kept
    assert len(text.splitlines()) <= 5, text
    assert str(tmp_path) not in text and "-Wl," not in text and '"cc"' not in text


def test_a_compiler_crash_is_one_short_error(tmp_path: Path) -> None:
    # A real rustc panic: stable rustc accepts -Z flags only with RUSTC_BOOTSTRAP set.
    (tmp_path / "lib.rs").write_text('pub fn f() -> u32 { "x" }\n')
    proc = subprocess.run(
        [find_toolchain().rustc, "--crate-type", "cdylib", "--error-format=json",
         "-Ztreat-err-as-bug=1", "lib.rs", "-o", "out.so"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={**build_environment(), "RUSTC_BOOTSTRAP": "1"},
    )  # fmt: skip
    assert "panicked" in proc.stderr
    diags = parse_rustc_json(proc.stderr, own_files=("lib.rs",))
    [error] = diags.errors
    text = diags.render()
    assert text.startswith("error: the compiler crashed on this code")
    assert "treat-err-as-bug" in text  # the panic message, which names the cause
    assert "/rustc" not in text and "compiler flags" not in text and "query stack" not in text
    assert len(text.splitlines()) <= 3
    assert error.file is None


# ---------------------------------------------------------------------------- environment


def test_rustc_sees_no_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("SYMBIONT_SECRET_SEEN", "1")
    # Compiles only when PATH is visible and the key and the other variable are not.
    code = F + (
        'const _: () = assert!(option_env!("OPENAI_API_KEY").is_none());\n'
        'const _: () = assert!(option_env!("SYMBIONT_SECRET_SEEN").is_none());\n'
        'const _: () = assert!(option_env!("PATH").is_some());\n'
    )
    result = build(tmp_path, code)
    assert result.ok, result.diagnostics


def test_build_environment_keeps_only_what_the_toolchain_needs() -> None:
    host = {
        "PATH": "/bin", "HOME": "/home/u", "RUSTUP_HOME": "/r", "CARGO_HOME": "/c",
        "TMPDIR": "/t", "LANG": "C.UTF-8", "LC_ALL": "C", "OPENAI_API_KEY": "sk",
        "AWS_SECRET_ACCESS_KEY": "x", "RUSTC_BOOTSTRAP": "1", "BASE_URL": "http://x",
    }  # fmt: skip
    env = build_environment(host)
    assert set(env) == {
        "PATH", "HOME", "RUSTUP_HOME", "CARGO_HOME", "TMPDIR", "LANG", "LC_ALL",
        "RUSTC_ICE", "RUST_BACKTRACE",
    }  # fmt: skip


# --------------------------------------------------------------------------------- limits


def test_cpu_limit_stops_a_long_constant_evaluation(tmp_path: Path, launcher: str) -> None:
    code = (
        "fn f(x: u64) -> u64 { x + SPIN }\n"
        "#[allow(long_running_const_eval)]\n"
        "const SPIN: u64 = { let mut i = 0u64; let mut s = 0u64;\n"
        "    while i < u64::MAX { s = s.wrapping_add(i ^ (s >> 3)); i += 1; } s };\n"
    )
    result = build(tmp_path, code, sb.BuildLimits(cpu_seconds=2), timeout=150.0)
    assert result.timed_out
    assert "CPU-time limit of 2 s" in rendered(result)


def test_output_limit_stops_a_huge_table(tmp_path: Path, launcher: str) -> None:
    code = (
        "fn f(x: u64) -> u64 { TABLE[(x as usize) % TABLE.len()] as u64 }\n"
        "const TABLE: [u8; 8 << 20] = [3; 8 << 20];\n"
    )
    result = build(tmp_path, code, sb.BuildLimits(output=1 << 20))
    assert not result.timed_out
    assert "larger than its limit of 1 MiB" in rendered(result)
    # The same table builds without that limit: it was the limit that stopped it.
    assert build(tmp_path / "free", code).ok


def test_memory_limit_refuses_a_terabyte_constant_quickly(tmp_path: Path, launcher: str) -> None:
    code = "fn f(x: u64) -> u64 { x + BIG[3] as u64 }\nconst BIG: [u8; 1 << 40] = [0; 1 << 40];\n"
    text = rendered(build(tmp_path, code))
    assert "tried to allocate more memory than available to compiler" in text


def test_limits_are_checked() -> None:
    with pytest.raises(sb.ConfigError, match=r"BuildLimits\.memory"):
        sb.BuildLimits(memory=0)
    with pytest.raises(sb.ConfigError, match="build_limits"):
        sb.Runtime("fn f(x: u64) -> u64 { x }", build_limits={"memory": 1})  # type: ignore[arg-type]


def test_process_limit_is_relative_to_what_runs_now() -> None:
    limits = sb.BuildLimits(processes=50).rlimits()
    soft, hard = limits["nproc"]
    assert soft == hard > 50


def _rustc_children() -> list[int]:
    """Pids of this process's child processes running rustc (under prlimit's exec or not)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == os.getpid() and "rustc" in (entry / "comm").read_text():
                    found.append(int(entry.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_compiler_killed_from_outside_is_not_blamed_on_the_cpu_limit(tmp_path: Path) -> None:
    # kill -9 (or the OOM killer) ended rustc in a tenth of a second; the LLM was told its code
    # used the 60 s CPU limit.
    code = (
        "fn f(x: u64) -> u64 { x + SPIN }\n"
        "#[allow(long_running_const_eval)]\n"
        "const SPIN: u64 = { let mut i = 0u64; let mut s = 0u64;\n"
        "    while i < u64::MAX { s = s.wrapping_add(i ^ (s >> 3)); i += 1; } s };\n"
    )
    assert build(tmp_path, "fn f(x: u64) -> u64 { x }\n").ok  # the support crate is built once
    results: list[BuildResult] = []
    thread = threading.Thread(target=lambda: results.append(build(tmp_path, code)))
    thread.start()
    killed = False
    for _ in range(600):
        for pid in _rustc_children():
            os.kill(pid, signal.SIGKILL)
            killed = True
        if killed or not thread.is_alive():
            break
        time.sleep(0.05)
    thread.join(150)
    assert killed and results
    text = rendered(results[0])
    assert "killed from outside the build" in text
    assert "CPU-time limit" not in text
    assert not results[0].timed_out


def test_only_a_build_that_could_have_spent_its_cpu_time_is_blamed_on_the_limit() -> None:
    limits = sb.BuildLimits(cpu_seconds=60)
    assert limits.explain(-signal.SIGKILL, "", 0.1) is None
    explained = limits.explain(-signal.SIGKILL, "", 61.0)
    assert explained is not None and "CPU-time limit of 60 s" in explained[0]
    assert limits.explain(-signal.SIGXCPU, "", 0.1) is not None
