"""`symbiont doctor` tells the truth about the environment it runs in."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from symbiont._cli._doctor import Finding, findings


def by_name(check_model: bool = False) -> dict[str, Finding]:
    return {f.name: f for f in findings(check_model=check_model)}


def test_an_agent_command_is_what_doctor_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BASE_URL", raising=False)
    monkeypatch.setenv("SYMBIONT_AGENT_COMMAND", f"{sys.executable} -c pass")
    agent = by_name()["agent"]
    assert agent.ok
    assert "SYMBIONT_AGENT_COMMAND is set" in agent.detail
    assert "local model" not in agent.detail


def test_nothing_set_reports_the_local_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BASE_URL", raising=False)
    monkeypatch.delenv("SYMBIONT_AGENT_COMMAND", raising=False)
    assert "embedded local model" in by_name()["agent"].detail


def test_a_missing_symbiont_rustc_is_named_not_blamed_on_gcc(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-rustc"
    monkeypatch.setenv("SYMBIONT_RUSTC", str(missing))
    checks = by_name()
    rustc, build = checks["rustc"], checks["test build"]
    assert not rustc.ok
    assert f"the SYMBIONT_RUSTC path {str(missing)!r} does not exist" in rustc.fix
    assert not build.ok
    assert "gcc" not in build.fix
