"""Choosing an agent from environment variables.

This module owns the environment table below and its validation; the agents themselves never
read the environment.

=============================  ==========================================================
``BASE_URL``                   OpenAI-compatible API root; selects :class:`OpenAIAgent`
``API_KEY``                    its key (optional: local servers need none)
``MODEL``                      its model name (required with ``BASE_URL``)
``SYMBIONT_REASONING_EFFORT``  ``reasoning_effort`` sent to the OpenAI-compatible endpoint
``SYMBIONT_AGENT_COMMAND``     without ``BASE_URL``: a program run as :class:`CommandAgent`
``SYMBIONT_LLM_TIMEOUT``       seconds per LLM request (default 600)
``SYMBIONT_HEADER_TIMEOUT``    seconds to connect and get the response headers (default 30)
``SYMBIONT_IDLE_TIMEOUT``      seconds a started reply stream may stay silent (default 300)
=============================  ==========================================================

With neither ``BASE_URL`` nor ``SYMBIONT_AGENT_COMMAND`` the embedded local model is used.
Empty values count as unset.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
from collections.abc import Mapping
from typing import Any

from symbiont._agents._command import DEFAULT_TIMEOUT as COMMAND_TIMEOUT
from symbiont._agents._command import CommandAgent
from symbiont._agents._openai import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    REASONING_EFFORTS,
    OpenAIAgent,
)
from symbiont._agents._openai import DEFAULT_TIMEOUT as OPENAI_TIMEOUT
from symbiont._agents._protocol import Agent
from symbiont._errors import ConfigError

logger = logging.getLogger("symbiont.agents")

_LOCAL_MODULE = "symbiont._agents._local"


def agent_from_env(environ: Mapping[str, str] | None = None) -> Agent:
    """The agent the environment asks for (``os.environ`` unless ``environ`` is given).

    ``BASE_URL`` set: :class:`OpenAIAgent` with ``API_KEY`` and ``MODEL``. Otherwise
    ``SYMBIONT_AGENT_COMMAND`` set: :class:`CommandAgent` running it. Otherwise the embedded
    local model (:class:`LocalAgent`). Invalid values raise :class:`~symbiont.ConfigError`
    naming the variable and the expected form.
    """
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        # Surrounding whitespace (a pasted key, a trailing newline) is never meaningful.
        value = env.get(name)
        return value.strip() if value is not None and value.strip() else None

    timeout = _parse_timeout("SYMBIONT_LLM_TIMEOUT", get("SYMBIONT_LLM_TIMEOUT"))
    header_timeout = _parse_timeout("SYMBIONT_HEADER_TIMEOUT", get("SYMBIONT_HEADER_TIMEOUT"))
    idle_timeout = _parse_timeout("SYMBIONT_IDLE_TIMEOUT", get("SYMBIONT_IDLE_TIMEOUT"))
    base_url = get("BASE_URL")
    if base_url is not None:
        model = get("MODEL")
        if model is None:
            raise ConfigError(
                "BASE_URL is set but MODEL is not: set MODEL to the model name the endpoint "
                "serves (e.g. MODEL=gpt-4o-mini)"
            )
        effort = get("SYMBIONT_REASONING_EFFORT")
        if effort is not None and effort not in REASONING_EFFORTS:
            raise ConfigError(
                f"SYMBIONT_REASONING_EFFORT={effort!r} is invalid; expected one of: "
                f"{', '.join(REASONING_EFFORTS)}"
            )
        return OpenAIAgent(
            base_url=base_url,
            api_key=get("API_KEY"),
            model=model,
            timeout=timeout if timeout is not None else OPENAI_TIMEOUT,
            header_timeout=header_timeout if header_timeout is not None else DEFAULT_HEADER_TIMEOUT,
            idle_timeout=idle_timeout if idle_timeout is not None else DEFAULT_IDLE_TIMEOUT,
            reasoning_effort=effort,
        )

    command = get("SYMBIONT_AGENT_COMMAND")
    if command is not None:
        try:
            return CommandAgent(
                command, timeout=timeout if timeout is not None else COMMAND_TIMEOUT
            )
        except ConfigError as exc:
            raise ConfigError(f"SYMBIONT_AGENT_COMMAND is invalid: {exc}") from exc

    local_agent = _local_agent_class()
    logger.info(
        "no BASE_URL is set: using the embedded local model (set BASE_URL and MODEL "
        "to use an OpenAI-compatible endpoint)"
    )
    agent: Agent = local_agent()
    return agent


def _parse_timeout(variable: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(
            f"{variable}={value!r} is invalid; expected a positive number of seconds "
            f"(e.g. {variable}=300)"
        )
    return seconds


def _local_agent_class() -> Any:
    # Imported by name so that neither llama_cpp nor the module that wraps it loads before
    # the local model is actually chosen.
    try:
        module = importlib.import_module(_LOCAL_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != _LOCAL_MODULE:
            raise
        raise ConfigError(
            "no BASE_URL is set and this symbiont has no embedded local model: set BASE_URL "
            "and MODEL (or SYMBIONT_AGENT_COMMAND)"
        ) from exc
    return module.LocalAgent
