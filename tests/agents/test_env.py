"""agent_from_env: each branch of the environment table, and invalid values."""

from __future__ import annotations

import logging
import sys

import pytest

from symbiont._agents import CommandAgent, OpenAIAgent, agent_from_env
from symbiont._errors import ConfigError


def test_base_url_selects_the_openai_agent() -> None:
    agent = agent_from_env(
        {"BASE_URL": "http://127.0.0.1:8080/v1", "API_KEY": "sk-env-secret", "MODEL": "qwen"}
    )
    assert isinstance(agent, OpenAIAgent)
    assert agent.base_url == "http://127.0.0.1:8080/v1"
    assert agent.model == "qwen"
    assert agent.name == "openai:qwen"
    assert agent.timeout == 600.0
    assert agent.reasoning_effort is None
    assert "sk-env-secret" not in repr(agent)


def test_api_key_is_optional() -> None:
    agent = agent_from_env({"BASE_URL": "http://127.0.0.1:8080/v1", "MODEL": "qwen"})
    assert isinstance(agent, OpenAIAgent)


def test_base_url_without_model_says_to_set_model() -> None:
    with pytest.raises(ConfigError, match="set MODEL"):
        agent_from_env({"BASE_URL": "http://127.0.0.1:8080/v1"})


def test_optional_settings() -> None:
    agent = agent_from_env(
        {
            "BASE_URL": "http://127.0.0.1:8080/v1",
            "MODEL": "o-mini",
            "SYMBIONT_REASONING_EFFORT": "high",
            "SYMBIONT_LLM_TIMEOUT": "42.5",
        }
    )
    assert isinstance(agent, OpenAIAgent)
    assert agent.reasoning_effort == "high"
    assert agent.timeout == 42.5


@pytest.mark.parametrize("value", ["soon", "0", "-3", "inf", "nan"])
def test_invalid_timeout_names_the_variable(value: str) -> None:
    environ = {"BASE_URL": "http://x/v1", "MODEL": "m", "SYMBIONT_LLM_TIMEOUT": value}
    with pytest.raises(ConfigError, match="SYMBIONT_LLM_TIMEOUT") as info:
        agent_from_env(environ)
    assert "seconds" in str(info.value)


def test_header_and_idle_timeouts_come_from_the_environment() -> None:
    environ = {"BASE_URL": "http://x/v1", "MODEL": "m", "SYMBIONT_HEADER_TIMEOUT": "4",
               "SYMBIONT_IDLE_TIMEOUT": "900"}  # fmt: skip
    agent = agent_from_env(environ)
    assert isinstance(agent, OpenAIAgent)
    assert (agent.header_timeout, agent.idle_timeout) == (4.0, 900.0)
    with pytest.raises(ConfigError, match="SYMBIONT_IDLE_TIMEOUT"):
        agent_from_env({**environ, "SYMBIONT_IDLE_TIMEOUT": "soon"})


def test_invalid_reasoning_effort_lists_the_valid_ones() -> None:
    environ = {"BASE_URL": "http://x/v1", "MODEL": "m", "SYMBIONT_REASONING_EFFORT": "max!"}
    with pytest.raises(ConfigError, match="SYMBIONT_REASONING_EFFORT") as info:
        agent_from_env(environ)
    assert "medium" in str(info.value)


def test_command_selects_the_command_agent() -> None:
    agent = agent_from_env(
        {"SYMBIONT_AGENT_COMMAND": "my-agent --model 'big one'", "SYMBIONT_LLM_TIMEOUT": "9"}
    )
    assert isinstance(agent, CommandAgent)
    assert agent.argv == ("my-agent", "--model", "big one")
    assert agent.timeout == 9.0
    assert agent.name == "command:my-agent"


def test_invalid_command_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="SYMBIONT_AGENT_COMMAND"):
        agent_from_env({"SYMBIONT_AGENT_COMMAND": "agent 'unclosed"})


def test_base_url_wins_over_command() -> None:
    agent = agent_from_env(
        {"BASE_URL": "http://x/v1", "MODEL": "m", "SYMBIONT_AGENT_COMMAND": "my-agent"}
    )
    assert isinstance(agent, OpenAIAgent)


def test_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASE_URL", "http://127.0.0.1:1234/v1")
    monkeypatch.setenv("MODEL", "from-os-environ")
    agent = agent_from_env()
    assert isinstance(agent, OpenAIAgent)
    assert agent.model == "from-os-environ"


def test_empty_values_count_as_unset() -> None:
    agent = agent_from_env({"BASE_URL": "  ", "SYMBIONT_AGENT_COMMAND": "my-agent"})
    assert isinstance(agent, CommandAgent)


def test_without_the_local_module_the_error_names_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A None entry makes the import fail as if the module did not exist.
    monkeypatch.setitem(sys.modules, "symbiont._agents._local", None)
    with pytest.raises(ConfigError, match="BASE_URL"):
        agent_from_env({})


def test_nothing_set_selects_the_local_model(caplog: pytest.LogCaptureFixture) -> None:
    local = pytest.importorskip("symbiont._agents._local")
    caplog.set_level(logging.INFO, logger="symbiont.agents")
    agent = agent_from_env({})
    assert isinstance(agent, local.LocalAgent)
    lines = [r.getMessage() for r in caplog.records if r.name == "symbiont.agents"]
    assert any("no BASE_URL" in line and "local model" in line for line in lines)
