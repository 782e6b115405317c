"""The Runtime: owns the build cache, the revision registry and the dispatchers, and runs lanes.

It orchestrates; it does not parse (decl, validate), build (build), load (load) or talk to
LLMs (agents, evolve).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from symbiont._errors import (
    BuildError,
    CandidateError,
    ConfigError,
    CrashError,
    EvolveError,
    PanicError,
    RevisionError,
    SymbiontError,
    TimeoutError,
    ToolchainError,
)
from symbiont._isolation import CheckTask, WorkerPool, crash_failure
from symbiont._agents import Agent
from symbiont._compile import DEFAULT_BUILD_TIMEOUT, PROFILES, Builder, find_toolchain
from symbiont._codegen import generate
from symbiont._decl import Declarations, evolvable
from symbiont._decl._syntax import excerpt, normalise_source, remap_position
from symbiont._evolve import (
    EvolveInfo,
    Failure,
    FailureKind,
    Limits,
    Registered,
    Rejected,
    StageTimings,
    base_prompt,
    in_background,
    run_async,
    run_lane,
    run_sync,
)
from symbiont._load import (
    Functions,
    Library,
    Maps,
    Revision,
    RevisionHandle,
    RevisionTable,
    reap,
    timeout_ns,
    trampoline,
)
from symbiont._validate import Candidate, Policy, Rejection, validate_code

if TYPE_CHECKING:
    import os

    from symbiont._search import Budget, Event, Prices, PromptContext, SearchRun, Strategy
    from symbiont._store import Store

log = logging.getLogger("symbiont")

Check = Callable[..., "float | Awaitable[float | None] | None"]
"""A candidate check: called with the candidate's functions (and, if it takes a second
argument, their vectorised forms); returns an optional score, or raises to reject the candidate
(the exception's message is fed back to the LLM)."""


def check_failure(exc: BaseException, code: str, compiled: str | None = None) -> Failure:
    """A failed check, as feedback for the LLM about ``code``.

    ``compiled`` is the layout the library was built from when it differs (the cache reuses a
    library for code with the same tokens): panic locations are moved to the same token in
    ``code``, so the LLM is shown its own lines.
    """
    if isinstance(exc, PanicError):
        where = ""
        shown = ""
        if exc.file == "candidate.rs" and exc.line:
            if compiled is not None and compiled != code and exc.column:
                exc.line, exc.column = remap_position(compiled, code, exc.line, exc.column)
            where = f" at line {exc.line}, column {exc.column}"
            shown = excerpt(code, exc.line, exc.column or 1)
            shown = f"\n{shown}" if shown else ""
        elif exc.file:
            where = f" in {exc.file}"
        return Failure(
            kind="panic",
            feedback=f"Calling `{exc.function}` panicked{where}: {exc.message}{shown}",
            summary=f"`{exc.function}` panicked{where}: {exc.message}",
            line=exc.line if exc.file == "candidate.rs" else None,
        )
    if isinstance(exc, TimeoutError):
        return Failure(kind="timeout", feedback=str(exc), summary=str(exc).splitlines()[0])
    text = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, AssertionError):
        text = f"{type(exc).__name__}: {text}"
    return Failure(kind="check_failed", feedback=text, summary=text.splitlines()[0][:200])


