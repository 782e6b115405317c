"""The Runtime: owns the build cache, the revision registry and the dispatchers, and runs lanes.

It orchestrates; it does not parse (decl, validate), build (build), load (load) or talk to
LLMs (agents, evolve).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from symbiont import _config
from symbiont._agents import Agent
from symbiont._checks import Check, check_failure, run_check
from symbiont._codegen import generate
from symbiont._compile import Builder, find_toolchain
from symbiont._decl import Declarations, evolvable
from symbiont._decl._syntax import normalise_source
from symbiont._errors import (
    BuildError,
    CandidateError,
    ConfigError,
    CrashError,
    EvolveError,
    RevisionError,
    ToolchainError,
)
from symbiont._events import Event, OnEvent
from symbiont._evolve import (
    Emit,
    EvolveInfo,
    Lane,
    Registered,
    Rejected,
    StageTimings,
    emitter,
    in_background,
    run_async,
    run_sync,
    staged,
)
from symbiont._failures import Failure, FailureKind
from symbiont._isolation import (
    CheckTask,
    Engine,
    Evaluation,
    ProcessEngine,
    Raised,
    crash_failure,
)
from symbiont._load import (
    Functions,
    Library,
    Maps,
    Revision,
    RevisionHandle,
    RevisionTable,
    Types,
    reap,
    reap_after_collection,
    trampoline,
    trampoline_path,
)
from symbiont._options import Options
from symbiont._prompts import shown_current
from symbiont._validate import Candidate, validate_code
from symbiont._worker import Shared, install_shared

if TYPE_CHECKING:
    import os

    from symbiont._prompts import PromptContext
    from symbiont._search import (
        Budget,
        Prices,
        RemoteCheck,
        RemoteResult,
        SearchRun,
        Strategy,
    )
    from symbiont._search._evaluate import RemoteEvaluate
    from symbiont._store import Store

log = logging.getLogger("symbiont")


class Runtime:
    """Declared native functions, their revisions, and the loop that evolves them.

    ``declarations`` is Rust source (or the result of :func:`symbiont.evolvable`). Creating a
    runtime compiles revision 0 from the default bodies and activates it.

    Options are keyword arguments (``profile="debug"``, ``timeout=1.0``, ...) or one
    :class:`symbiont.Options` value passed as ``options=`` (keywords next to it override it);
    :class:`symbiont.Options` documents each one. An unknown option is a :class:`ConfigError`
    listing the valid ones. ``rt.options`` is the validated value.
    """

    def __init__(
        self,
        declarations: Declarations | str,
        *,
        options: Options | None = None,
        **overrides: Any,
    ) -> None:
        opts = Options.create(options, **overrides)
        if isinstance(declarations, str):
            declarations = evolvable(declarations)
        elif not isinstance(declarations, Declarations):
            raise ConfigError(
                "Runtime() takes Rust source or symbiont.evolvable(...), "
                f"got {type(declarations).__name__}"
            )
        self.options = opts
        self.declarations = declarations
        self._types: Types | None = None
        self.profile = opts.profile
        self.policy = opts.policy
        self.limits = opts.limits
        self.check_timeout = opts.check_timeout
        self.guards = opts.guards
        self.isolation = opts.isolation
        self._pool: Engine | None = None  # set after the toolchain (Ray ships the trampoline)
        self._shared: dict[str, str] = {}  # name -> key of rt.share's inputs
        self._evaluations: list[EvaluationRecord] = []
        self._gate: asyncio.Semaphore | None = None
        self._lanes = itertools.count(1)
        self._toolchain = find_toolchain(opts.rustc)
        self._builder = Builder(
            self._toolchain,
            profile=opts.profile,
            cache_dir=opts.cache_dir,
            extra_flags=opts.rustc_flags,
            max_parallel=opts.max_parallel_builds,
            timeout=opts.build_timeout,
            limits=opts.build_limits,
        )
        tramp = trampoline(self._toolchain, self._builder.cache_dir)
        self._api = int(tramp.api())
        # -- isolation engine
        if opts.isolation is not None:
            self._pool = self._engine(opts)
            weakref.finalize(self, self._pool.close)
        # --
        self._table = RevisionTable(
            declarations, tramp, "symbiont.fns", opts.timeout, max_loaded=opts.max_loaded,
            reload=self._reload,
        )  # fmt: skip
        self._register_defaults()
        # Its libraries are unloaded once the runtime is collected, not at some later activation.
        weakref.finalize(self, reap_after_collection)

    def _register_defaults(self) -> None:
        """Builds revision 0 from the default bodies and activates it; a failure here is a
        broken setup, not a candidate failure."""
        started = time.perf_counter()
        code = self.declarations.default_code
        outcome = run_sync(self._build_and_load(code, normalise_source(code)))
        if isinstance(outcome, Failure):
            report = outcome.details or outcome.message
            if "linker" in report and "not found" in report:
                raise ToolchainError(
                    "rustc cannot link: install a C linker (Debian/Ubuntu: apt install gcc)\n"
                    + report
                )
            raise BuildError(
                f"revision 0 (the default bodies) does not build:\n{report}",
                diagnostics=report,
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
    def types(self) -> Types:
        """The prelude's shared types: ``rt.types.Candle.dtype`` and ``rt.types.Candle(...)``
        for a ``#[repr(C)]`` struct, an ``enum.IntEnum`` for a fieldless enum."""
        if self._types is None:
            self._types = Types(self.declarations)
        return self._types

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

    def revision(
        self, number: int, *, timeout: float | None = None, release_gil: bool = False
    ) -> RevisionHandle:
        """Functions pinned to revision ``number``: they never follow later activations.
        ``timeout`` overrides the runtime's per-call deadline for them; ``release_gil`` makes
        them release the GIL while the native code runs (see :attr:`nogil`)."""
        return self._table.handle(number, timeout, release_gil)

    def with_timeout(self, timeout: float, *, release_gil: bool = False) -> Functions:
        """Dispatchers like ``fns`` (following activations) whose calls stop after
        ``timeout`` seconds with :class:`TimeoutError` (and release the GIL with
        ``release_gil``)."""
        return self._table.timed(_config.seconds("timeout", timeout), release_gil)

    @property
    def nogil(self) -> Functions:
        """Dispatchers like ``fns`` (following activations, same deadline) whose calls release
        the GIL while the native code runs, so other Python threads run meanwhile and two
        threads' calls overlap. Cost: 0.2-0.3 us more per call (the revision is pinned, the
        buffers are lent to the call and the GIL is released and taken back), and a buffer an
        in-flight call holds is refused to every other call (ValueError naming the argument)
        until it returns. Worth it for calls of a millisecond or more; keep ``fns`` for short
        ones."""
        return self._table.timed(self._table.timeout, True)

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
            raise CandidateError(candidate.failure())
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
            raise CandidateError(partial.failure())
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
        on_event: OnEvent | None = None,
    ) -> EvolveInfo:
        """Runs one lane until a candidate registers; activates it unless ``activate=False``.

        With ``functions``, the model writes only those declared functions (and helpers); the
        others are kept from the active revision and shown to it as context.
        Raises :class:`EvolveError` (carrying the trace) when the lane ends without one.
        ``on_event(event)`` is told the progress (:class:`symbiont.Event`: ``run_started``,
        then per attempt the ``llm`` stage with ``tokens`` as the model writes, ``validate``,
        ``build`` and ``check``, then ``run_ended``); ``sb.progress()`` draws it.
        Called from inside a running event loop (Jupyter, an async app) it works, but blocks
        that loop until the lane ends (minutes with a slow model) and logs a warning saying
        so: use ``await rt.aevolve(...)`` there, the async twin.
        """
        _warn_if_blocking_a_loop("evolve", "aevolve")
        return run_sync(
            self._evolve(
                agent,
                prompt,
                check=check,
                activate=activate,
                seed=seed,
                functions=functions,
                on_event=on_event,
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
        on_event: OnEvent | None = None,
    ) -> EvolveInfo:
        """Async twin of :meth:`evolve`."""
        return await run_async(
            self._evolve(
                agent,
                prompt,
                check=check,
                activate=activate,
                seed=seed,
                functions=functions,
                on_event=on_event,
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
        on_event: OnEvent | None = None,
    ) -> list[EvolveInfo | EvolveError]:
        """Runs one lane per prompt concurrently, each with its own budget.

        Every success is registered, none is activated; a failed lane is returned as its
        :class:`EvolveError` in place, without affecting the others. ``functions`` as for
        :meth:`evolve`, and ``on_event`` too (each lane's events carry its ``lane``). Inside a
        running event loop it blocks that loop (with a warning): use
        ``await rt.aevolve_batch(...)`` there.
        """
        _warn_if_blocking_a_loop("evolve_batch", "aevolve_batch")
        return run_sync(self._batch(agent, prompts, check=check, seed=seed, functions=functions,
                                    on_event=on_event))  # fmt: skip

    async def aevolve_batch(
        self,
        agent: Agent,
        prompts: Sequence[str],
        *,
        check: Check | None = None,
        seed: int | None = None,
        functions: Sequence[str] | None = None,
        on_event: OnEvent | None = None,
    ) -> list[EvolveInfo | EvolveError]:
        """Async twin of :meth:`evolve_batch`."""
        return await run_async(self._batch(agent, prompts, check=check, seed=seed,
                                           functions=functions, on_event=on_event))  # fmt: skip

    def _check_agent(self, agent: Agent) -> None:
        if not callable(getattr(agent, "complete", None)) or not hasattr(agent, "name"):
            raise ConfigError(
                f"{agent!r} is not an Agent: it needs a `name` and an async `complete(request)`"
            )

    def _gate_for_loop(self) -> asyncio.Semaphore:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.options.max_requests_in_flight)
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
        on_event: OnEvent | None = None,
    ) -> EvolveInfo:
        self._check_agent(agent)
        emit = emitter(on_event)
        emit("run_started", what="evolve", name="evolve")
        try:
            info = await self._lane(agent, prompt, check=check, seed=seed, functions=functions,
                                    emit=emit)  # fmt: skip
        except BaseException:
            emit("run_ended", stop_reason="failed", best=None)
            raise
        if activate:
            self.activate(info.revision)
        emit("run_ended", stop_reason="registered", best=info.score, revision=info.revision)
        return info

    async def _batch(
        self,
        agent: Agent,
        prompts: Sequence[str],
        *,
        check: Check | None,
        seed: int | None,
        functions: Sequence[str] | None = None,
        on_event: OnEvent | None = None,
    ) -> list[EvolveInfo | EvolveError]:
        self._check_agent(agent)
        emit = emitter(on_event)
        if isinstance(prompts, str):
            raise ConfigError("evolve_batch() takes a list of prompts, not one str")
        if functions is not None:
            self._check_functions(functions)  # once, before any lane starts
        emit("run_started", what="evolve_batch", name="evolve_batch")
        results = await asyncio.gather(
            *(self._lane(agent, p, check=check, seed=seed, functions=functions, emit=emit)
              for p in prompts),
            return_exceptions=True,
        )  # fmt: skip
        registered = sum(isinstance(r, EvolveInfo) for r in results)
        emit("run_ended", stop_reason="registered" if registered else "failed", best=None)
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
        emit: Emit | None = None,
    ) -> EvolveInfo:
        from symbiont._validate import complete_from_parent, subset

        lane = next(self._lanes)
        parent = self.active_revision
        code = self.code(parent)
        decls = self.declarations
        if functions is not None:
            self._check_functions(functions)
            decls = subset(decls, tuple(functions))
        runtime = self

        class Sink:
            async def try_candidate(
                self, candidate: Candidate, *, lane: int, attempt: int
            ) -> Registered | Rejected:
                if functions is not None:
                    merged = validate_code(
                        complete_from_parent(candidate.code, code),
                        runtime.declarations,
                        runtime.policy,
                    )
                    if not isinstance(merged, Candidate):
                        return Rejected(failure=merged.failure(), timings=StageTimings())
                    candidate = merged
                if emit is None:
                    return await runtime._try(candidate, lane=lane, check=check, parent=parent)
                return await staged(emit, lane, check is not None, lambda built: runtime._try(
                    candidate, lane=lane, check=check, parent=parent, on_built=built))  # fmt: skip

        return await Lane(
            lane=lane,
            agent=agent,
            task=prompt,
            decls=decls,
            current=shown_current(code, self.declarations.names, partial=functions is not None),
            revision=parent,
            policy=self.policy,
            sink=Sink(),
            limits=self.limits,
            gate=self._gate_for_loop(),
            seed=seed,
            edits=self.options.edits,
            functions=functions,
            on_event=None if emit is None else emit.lane_event,
        ).run()

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
          for the ``cost`` budget. ``prompt(context) -> str`` replaces the default prompt
          (:func:`symbiont.default_prompt`); with edit replies on (``Options.edits``) the
          edit format is added to it, and edits apply to the code of the lane's parent.
        - ``attempts_per_lane``: replies per lane (default: the runtime's ``max_attempts``).
        - ``functions``: the declared functions the model rewrites (default: all); a candidate
          defines only those (and helpers), the rest is taken from the lane's parent.
        - ``on_event(event)``: progress events (see :class:`symbiont.Event`).

        With ``isolation="process"`` or ``"ray"`` every repeat of an evaluation is a worker
        task (the evaluator travels by cloudpickle; ``rt.share`` handles read shared inputs),
        all of a round's in flight together up to ``max_evaluations_in_flight``; the rules
        above hold, a crash of the worker is a ``crash`` record, and an evaluator bug is raised
        with the worker's traceback as its cause. The store records each evaluation's node
        and worker.

        The best revision is activated at the end. A fatal agent error (a bad key, an unknown
        model: :attr:`EvolveError.fatal`) stops the run at once, recorded with the stop reason
        ``agent``, and is raised here. Ctrl-C ends the round in flight as
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
        return await search(_SearchHost(self), agent, dataclasses.replace(settings, task=task))

    # ------------------------------------------------------------------ the pipeline

    async def _build_and_load(self, code: str, normalised: str) -> tuple[Library, str] | Failure:
        """Builds (or finds in the cache) and loads ``code`` (trusted code: the default bodies,
        or a revision that passed before)."""
        built = await self._build(code, normalised)
        if isinstance(built, Failure):
            return built
        lib = self._load(built)
        return lib if isinstance(lib, Failure) else (lib, built.key)

    async def _build(self, code: str, normalised: str) -> _Built | Failure:
        """Builds (or finds in the cache) ``code``, without loading it."""
        crate = generate(self.declarations, code, guards=self.guards)
        result = await self._builder.build(crate, normalised)
        if not result.ok:
            assert result.diagnostics is not None
            kind: FailureKind = "build_timeout" if result.timed_out else "compile_error"
            errors = result.diagnostics.errors
            first = errors[0] if errors else None
            return Failure(
                kind=kind,
                message=first.message if first else "the build failed",
                line=first.line if first and first.in_candidate else None,
                column=first.column if first and first.in_candidate else None,
                details=result.diagnostics.render(),
            )
        assert result.library is not None
        code, insertions = crate.candidate, crate.insertions
        if result.cached:
            # Built earlier, maybe from the same tokens in another layout: panics are reported
            # in that layout, so the library must know it (check_failure maps them back).
            built = self._builder.built_from(result.library)
            if built is not None and built != code:
                code = built
                insertions = generate(self.declarations, built, guards=self.guards).insertions
        return _Built(library=result.library, key=result.key, code=code, insertions=insertions)

    def _load(self, built: _Built) -> Library | Failure:
        """``built`` loaded into this process (the loaded one when it is registered already)."""
        existing = self._table.by_key(built.key)
        if existing is not None:
            return self._table.library(existing.number)
        try:
            return Library(
                built.library,
                self.declarations.functions,
                api=self._api,
                code=built.code,
                insertions=built.insertions,
            )
        except BuildError as exc:
            return Failure(kind="load_error", message=str(exc))

    async def _draft(self, candidate: Candidate, *, check: Check | None) -> Drafted | Rejected:
        """Builds, loads and checks ``candidate`` exactly like a lane's candidate (the same
        build limits, the same isolation order and call deadlines) and registers nothing:
        what :func:`symbiont.tools.try_code` reports to the model."""
        trial = await self._trial(candidate, check=check)
        if isinstance(trial, Rejected):
            return trial
        return Drafted(score=trial.score, timings=trial.timings)

    async def _try(
        self,
        candidate: Candidate,
        *,
        lane: int | None,
        check: Check | None,
        parent: int | None = None,
        remote: RemoteCheck | None = None,
        on_built: Callable[[], None] | None = None,
    ) -> Registered | Rejected:
        trial = await self._trial(candidate, check=check, remote=remote, on_built=on_built)
        if isinstance(trial, Rejected):
            return trial
        rev, new = self._table.register(
            code=candidate.code, key=trial.key, library=trial.library, parent=parent, lane=lane,
            build_seconds=trial.timings.build,
        )  # fmt: skip
        reap()
        return Registered(revision=rev.number, new=new, score=trial.score, timings=trial.timings)

    async def _trial(
        self,
        candidate: Candidate,
        *,
        check: Check | None,
        remote: RemoteCheck | None = None,
        on_built: Callable[[], None] | None = None,
    ) -> _Passed | Rejected:
        """Builds, loads and checks ``candidate`` (``remote``: a search's evaluator, run by the
        isolation workers); registering it is the caller's decision."""
        assert remote is None or self._pool is not None, "a remote check needs isolation"
        t0 = time.perf_counter()
        built = await self._build(candidate.code, candidate.normalised)
        t1 = time.perf_counter()
        if isinstance(built, Failure):
            return Rejected(failure=built, timings=StageTimings(build=t1 - t0))
        if on_built is not None:
            on_built()
        timings = StageTimings(build=t1 - t0)
        score: float | None = None
        # -- isolation: the library is loaded (and checked) in a worker first, and into this
        # process only after it passed there, so code that runs at load time ends a worker.
        if self._pool is not None and remote is not None:
            # A search's evaluator: each repeat a worker task, its records brought back.
            t2 = time.perf_counter()

            async def send(payload: RemoteEvaluate) -> RemoteResult:
                began = time.perf_counter()
                answer = await self._isolated_check(
                    payload, built, candidate.code, returns="evaluation"
                )
                return _remote_result(answer, time.perf_counter() - began)

            evaluated = await remote.run(send, candidate.code)
            timings += StageTimings(check=time.perf_counter() - t2)
            if isinstance(evaluated, Failure):
                return Rejected(failure=evaluated, timings=timings)
            score = evaluated
        elif self._pool is not None and (
            check is not None or self._table.by_key(built.key) is None
        ):
            t2 = time.perf_counter()
            isolated = await self._isolated_check(check, built, candidate.code)
            spent = time.perf_counter() - t2
            timings += StageTimings(check=spent) if check else StageTimings(load=spent)
            if isinstance(isolated, Failure):
                return Rejected(failure=isolated, timings=timings)
            assert isinstance(isolated, Evaluation)
            score = isolated.score
        # --
        t3 = time.perf_counter()
        lib = self._load(built)
        timings += StageTimings(load=time.perf_counter() - t3)
        if isinstance(lib, Failure):
            return Rejected(failure=lib, timings=timings)
        if check is not None and self._pool is None:
            t4 = time.perf_counter()
            fns, maps = self._table.pinned(lib, "candidate under check", self.check_timeout)
            outcome: float | Failure | None
            try:
                outcome = await run_check(check, fns, maps)
            except Exception as exc:
                log.debug("check rejected a candidate: %r", exc)
                outcome = check_failure(exc, candidate.code, lib.code)
            timings += StageTimings(check=time.perf_counter() - t4)
            if isinstance(outcome, Failure):
                return Rejected(failure=outcome, timings=timings)
            score = outcome
        return _Passed(library=lib, key=built.key, score=score, timings=timings)

    # ------------------------------------------------------------------ isolation engines

    def _engine(self, opts: Options) -> Engine:
        if opts.isolation == "ray":
            from symbiont._ray import RayEngine

            tramp = trampoline_path()
            return RayEngine(
                address=opts.ray_address, memory=opts.worker_memory,
                timeout=opts.isolation_timeout, max_in_flight=opts.max_evaluations_in_flight,
                rustc=self._toolchain.rustc, rustc_flags=opts.rustc_flags,
                trampoline=tramp.read_bytes(), trampoline_name=tramp.name,
            )  # fmt: skip
        return ProcessEngine(
            memory=opts.worker_memory, timeout=opts.isolation_timeout,
            max_in_flight=opts.max_evaluations_in_flight,
        )  # fmt: skip

    def share(self, name: str, value: Any) -> Shared:
        """Declares ``value`` an input every check shares, under ``name``; returns a handle
        the check captures and reads with ``handle.value``.

        In-process and with ``isolation="process"`` each worker receives the value once; with
        ``isolation="ray"`` it goes into Ray's object store once, and each node worker fetches
        it once, instead of travelling inside every pickled check. Sharing a name again
        replaces the value for the checks that follow.
        """
        if not isinstance(name, str) or not name:
            raise ConfigError(f"share() needs a non-empty name, got {name!r}")
        key = f"{name}-{uuid.uuid4().hex}"
        install_shared(key, value)
        if self._pool is not None:
            self._pool.share(key, value)
        self._shared[name] = key
        return Shared(name, key)

    @property
    def evaluations(self) -> tuple[EvaluationRecord, ...]:
        """Every isolated check this runtime ran, oldest first: where it ran (``node``: a Ray
        node id, or ``"local"``), its worker, its seconds, how it ended and how many tries."""
        return tuple(self._evaluations)

    async def _isolated_check(
        self,
        check: Callable[..., object] | None,
        built: _Built,
        code: str,
        *,
        returns: str = "score",
    ) -> Evaluation | Failure | Raised:
        """Loads ``built`` in a worker and runs ``check`` there (only loads it without one).
        ``returns="evaluation"`` also reads metrics and feedback from what the check returns
        and hands back the check's own errors as :class:`Raised`."""
        assert self._pool is not None
        import cloudpickle

        try:
            payload = cloudpickle.dumps(check) if check is not None else None
        except Exception as exc:
            raise ConfigError(
                f"isolation={self.isolation!r} needs a check cloudpickle can serialise: {exc}"
            ) from exc
        existing = self._table.by_key(built.key)
        task = CheckTask(
            declarations=self.declarations.source,
            library=built.library,
            key=built.key,
            trampoline=trampoline_path(),
            code=code,
            compiled=built.code,
            insertions=built.insertions,
            check=payload,
            check_timeout=self.check_timeout,
            revision=existing.number if existing is not None else None,
            shared=tuple(self._shared.values()),
            returns=returns,
        )
        started = time.perf_counter()
        answer = await self._pool.run(task)
        record = EvaluationRecord.of(answer, key=built.key, seconds=time.perf_counter() - started)
        self._evaluations.append(record)
        if isinstance(answer, CrashError):
            log.info("an isolated check crashed its worker: %s", answer)
            return crash_failure(answer)
        return answer

    def close(self) -> None:
        """Stops the isolation workers and cancels their tasks still running (also done when
        the runtime is collected)."""
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
        self.edits = rt.options.edits
        self.isolated = rt._pool is not None

    def gate(self) -> asyncio.Semaphore:
        return self._rt._gate_for_loop()

    def next_lane(self) -> int:
        return next(self._rt._lanes)

    def validate(self, code: str) -> Candidate | Failure:
        c = validate_code(code, self.declarations, self.policy)
        return c if isinstance(c, Candidate) else c.failure()

    async def try_candidate(
        self,
        candidate: Candidate,
        *,
        lane: int | None,
        check: Check | RemoteCheck | None,
        parent: int | None,
    ) -> Registered | Rejected:
        from symbiont._search import RemoteCheck

        if isinstance(check, RemoteCheck):
            return await self._rt._try(candidate, lane=lane, check=None, remote=check,
                                       parent=parent)  # fmt: skip
        return await self._rt._try(candidate, lane=lane, check=check, parent=parent)

    def activate(self, number: int) -> None:
        self._rt.activate(number)

    def active_code(self) -> str:
        return self._rt.code()


def _remote_result(answer: Evaluation | Failure | Raised, seconds: float) -> RemoteResult:
    """A worker's answer to one repeat of a search's evaluator, as the search reads it."""
    from symbiont._search import RemoteResult

    if isinstance(answer, Evaluation):
        return RemoteResult(score=answer.score, metrics=answer.metrics, feedback=answer.feedback,
                            node=answer.node, worker=answer.worker,
                            seconds=seconds)  # fmt: skip
    if isinstance(answer, Raised):
        return RemoteResult(error=(answer.type, answer.message, answer.traceback),
                            node=answer.node, seconds=seconds)  # fmt: skip
    return RemoteResult(failure=answer, seconds=seconds)


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationRecord:
    """One isolated check (``Runtime.evaluations``): the library's key, the ``node`` it ran on
    and the ``worker`` process (None when the candidate failed: the failure record says why),
    ``outcome`` (``"ok"``, a failure kind, ``"crash"`` or ``"raised"``), the ``score``,
    ``tries`` (2: its first worker died under it), the ``seconds`` the driver waited for it and
    the ``check_seconds`` the check itself took in the worker (the difference is what
    isolation costs: transport, queueing, loading)."""

    key: str
    node: str | None
    worker: int | None
    outcome: str
    score: float | None
    tries: int
    seconds: float
    check_seconds: float | None = None

    @classmethod
    def of(
        cls, answer: Evaluation | Failure | Raised | CrashError, *, key: str, seconds: float
    ) -> EvaluationRecord:
        if isinstance(answer, Evaluation):
            return cls(key=key, node=answer.node, worker=answer.worker, outcome="ok",
                       score=answer.score, tries=answer.tries, seconds=seconds,
                       check_seconds=answer.seconds)  # fmt: skip
        if isinstance(answer, Raised):
            return cls(key=key, node=answer.node, worker=None, outcome="raised", score=None,
                       tries=1, seconds=seconds)  # fmt: skip
        if isinstance(answer, CrashError):
            return cls(key=key, node=None, worker=None, outcome="crash", score=None,
                       tries=1, seconds=seconds)  # fmt: skip
        return cls(key=key, node=None, worker=None, outcome=answer.kind, score=None, tries=1,
                   seconds=seconds)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Drafted:
    """A draft that built, loaded and passed its check (``score`` when the check gave one);
    nothing was registered (``Runtime._draft``)."""

    score: float | None
    timings: StageTimings


@dataclass(frozen=True, slots=True, kw_only=True)
class _Passed:
    """A candidate that built, loaded and passed its check, not registered yet."""

    library: Library
    key: str
    score: float | None
    timings: StageTimings


@dataclass(frozen=True, slots=True, kw_only=True)
class _Built:
    """A built library, not loaded yet: its cache key, and the layout it was compiled from."""

    library: Path
    key: str
    code: str
    insertions: tuple[tuple[int, str], ...]


def _warn_if_blocking_a_loop(name: str, twin: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    if not in_background():
        log.warning(
            "rt.%s() was called from a running event loop: the loop is blocked until it "
            "returns (no other task runs meanwhile); use `await rt.%s(...)` instead",
            name, twin,
        )  # fmt: skip
