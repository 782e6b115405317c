"""`symbiont bench`: the benchmarks are listed, found, run in a subprocess and reported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from symbiont._cli import _bench as bench
from symbiont._cli import build_parser
from symbiont._cli._bench import LONG, benchmarks_dir, default_selection, list_benchmarks, run

EXPECTED = {"dispatch", "vectorised", "build", "batch", "memory", "sort", "local_model", "search"}


def symbiont(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "symbiont._cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_benchmarks_are_found_and_the_long_ones_left_out_by_default() -> None:
    names = list_benchmarks()
    assert set(names) >= EXPECTED
    assert not any(n.startswith("_") for n in names)  # helpers are not benchmarks
    for name in names:
        assert (benchmarks_dir() / f"{name}.py").is_file()
    default = default_selection(names)
    assert set(LONG).isdisjoint(default)
    assert {"dispatch", "vectorised", "build", "batch", "sort"} <= set(default)


def test_bench_help_lists_every_benchmark() -> None:
    done = symbiont("bench", "--help")
    assert done.returncode == 0, done.stderr
    for name in EXPECTED:
        assert f"\n  {name} " in done.stdout, done.stdout
    assert "[long: runs only when named]" in done.stdout
    assert "--quick" in done.stdout


def test_bench_is_a_subcommand_of_the_parser() -> None:
    args = build_parser().parse_args(["bench", "dispatch", "sort", "--quick"])
    assert args.names == ["dispatch", "sort"]
    assert args.quick is True


def test_an_unknown_benchmark_is_refused_with_the_list(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["no-such-benchmark"]) == 2
    err = capsys.readouterr().err
    assert "unknown benchmark(s) no-such-benchmark" in err
    assert "dispatch" in err


def test_bench_dispatch_quick_runs_the_script_and_prints_its_table() -> None:
    done = symbiont("bench", "dispatch", "--quick")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "== dispatch (quick)" in out
    assert "ns/call" in out and "x neg" in out  # the table's header
    assert "rt.fns.f(12345)  [dispatcher]" in out
    assert "== dispatch done" in out


def test_only_a_failing_script_fails_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "report.py").write_text(
        "import sys\nprint('target: x  measured: 1  [NOT MET]', sys.argv[1:])\n"
    )
    (tmp_path / "broken.py").write_text("raise SystemExit(3)\n")
    (tmp_path / "_helper.py").write_text("raise SystemExit(4)\n")
    monkeypatch.setattr(bench, "benchmarks_dir", lambda: tmp_path)
    assert bench.list_benchmarks() == ["broken", "report"]
    assert run(["report"], quick=True) == 0  # a target NOT MET is a report
    out = capfd.readouterr().out
    assert "[NOT MET] ['--quick']" in out
    assert run(["report", "broken"]) == 1
    captured = capfd.readouterr()
    assert "== broken failed (exit status 3)" in captured.out
    assert "failed: broken" in captured.err