class Runtime:
    """Declared native functions, their revisions, and the loop that evolves them.

    ``declarations`` is Rust source (or the result of :func:`symbiont.evolvable`). Creating a
    runtime compiles revision 0 from the default bodies and activates it.

    Options (keyword only; an unknown one is an error listing these):
    - ``profile``: ``"release"`` (opt-level 3, default) or ``"debug"`` (opt-level 0, overflow
      checks and debug assertions).
    - ``cache_dir``: where built libraries are cached (default ``$SYMBIONT_CACHE_DIR`` or
      ``~/.cache/symbiont``).
    - ``rustc``: the compiler to use (default ``$SYMBIONT_RUSTC`` or ``rustc`` on PATH).
    - ``rustc_flags``: extra flags, e.g. ``("-C", "target-cpu=native")``.
    - ``allow`` / ``deny``: extra allowed / denied paths for candidates (see ``Policy``).
    - ``max_attempts`` (10), ``transient_retries`` (6), ``context_resets`` (3),
      ``backoff`` ((0.5, 30.0): first and longest delay between transient retries, seconds).
    - ``max_requests_in_flight`` (8): LLM requests in flight at once across all lanes.
    - ``llm_timeout`` (900 s): outer deadline of one LLM request.
    - ``build_timeout`` (120 s): deadline of one rustc run.
    - ``max_parallel_builds``: concurrent rustc processes (default: the core count).
    - ``timeout`` (None): per-call deadline in seconds for ``fns`` and revision handles; a call
      past it raises :class:`TimeoutError` (the thread is stopped at a loop or function entry
      of the candidate's code). ``with_timeout(s)`` gives dispatchers with another deadline.
    - ``check_timeout`` (10 s): per-call deadline of the functions a check receives.
    - ``guards`` (True): insert the checks that make deadlines and the recursion-depth guard
      work; switch off for trusted code (a loop then cannot be stopped, and unbounded recursion
      aborts the process).
    - ``max_loaded`` (64): revision libraries kept loaded; past it the least recently used
      inactive ones are dropped (and loaded again on use), so long runs stay bounded in memory.
      None keeps every one.
    - ``isolation`` (None): ``"process"`` runs every check in a worker process, so a candidate
      that aborts, segfaults, runs out of memory or exits produces a ``crash`` failure record
      (with a :class:`CrashError`) and the run goes on. Registered revisions still run
      in-process. Checks must then be picklable by cloudpickle (closures and lambdas are).
    - ``worker_memory`` (4 GiB): address-space limit of each worker, in bytes (None: none).
    - ``isolation_timeout`` (300 s): a worker that does not answer a check within it is killed.
    """

    _OPTIONS = (
        "profile", "cache_dir", "rustc", "rustc_flags", "allow", "deny", "max_attempts",
        "transient_retries", "context_resets", "backoff", "max_requests_in_flight",
        "llm_timeout", "build_timeout", "max_parallel_builds", "timeout", "check_timeout",
        "guards", "max_loaded", "isolation", "worker_memory", "isolation_timeout",
    )  # fmt: skip

    def __init__(
        self,
        declarations: Declarations | str,
        *,
        profile: str = "release",
        cache_dir: str | Path | None = None,
        rustc: str | None = None,
        rustc_flags: Sequence[str] = (),
        allow: Sequence[str] = (),
        deny: Sequence[str] = (),
        max_attempts: int = 10,
        transient_retries: int = 6,
        context_resets: int = 3,
        backoff: tuple[float, float] = (0.5, 30.0),
        max_requests_in_flight: int = 8,
        llm_timeout: float = 900.0,
        build_timeout: float = DEFAULT_BUILD_TIMEOUT,
        max_parallel_builds: int | None = None,
        timeout: float | None = None,
        check_timeout: float | None = 10.0,
        guards: bool = True,
        max_loaded: int | None = 64,
        isolation: str | None = None,
        worker_memory: int | None = 4 << 30,
        isolation_timeout: float = 300.0,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ConfigError(
                f"unknown Runtime option(s) {', '.join(sorted(unknown))}; "
                f"valid: {', '.join(self._OPTIONS)}"
            )
        if isinstance(declarations, str):
            declarations = evolvable(declarations)
        elif not isinstance(declarations, Declarations):
            raise ConfigError(
                "Runtime() takes Rust source or symbiont.evolvable(...), "
                f"got {type(declarations).__name__}"
            )
        if profile not in PROFILES:
            raise ConfigError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
        for name, value, low in (("max_attempts", max_attempts, 1),
                                 ("max_requests_in_flight", max_requests_in_flight, 1),
                                 ("max_loaded", 1 if max_loaded is None else max_loaded, 1),
                                 ("transient_retries", transient_retries, 0),
                                 ("context_resets", context_resets, 0),
                                 ("worker_memory", worker_memory or 1, 1)):  # fmt: skip
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{name} must be an int >= {low}, got {value!r}")
        for name, seconds in (("llm_timeout", llm_timeout), ("build_timeout", build_timeout),
                              ("isolation_timeout", isolation_timeout),
                              ("backoff[0]", backoff[0]), ("backoff[1]", backoff[1])):  # fmt: skip
            if not isinstance(seconds, (int, float)) or not seconds > 0:
                raise ConfigError(f"{name} must be a positive number of seconds, got {seconds!r}")
        self.declarations = declarations
        self.profile = profile
        self.policy = Policy.create(allow=tuple(allow), deny=tuple(deny))
        self.limits = Limits(
            attempts=max_attempts,
            transient_retries=transient_retries,
            context_resets=context_resets,
            backoff_initial=backoff[0],
            backoff_cap=backoff[1],
            request_timeout=llm_timeout,
        )
        self._max_in_flight = max_requests_in_flight
        timeout_ns(timeout)
        timeout_ns(check_timeout)  # both validated up front
        self.check_timeout = check_timeout
        self.guards = bool(guards)
        if isolation not in (None, "process"):
            raise ConfigError(f"isolation must be None or 'process', got {isolation!r}")
        self.isolation = isolation
        self._pool: WorkerPool | None = None
        if isolation == "process":
            self._pool = WorkerPool(memory=worker_memory, timeout=isolation_timeout)
            weakref.finalize(self, self._pool.close)
        self._gate: asyncio.Semaphore | None = None
        self._lanes = itertools.count(1)
        toolchain = find_toolchain(rustc)
        self._builder = Builder(
            toolchain,
            profile=profile,
            cache_dir=Path(cache_dir) if cache_dir is not None else None,
            extra_flags=tuple(rustc_flags),
            max_parallel=max_parallel_builds,
            timeout=build_timeout,
        )
        tramp = trampoline(toolchain, self._builder.cache_dir)
        self._api = int(tramp.api())
        self._toolchain = toolchain
        self._table = RevisionTable(
            declarations, tramp, "symbiont.fns", timeout, max_loaded=max_loaded,
            reload=self._reload,
        )  # fmt: skip
        started = time.perf_counter()
        code = declarations.default_code
        outcome = run_sync(self._build_and_load(code, normalise_source(code)))
        if isinstance(outcome, Failure):
            if "linker" in outcome.feedback and "not found" in outcome.feedback:
                raise ToolchainError(
                    "rustc cannot link: install a C linker (Debian/Ubuntu: apt install gcc)\n"
                    + outcome.feedback
                )
            raise BuildError(
                f"revision 0 (the default bodies) does not build:\n{outcome.feedback}",
                diagnostics=outcome.feedback,
            )
        lib, key = outcome
        self._table.register(
            code=code, key=key, library=lib, parent=None, lane=None,
            build_seconds=time.perf_counter() - started,
        )  # fmt: skip
        self._table.activate(0)

    # ------------------------------------------------------------------ revisions

    @property
    def fns(self) -> Functions:
        """The stable dispatchers: one builtin per declared function, always calling the
        active revision. Their identity never changes."""
        return self._table.fns

    @property
    def map(self) -> Maps:
        """Vectorised forms of the scalar functions, following activations like ``fns``:
        ``rt.map.f(xs, ys, out=None, threads=None, timeout=None)`` broadcasts numpy arrays and
        runs the element loop in Rust with the GIL released (``threads=0``: every core)."""
        return self._table.map

    @property
    def signatures(self) -> MappingProxyType[str, str]:
        """Declared function name -> canonical Rust signature."""
        return MappingProxyType({f.name: f.signature for f in self.declarations.functions})

    @property
    def active_revision(self) -> int:
        active = self._table.active
        assert active is not None
        return active

    @property
    def revisions(self) -> tuple[Revision, ...]:
        """Every registered revision, oldest first."""
        return tuple(self._table.get(n) for n in self._table.numbers())

    def revision(self, number: int, *, timeout: float | None = None) -> RevisionHandle:
        """Functions pinned to revision ``number``: they never follow later activations.
        ``timeout`` overrides the runtime's per-call deadline for them."""
        return self._table.handle(number, timeout)

    def with_timeout(self, timeout: float) -> Functions:
        """Dispatchers like ``fns`` (following activations) whose calls stop after
        ``timeout`` seconds with :class:`TimeoutError`."""
        timeout_ns(timeout)
        return self._table.timed(timeout)

    def code(self, number: int | None = None) -> str:
        """The Rust source of revision ``number`` (default: the active one)."""
        return self._table.get(self.active_revision if number is None else number).code

    def unload(self, number: int) -> bool:
        """Drops revision ``number``'s library now (it is loaded again if used later); False
        when it is the active one. Handles and calls still using it keep it mapped until they
        are gone."""
        dropped = self._table.unload(number)
        reap()
        return dropped

    def _reload(self, rev: Revision) -> Library:
        """Loads a dropped revision again: from the cache, or rebuilt when it was evicted."""
        if not rev.library.exists():
            if in_background():
                raise RevisionError(f"revision {rev.number}'s library is gone from the cache")
            outcome = run_sync(self._build_and_load(rev.code, normalise_source(rev.code)))
            if isinstance(outcome, Failure):
                raise RevisionError(f"revision {rev.number} no longer builds: {outcome.summary}")
            return outcome[0]
        code = self._builder.built_from(rev.library) or rev.code
        crate = generate(self.declarations, code, guards=self.guards)
        return Library(
            rev.library,
            self.declarations.functions,
            api=self._api,
            code=code,
            insertions=crate.insertions,
        )

    def activate(self, number: int) -> Revision:
        """Makes revision ``number`` the one ``fns`` calls. No recompilation."""
        rev = self._table.activate(number)
        reap()
        log.info("activated revision %d", number)
        return rev

    def register(
        self,
        code: str,
        *,
        check: Check | None = None,
        activate: bool = False,
        functions: Sequence[str] | None = None,
    ) -> int:
        """Validates, builds, loads, checks and registers hand-written ``code``.

        With ``functions``, ``code`` defines only those declared functions (and helpers); the
        others are taken from the active revision. Returns the revision number (an existing
        one for code that matches a registered revision). Raises :class:`CandidateError` when
        the code is rejected.
        """
        if functions is not None:
            code = self._complete(code, functions)
        candidate = validate_code(code, self.declarations, self.policy)
        if not isinstance(candidate, Candidate):
            raise CandidateError(
                Failure(kind=candidate.kind, feedback=candidate.message,
                        summary=candidate.message.splitlines()[0], line=candidate.line)
            )  # fmt: skip
        outcome = run_sync(self._try(candidate, lane=None, check=check))
        if isinstance(outcome, Rejected):
            raise CandidateError(outcome.failure)
        if activate:
            self.activate(outcome.revision)
        return outcome.revision

    def _complete(self, code: str, functions: Sequence[str]) -> str:
        """``code`` for ``functions`` only, checked against them and completed with the rest
        of the active revision (raises CandidateError when it does not validate)."""
        from symbiont._validate import complete_from_parent, subset

        self._check_functions(functions)
        partial = validate_code(code, subset(self.declarations, tuple(functions)), self.policy)
        if not isinstance(partial, Candidate):
            raise CandidateError(_as_failure(partial))
        return complete_from_parent(partial.code, self.code())

    def _check_functions(self, functions: Sequence[str]) -> None:
        if isinstance(functions, str) or not functions:
            raise ConfigError("functions= takes a non-empty list of declared function names")
        unknown = sorted(set(functions) - set(self.declarations.names))
        if unknown:
            raise ConfigError(
                f"functions= names {', '.join(unknown)}, not declared; declared: "
                f"{', '.join(self.declarations.names)}"
            )

    # ------------------------------------------------------------------ evolution

    def evolve(
        self,
        agent: Agent,
        prompt: str,
        *,
        check: Check | None = None,
        activate: bool = True,
        seed: int | None = None,
        functions: Sequence[str] | None = None,
    ) -> EvolveInfo:
        """Runs one lane until a candidate registers; activates it unless ``activate=False``.

        With ``functions``, the model writes only those declared functions (and helpers); the
        others are kept from the active revision and shown to it as context.
        Raises :class:`EvolveError` (carrying the trace) when the lane ends without one.
        Works from inside a running event loop too; :meth:`aevolve` is the async twin.
        """
        return run_sync(
            self._evolve(
                agent, prompt, check=check, activate=activate, seed=seed, functions=functions
            )
        )

    async def aevolve(
        self,
        agent: Agent,
        prompt: str,
        *,
        check: Check | None = None,
        activate: bool = True,
        seed: int | None = None,
        functions: Sequence[str] | None = None,
    ) -> EvolveInfo:
        """Async twin of :meth:`evolve`."""
        return await run_async(
            self._evolve(
                agent, prompt, check=check, activate=activate, seed=seed, functions=functions
            )
        )

    def evolve_batch(
        self,
        agent: Agent,
        prompts: Sequence[str],
        *,
        check: Check | None = None,
        seed: int | None = None,
        functions: Sequence[str] | None = None,
    ) -> list[EvolveInfo | EvolveError]:
        """Runs one lane per prompt concurrently, each with its own budget.

        Every success is registered, none is activated; a failed lane is returned as its
        :class:`EvolveError` in place, without affecting the others. ``functions`` as for
        :meth:`evolve`.
        """
        return run_sync(self._batch(agent, prompts, check=check, seed=seed, functions=functions))

    async def aevolve_batch(
        self,
        agent: Agent,
        prompts: Sequence[str],
        *,
        check: Check | None = None,
        seed: int | None = None,
        functions: Sequence[str] | None = None,
    ) -> list[EvolveInfo | EvolveError]:
        """Async twin of :meth:`evolve_batch`."""
        return await run_async(
            self._batch(agent, prompts, check=check, seed=seed, functions=functions)
        )

    def _check_agent(self, agent: Agent) -> None:
        if not callable(getattr(agent, "complete", None)) or not hasattr(agent, "name"):
            raise ConfigError(
                f"{agent!r} is not an Agent: it needs a `name` and an async `complete(request)`"
            )

    def _gate_for_loop(self) -> asyncio.Semaphore:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self._max_in_flight)
        return self._gate

    async def _evolve(
        self,
        agent: Agent,
        prompt: str,
        *,
        check: Check | None,
        activate: bool,
        seed: int | None,
        functions: Sequence[str] | None = None,
    ) -> EvolveInfo:
        self._check_agent(agent)
        info = await self._lane(agent, prompt, check=check, seed=seed, functions=functions)
        if activate:
            self.activate(info.revision)
        return info

    async def _batch(
        self,
        agent: Agent,
        prompts: Sequence[str],
        *,
        check: Check | None,
        seed: int | None,
        functions: Sequence[str] | None = None,
    ) -> list[EvolveInfo | EvolveError]:
        self._check_agent(agent)
        if isinstance(prompts, str):
            raise ConfigError("evolve_batch() takes a list of prompts, not one str")
        if functions is not None:
            self._check_functions(functions)  # once, before any lane starts
        results = await asyncio.gather(
            *(self._lane(agent, p, check=check, seed=seed, functions=functions) for p in prompts),
            return_exceptions=True,
        )
        out: list[EvolveInfo | EvolveError] = []
        for r in results:
            if isinstance(r, (EvolveInfo, EvolveError)):
                out.append(r)
            else:
                raise r
        return out

    async def _lane(
        self,
        agent: Agent,
        prompt: str,
        *,
        check: Check | None,
        seed: int | None,
        functions: Sequence[str] | None = None,
    ) -> EvolveInfo:
        from symbiont._validate import complete_from_parent, subset

        lane = next(self._lanes)
        parent = self.active_revision
        current = self.code(parent)
        decls = self.declarations
        if functions is not None:
            self._check_functions(functions)
            decls = subset(decls, tuple(functions))
        text = base_prompt(decls, prompt, current=current, revision=parent, functions=functions)
        runtime = self

        class Sink:
            async def try_candidate(
                self, candidate: Candidate, *, lane: int, attempt: int
            ) -> Registered | Rejected:
                if functions is not None:
                    merged = validate_code(
                        complete_from_parent(candidate.code, current),
                        runtime.declarations,
                        runtime.policy,
                    )
                    if not isinstance(merged, Candidate):
                        return Rejected(failure=_as_failure(merged), timings=StageTimings())
                    candidate = merged
                return await runtime._try(candidate, lane=lane, check=check, parent=parent)

        return await run_lane(
            lane=lane,
            agent=agent,
            prompt=text,
            decls=decls,
            policy=self.policy,
            sink=Sink(),
            limits=self.limits,
            gate=self._gate_for_loop(),
            seed=seed,
        )

    # ------------------------------------------------------------------ search (issue 11)

    def search(
        self,
        agent: Agent,
        task: str,
        *,
        evaluate: Callable[..., Any],
        strategy: Strategy | None = None,
        budget: Budget | None = None,
        store: str | os.PathLike[str] | Store | None = None,
        name: str | None = None,
        resume: bool = False,
        force: bool = False,
        maximize: bool = True,
        objective: str = "score",
        repeats: int = 1,
        confirm_repeats: int | None = None,
        prices: Prices | None = None,
        prompt: Callable[[PromptContext], str] | None = None,
        evaluator_errors: str = "raise",
        evaluate_timeout: float | None = 60.0,
        attempts_per_lane: int | None = None,
        functions: Sequence[str] | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> SearchRun:
        """Evolves toward a score over many rounds; every step goes into a SQLite store.

        - ``evaluate(fns)`` or ``evaluate(fns, map)`` scores a candidate: a number (higher is
          better unless ``maximize=False``), a dict of metrics holding ``objective``, or
          :class:`symbiont.Score` (with feedback for the LLM). ``AssertionError`` or
          :class:`symbiont.Reject` rejects the candidate (the message is its feedback), as do a
          panic or a timeout. Any other exception is a bug in the evaluator: the run stops and
          it is raised here, unless ``evaluator_errors="feedback"``. A whole evaluation has
          the deadline ``evaluate_timeout`` (seconds; None: none).
        - ``strategy``: :class:`HillClimb` (default), :class:`Lanes`, :class:`Islands`,
          :class:`Pareto`. ``budget``: :class:`Budget` (default: 10 rounds).
        - ``store``: the SQLite file (default ``runs.db`` in the cache dir); ``name`` the run
          (default: a timestamp). ``resume=True`` continues the run ``name`` from its last
          committed state (refused when the declarations, the evaluator or the strategy
          changed, unless ``force=True``); so does ``$SYMBIONT_RESUME=name``.
        - ``repeats``: evaluations per candidate (the median is kept, the spread stored); with
          more than one, the best three are re-measured with ``confirm_repeats`` (default
          ``2 * repeats``) before the best is reported.
        - ``prices``: model -> (USD per million prompt tokens, per million completion tokens),
          for the ``cost`` budget. ``prompt(context) -> str`` replaces the default prompt.
        - ``attempts_per_lane``: replies per lane (default: the runtime's ``max_attempts``).
        - ``functions``: the declared functions the model rewrites (default: all); a candidate
          defines only those (and helpers), the rest is taken from the lane's parent.
        - ``on_event(event)``: progress events (see :class:`symbiont.Event`).

        The best revision is activated at the end. Ctrl-C ends the round in flight as
        interrupted, records it and re-raises KeyboardInterrupt (a resume hint is logged).
        """
        from symbiont._search import run_interruptible

        return run_interruptible(self._search(agent, task, self._search_settings(locals())))

    async def asearch(self, agent: Agent, task: str, **options: Any) -> SearchRun:
        """Async twin of :meth:`search` (same options)."""
        merged = dict(_SEARCH_DEFAULTS)
        unknown = set(options) - set(merged) - {"evaluate"}
        if unknown:
            raise ConfigError(
                f"unknown search option(s) {', '.join(sorted(unknown))}; "
                f"valid: evaluate, {', '.join(merged)}"
            )
        if "evaluate" not in options:
            raise ConfigError("asearch() needs evaluate=...")
        merged.update(options)
        return await run_async(self._search(agent, task, self._search_settings(merged)))

    def _search_settings(self, options: dict[str, Any]) -> Any:
        from symbiont._search import Budget, HillClimb, Settings

        repeats = options["repeats"]
        confirm = options["confirm_repeats"]
        return Settings(
            task=options.get("task", ""),
            evaluate=options["evaluate"],
            strategy=options["strategy"] or HillClimb(),
            budget=options["budget"] or Budget(),
            store=options["store"],
            name=options["name"],
            resume=options["resume"],
            force=options["force"],
            maximize=options["maximize"],
            repeats=repeats,
            confirm_repeats=(2 * repeats if isinstance(repeats, int) else 0)
            if confirm is None
            else confirm,
            prices=options["prices"],
            prompt=options["prompt"],
            evaluator_errors=options["evaluator_errors"],
            evaluate_timeout=options["evaluate_timeout"],
            objective=options["objective"],
            attempts_per_lane=options["attempts_per_lane"],
            functions=options["functions"],
            on_event=options["on_event"],
        )

    async def _search(self, agent: Agent, task: str, settings: Any) -> SearchRun:
        import dataclasses

        from symbiont._search import search

        self._check_agent(agent)
        if self.isolation is not None:
            # The evaluation records (metrics, repeats, feedback) do not cross the worker
            # protocol yet; refusing beats silently losing them.
            raise ConfigError(
                "search() does not run with isolation='process' yet: use a Runtime without "
                "isolation for the search, then check the best revision in isolation"
            )
        return await search(_SearchHost(self), agent, dataclasses.replace(settings, task=task))

    # ------------------------------------------------------------------ the pipeline

    async def _build_and_load(
        self, code: str, normalised: str, timing: list[float] | None = None
    ) -> tuple[Library, str] | Failure:
        """Builds (or finds in the cache) and loads ``code``; ``timing``, when given, receives
        the build and load seconds."""
        started = time.perf_counter()
        crate = generate(self.declarations, code, guards=self.guards)
        result = await self._builder.build(crate, normalised)
        if not result.ok:
            assert result.diagnostics is not None
            kind: FailureKind = "build_timeout" if result.timed_out else "compile_error"
            rendered = result.diagnostics.render()
            first = result.diagnostics.errors[0].message if result.diagnostics.errors else kind
            return Failure(kind=kind, feedback=rendered, summary=first)
        assert result.library is not None
        loading = time.perf_counter()
        if timing is not None:
            timing.append(loading - started)
        existing = self._table.by_key(result.key)
        if existing is not None:
            return self._table.library(existing.number), result.key
        code, insertions = crate.candidate, crate.insertions
        if result.cached:
            # Built earlier, maybe from the same tokens in another layout: panics are reported
            # in that layout, so the library must know it (check_failure maps them back).
            built = self._builder.built_from(result.library)
            if built is not None and built != code:
                code = built
                insertions = generate(self.declarations, built, guards=self.guards).insertions
        try:
            lib = Library(
                result.library,
                self.declarations.functions,
                api=self._api,
                code=code,
                insertions=insertions,
            )
            if timing is not None:
                timing.append(time.perf_counter() - loading)
            return lib, result.key
        except BuildError as exc:
            return Failure(kind="load_error", feedback=str(exc), summary=str(exc))

    async def _try(
        self,
        candidate: Candidate,
        *,
        lane: int | None,
        check: Check | None,
        parent: int | None = None,
    ) -> Registered | Rejected:
        t0 = time.perf_counter()
        timing: list[float] = []
        built = await self._build_and_load(candidate.code, candidate.normalised, timing)
        t1 = time.perf_counter()
        if isinstance(built, Failure):
            return Rejected(failure=built, timings=StageTimings(build=t1 - t0))
        lib, key = built
        load = timing[1] if len(timing) > 1 else 0.0
        timings = StageTimings(build=t1 - t0 - load, load=load)
        score: float | None = None
        if check is not None:
            t2 = time.perf_counter()
            if self._pool is not None:
                outcome = await self._isolated_check(check, lib, candidate.code)
            else:
                fns, maps = self._table.pinned(lib, "candidate under check", self.check_timeout)
                try:
                    outcome = await _run_check(check, fns, maps)
                except Exception as exc:
                    log.debug("check rejected a candidate: %r", exc)
                    outcome = check_failure(exc, candidate.code, lib.code)
            timings = timings + StageTimings(check=time.perf_counter() - t2)
            if isinstance(outcome, Failure):
                return Rejected(failure=outcome, timings=timings)
            score = outcome
        rev, new = self._table.register(
            code=candidate.code, key=key, library=lib, parent=parent, lane=lane,
            build_seconds=timings.build,
        )  # fmt: skip
        reap()
        return Registered(revision=rev.number, new=new, score=score, timings=timings)

    async def _isolated_check(
        self, check: Check, lib: Library, code: str
    ) -> float | Failure | None:
        assert self._pool is not None
        import cloudpickle

        try:
            payload = cloudpickle.dumps(check)
        except Exception as exc:
            raise ConfigError(
                f"isolation='process' needs a check cloudpickle can serialise: {exc}"
            ) from exc
        task = CheckTask(
            declarations=self.declarations.source,
            library=lib.path,
            code=code,
            compiled=lib.code,
            insertions=lib.insertions,
            check=payload,
            check_timeout=self.check_timeout,
            revision=lib.revision,
            cache_dir=self._builder.cache_dir,
            rustc=self._toolchain.rustc,
        )
        answer = await asyncio.to_thread(self._pool.run, task)
        if isinstance(answer, CrashError):
            log.info("an isolated check crashed its worker: %s", answer)
            return crash_failure(answer)
        if answer[0] == "ok":
            score: float | None = answer[1]
            return score
        if answer[0] == "failed":
            _, kind, feedback, summary, line = answer
            return Failure(kind=kind, feedback=feedback, summary=summary, line=line)
        raise SymbiontError(f"the isolation worker failed: {answer[1]}")

    def close(self) -> None:
        """Stops the isolation workers (also done when the runtime is collected)."""
        if self._pool is not None:
            self._pool.close()

    def __repr__(self) -> str:
        names = ", ".join(self.declarations.names)
        return (
            f"<symbiont.Runtime {names}: {len(self._table)} revision(s), "
            f"active {self._table.active}, profile {self.profile}>"
        )


_SEARCH_DEFAULTS: dict[str, Any] = {
    "strategy": None, "budget": None, "store": None, "name": None, "resume": False,
    "force": False, "maximize": True, "objective": "score", "repeats": 1,
    "confirm_repeats": None, "prices": None, "prompt": None, "evaluator_errors": "raise",
    "evaluate_timeout": 60.0, "attempts_per_lane": None, "functions": None, "on_event": None,
}  # fmt: skip


class _SearchHost:
    """The runtime as the search layer's ``Host``: the few pipeline steps a search drives."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self.declarations = rt.declarations
        self.policy = rt.policy
        self.limits = rt.limits

    def gate(self) -> asyncio.Semaphore:
        return self._rt._gate_for_loop()

    def next_lane(self) -> int:
        return next(self._rt._lanes)

    def validate(self, code: str) -> Candidate | Failure:
        c = validate_code(code, self.declarations, self.policy)
        if isinstance(c, Candidate):
            return c
        return Failure(kind=c.kind, feedback=c.message, summary=c.message.splitlines()[0],
                       line=c.line)  # fmt: skip

    async def try_candidate(
        self, candidate: Candidate, *, lane: int | None, check: Check | None, parent: int | None
    ) -> Registered | Rejected:
        return await self._rt._try(candidate, lane=lane, check=check, parent=parent)

    def activate(self, number: int) -> None:
        self._rt.activate(number)

    def active_code(self) -> str:
        return self._rt.code()


def _as_failure(rejection: Rejection) -> Failure:
    return Failure(
        kind=rejection.kind,
        feedback=rejection.message,
        summary=rejection.message.splitlines()[0],
        line=rejection.line,
    )


def _wants_map(check: Check) -> bool:
    try:
        params = inspect.signature(check).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2


async def _run_check(check: Check, fns: Functions, maps: Maps) -> float | None:
    """Runs a check off the event loop (native code holds the GIL, HTTP must keep flowing).
    A check taking two arguments also receives the vectorised functions."""
    args: tuple[Any, ...] = (fns, maps) if _wants_map(check) else (fns,)
    if inspect.iscoroutinefunction(check):
        result = await check(*args)
    else:
        result = await asyncio.to_thread(check, *args)
        if inspect.isawaitable(result):
            result = await result
    return _score(result)


def run_check_sync(check: Check, fns: Functions, maps: Maps) -> float | None:
    """The same, in the calling thread (isolation workers have no event loop)."""
    args: tuple[Any, ...] = (fns, maps) if _wants_map(check) else (fns,)
    result = check(*args)
    if inspect.isawaitable(result):
        result = asyncio.run(result)  # type: ignore[arg-type]
    return _score(result)


def _score(result: object) -> float | None:
    if result is False:
        raise AssertionError("the check returned False")
    if result is None or result is True:
        return None
    if isinstance(result, (int, float)):
        return float(result)
    raise TypeError(f"a check must return a number or None, got {type(result).__name__}")
