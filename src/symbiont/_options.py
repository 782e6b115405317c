"""The options of a Runtime: one frozen, validated value.

Each option is a field whose metadata (:func:`_check`) names the check that validates it
(from ``_config``, so every deadline is checked the same way). Adding an option is one field
here: ``Runtime(decls, new_option=...)``, the list of valid names in the unknown-option error
and ``Options.replace`` all follow from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from symbiont import _config
from symbiont._compile import DEFAULT_BUILD_TIMEOUT, PROFILES, BuildLimits
from symbiont._errors import ConfigError
from symbiont._evolve import Limits
from symbiont._validate import Policy

_Check = Callable[[str, Any], Any]


def _check(check: _Check) -> dict[str, _Check]:
    """Field metadata: the value passes through ``check(name, value)``, which may normalise it
    and raises :class:`ConfigError` naming the option when it is invalid."""
    return {"check": check}


def _strings(name: str, value: object) -> tuple[str, ...]:
    items = tuple(value) if isinstance(value, Iterable) and not isinstance(value, str) else None
    if items is None or not all(isinstance(v, str) for v in items):
        raise ConfigError(f"{name} must be a sequence of str, got {value!r}")
    return items


def _path(name: str, value: object) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str | Path):
        raise ConfigError(f"{name} must be a path or None, got {value!r}")
    return Path(value)


def _optional_str(name: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{name} must be a str or None, got {value!r}")
    return value


def _backoff(name: str, value: object) -> tuple[float, float]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ConfigError(f"{name} must be (first, longest) seconds, got {value!r}")
    return (_config.seconds(f"{name}[0]", value[0]), _config.seconds(f"{name}[1]", value[1]))


_seconds = _config.seconds
_optional_seconds = _config.optional_seconds
_count = _config.count
_optional_count = _config.optional_count


def _count_from_0(name: str, value: object) -> int:
    return _config.count(name, value, low=0)


def _flag(name: str, value: object) -> bool:
    return bool(value)


def _profile(name: str, value: object) -> str:
    return str(_config.choice(name, value, PROFILES))


def _isolation(name: str, value: object) -> str | None:
    return _config.choice(name, value, (None, "process", "ray"))  # type: ignore[return-value]


def _ray_address(name: str, value: object) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise ConfigError(
        f'{name} must be None, "auto", "host:port" or "ray://host:port", got {value!r}'
    )


def _build_limits(name: str, value: object) -> BuildLimits | None:
    if value is not None and not isinstance(value, BuildLimits):
        raise ConfigError(f"{name} must be a symbiont.BuildLimits or None, got {value!r}")
    return value


def _memory(name: str, value: object) -> int | None:
    # 0 or None: no limit.
    return _config.optional_count(name, value or None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """How a :class:`Runtime` builds, budgets, times and isolates candidates.

    ``Runtime(decls, **options)`` and ``Runtime(decls, options=Options(...))`` are the same;
    keywords given next to ``options=`` override it. An unknown name raises
    :class:`ConfigError` listing the valid ones; a bad value raises it naming the option.

    Build:
    - ``profile``: ``"release"`` (opt-level 3, default) or ``"debug"`` (opt-level 0, overflow
      checks and debug assertions).
    - ``cache_dir``: where built libraries are cached (default ``$SYMBIONT_CACHE_DIR`` or
      ``~/.cache/symbiont``).
    - ``rustc``: the compiler to use (default ``$SYMBIONT_RUSTC`` or ``rustc`` on PATH).
    - ``rustc_flags``: extra flags, e.g. ``("-C", "target-cpu=native")``.
    - ``max_parallel_builds``: concurrent rustc processes (default: the core count).
    - ``build_timeout`` (120 s): deadline of one rustc run.
    - ``build_limits`` (``BuildLimits()``): memory, output-file, CPU-time and process limits
      of each rustc run (see :class:`BuildLimits`); None lifts them. rustc always runs with a
      scrubbed environment (no API keys or other secrets).
    - ``guards`` (True): insert the checks that make deadlines and the recursion-depth guard
      work; switch off for trusted code (a loop then cannot be stopped, and unbounded recursion
      aborts the process).

    What candidates may use:
    - ``allow`` / ``deny``: extra allowed / denied paths (see ``Policy``).

    Lane budgets:
    - ``max_attempts`` (10), ``transient_retries`` (6), ``context_resets`` (3),
      ``backoff`` ((0.5, 30.0): first and longest delay between transient retries, seconds).
    - ``max_requests_in_flight`` (8): LLM requests in flight at once across all lanes.
    - ``llm_timeout`` (900 s): outer deadline of one LLM request.

    Replies:
    - ``edits`` (True): besides a whole code block, a reply may be SEARCH/REPLACE edits
      against the current code the prompt shows (the prompt explains the form, when there is
      current code to edit); False accepts whole code only.

    Calls:
    - ``timeout`` (None): per-call deadline in seconds for ``fns`` and revision handles; a call
      past it raises :class:`TimeoutError` (the thread is stopped at a loop or function entry
      of the candidate's code). ``Runtime.with_timeout(s)`` gives dispatchers with another one.
    - ``check_timeout`` (10 s): per-call deadline of the functions a check receives.
    - ``max_loaded`` (64): revision libraries kept loaded; past it the least recently used
      inactive ones are dropped (and loaded again on use), so long runs stay bounded in memory.
      None keeps every one.

    Isolation:
    - ``isolation`` (None): ``"process"`` runs every check in a worker process, so a candidate
      that aborts, segfaults, runs out of memory or exits produces a ``crash`` failure record
      (with a :class:`CrashError`) and the run goes on. A new library is loaded by a worker
      before the host loads it, so code that runs at load time ends a worker, not the host.
      Registered revisions still run in-process. Checks must then be picklable by
      cloudpickle (closures and lambdas are).
    - ``worker_memory`` (4 GiB): address-space limit of each worker, in bytes (None: none).
    - ``isolation_timeout`` (300 s): a worker that does not answer a check within it is killed.
    - ``isolation="ray"`` runs the same workers on the nodes of a Ray cluster (the ``ray``
      extra): ``ray_address`` (None: ``ray.init()``'s default, i.e. ``$RAY_ADDRESS`` or a new
      local instance; ``"auto"``: the cluster this machine belongs to; ``"host:port"`` or
      ``"ray://host:port"``). Nodes are checked when the runtime starts; see the README.
    - ``max_evaluations_in_flight`` (None: the core count, or the cluster's CPUs with Ray):
      isolated checks running at once; the others wait, and each result is taken as it comes.
    """

    # build
    profile: str = field(default="release", metadata=_check(_profile))
    cache_dir: Path | None = field(default=None, metadata=_check(_path))
    rustc: str | None = field(default=None, metadata=_check(_optional_str))
    rustc_flags: tuple[str, ...] = field(default=(), metadata=_check(_strings))
    max_parallel_builds: int | None = field(default=None, metadata=_check(_optional_count))
    build_timeout: float = field(default=DEFAULT_BUILD_TIMEOUT, metadata=_check(_seconds))
    build_limits: BuildLimits | None = field(default=BuildLimits(), metadata=_check(_build_limits))
    guards: bool = field(default=True, metadata=_check(_flag))
    # what candidates may use
    allow: tuple[str, ...] = field(default=(), metadata=_check(_strings))
    deny: tuple[str, ...] = field(default=(), metadata=_check(_strings))
    # lane budgets
    max_attempts: int = field(default=10, metadata=_check(_count))
    transient_retries: int = field(default=6, metadata=_check(_count_from_0))
    context_resets: int = field(default=3, metadata=_check(_count_from_0))
    backoff: tuple[float, float] = field(default=(0.5, 30.0), metadata=_check(_backoff))
    max_requests_in_flight: int = field(default=8, metadata=_check(_count))
    llm_timeout: float = field(default=900.0, metadata=_check(_seconds))
    # replies
    edits: bool = field(default=True, metadata=_check(_flag))
    # calls
    timeout: float | None = field(default=None, metadata=_check(_optional_seconds))
    check_timeout: float | None = field(default=10.0, metadata=_check(_optional_seconds))
    max_loaded: int | None = field(default=64, metadata=_check(_optional_count))
    # isolation
    isolation: str | None = field(default=None, metadata=_check(_isolation))
    worker_memory: int | None = field(default=4 << 30, metadata=_check(_memory))
    isolation_timeout: float = field(default=300.0, metadata=_check(_seconds))
    ray_address: str | None = field(default=None, metadata=_check(_ray_address))
    max_evaluations_in_flight: int | None = field(default=None, metadata=_check(_optional_count))

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            checked = f.metadata["check"](f.name, getattr(self, f.name))
            object.__setattr__(self, f.name, checked)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every option name, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def create(cls, base: Options | None = None, /, **options: Any) -> Options:
        """``base`` (default: the defaults) with ``options`` replaced; an unknown name is a
        :class:`ConfigError` listing the valid ones."""
        if base is not None and not isinstance(base, Options):
            raise ConfigError(f"options must be a symbiont.Options, got {type(base).__name__}")
        unknown = sorted(set(options) - set(cls.names()))
        if unknown:
            raise ConfigError(
                f"unknown Runtime option(s) {', '.join(unknown)}; valid: {', '.join(cls.names())}"
            )
        return dataclasses.replace(base, **options) if base is not None else cls(**options)

    def replace(self, **options: Any) -> Options:
        """A copy with ``options`` replaced (validated like the constructor)."""
        return Options.create(self, **options)

    def changed(self) -> Mapping[str, Any]:
        """The options that differ from their defaults (for reprs and logs)."""
        default = Options()
        return {
            n: getattr(self, n) for n in self.names() if getattr(self, n) != getattr(default, n)
        }

    @property
    def limits(self) -> Limits:
        """The budgets of one lane."""
        return Limits(
            attempts=self.max_attempts,
            transient_retries=self.transient_retries,
            context_resets=self.context_resets,
            backoff_initial=self.backoff[0],
            backoff_cap=self.backoff[1],
            request_timeout=self.llm_timeout,
        )

    @property
    def policy(self) -> Policy:
        """What candidates may use."""
        return Policy.create(allow=self.allow, deny=self.deny)
