"""The search loop: rounds of lanes planned by a strategy, every step committed to the store.

A round is the unit of resume. Its plan comes from the strategy state saved at the end of the
previous round, so a resumed run plans the same lanes; a lane that finished (its ``lane_end``
event is committed) is not run again, and a candidate whose code is already a revision of the
run is neither built nor evaluated again. The strategy state, the archive's best and the
counters are saved in one transaction when the round ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from symbiont._agents import Agent, Reply, Request, Usage
from symbiont._decl import Declarations
from symbiont._decl._syntax import normalise_source
from symbiont._errors import AgentError, ConfigError, EvolveError, ResumeError
from symbiont._events import Event
from symbiont._evolve import AttemptTrace, Lane, Limits, Registered, Rejected, StageTimings
from symbiont._failures import Failure, from_facts, to_facts
from symbiont._prompts import (
    PromptContext,
    Shown,
    default_prompt,
    failure_line,
    placeholders,
    round_outcome,
    shown_current,
)
from symbiont._search._evaluate import (
    Evaluate,
    Evaluator,
    EvaluatorBug,
    Measured,
    RemoteCheck,
    source_hash,
)
from symbiont._search._strategy import Archive, Entry, LaneSpec, Pareto, Strategy
from symbiont._search._types import (
    Best,
    Budget,
    HistoryEntry,
    SearchRun,
)
from symbiont._store import RunRow, Store, default_store_path
from symbiont._validate import Candidate, Policy, complete_from_parent, subset

log = logging.getLogger("symbiont.search")

Check = Callable[..., Any]


class Host(Protocol):
    """What the search needs from the runtime (the runtime passes an adapter).

    ``try_candidate`` builds, loads, runs ``check`` on and registers a validated candidate
    (``check=None``: registers without checking; a cached build is not rebuilt);
    ``validate`` turns code into a candidate or a failure; ``edits`` says whether replies may
    be SEARCH/REPLACE edits of the lane's parent. ``isolated``: the runtime evaluates in
    isolation workers, so the check given to ``try_candidate`` is a :class:`RemoteCheck`
    (the evaluator travels to the workers; its records come back).
    """

    declarations: Declarations
    policy: Policy
    limits: Limits
    edits: bool
    isolated: bool

    def gate(self) -> asyncio.Semaphore: ...

    def next_lane(self) -> int: ...

    def validate(self, code: str) -> Candidate | Failure: ...

    async def try_candidate(
        self,
        candidate: Candidate,
        *,
        lane: int | None,
        check: Check | RemoteCheck | None,
        parent: int | None,
    ) -> Registered | Rejected: ...

    def activate(self, number: int) -> None: ...

    def active_code(self) -> str: ...


Prices = Mapping[str, tuple[float, float]]
"""Model name -> (USD per million prompt tokens, USD per million completion tokens)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything ``search`` was asked, validated."""

    task: str
    evaluate: Evaluate
    strategy: Strategy
    budget: Budget
    store: str | os.PathLike[str] | Store | None
    name: str | None
    resume: bool
    force: bool
    maximize: bool
    repeats: int
    confirm_repeats: int
    prices: Prices | None
    prompt: Callable[[PromptContext], str] | None
    evaluator_errors: str
    evaluate_timeout: float | None
    objective: str
    attempts_per_lane: int | None
    functions: tuple[str, ...] | None
    on_event: Callable[[Event], None] | None


def validate_settings(s: Settings) -> Settings:
    if not isinstance(s.task, str) or not s.task.strip():
        raise ConfigError("search() needs the task as a non-empty str")
    if not isinstance(s.budget, Budget):
        raise ConfigError(f"budget must be symbiont.Budget(...), got {s.budget!r}")
    for attr in ("plan", "observe", "state", "restore", "settings"):
        if not callable(getattr(s.strategy, attr, None)):
            raise ConfigError(
                f"strategy {s.strategy!r} has no {attr}(): use symbiont.HillClimb(), Lanes(n), "
                "Islands(n) or Pareto(objectives)"
            )
    if not isinstance(s.repeats, int) or s.repeats < 1:
        raise ConfigError(f"repeats must be an int >= 1, got {s.repeats!r}")
    if s.attempts_per_lane is not None and (
        not isinstance(s.attempts_per_lane, int) or s.attempts_per_lane < 1
    ):
        raise ConfigError(f"attempts_per_lane must be an int >= 1, got {s.attempts_per_lane!r}")
    if s.evaluate_timeout is not None and not s.evaluate_timeout > 0:
        raise ConfigError(f"evaluate_timeout must be positive seconds, got {s.evaluate_timeout!r}")
    if s.functions is not None:
        if isinstance(s.functions, str) or not s.functions:
            raise ConfigError("functions= takes a non-empty list of declared function names")
        s = dataclasses.replace(s, functions=tuple(s.functions))
    if s.prompt is not None and not callable(s.prompt):
        raise ConfigError("prompt must be a callable (PromptContext) -> str")
    if s.on_event is not None and not callable(s.on_event):
        raise ConfigError("on_event must be a callable (Event) -> None")
    if s.budget.unbounded:
        s = dataclasses.replace(s, budget=Budget(rounds=10))
    return s


def content_hash(normalised: str) -> str:
    return hashlib.sha256(normalised.encode()).hexdigest()


class _BudgetReached(AgentError):
    """Raised by the metered agent instead of sending a request past a request budget."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the {reason} budget is spent", fatal=False)
        self.reason = reason


@dataclass(slots=True)
class _Counters:
    attempts: int = 0
    tokens: int = 0
    cost: float = 0.0
    in_flight: int = 0


@dataclass(slots=True)
class _Run:
    """The mutable state of one search session."""

    store: Store
    row: RunRow
    settings: Settings
    host: Host
    archive: Archive
    counters: _Counters
    started: float
    elapsed_before: float
    known: dict[str, int] = field(default_factory=dict)  # content hash -> run revision
    runtime_of: dict[int, int] = field(default_factory=dict)  # run revision -> runtime revision
    codes: dict[int, str] = field(default_factory=dict)
    feedback: dict[int, str] = field(default_factory=dict)
    spread: dict[int, float | None] = field(default_factory=dict)
    next_number: int = 0
    stop: str | None = None
    # Revisions of a round that was cut short: the round is planned and prompted again as it
    # was at its start (without them), and they join the archive when it ends.
    pending: list[Entry] = field(default_factory=list)
    lanes: list[asyncio.Future[None]] = field(default_factory=list)  # the round's lane tasks

    @property
    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def emit(
        self, kind: str, *, round: int | None = None, lane: int | None = None, **data: Any
    ) -> None:
        callback = self.settings.on_event
        if callback is None:
            return
        try:
            callback(Event(kind=kind, round=round, lane=lane, data=data, time=time.time()))  # type: ignore[arg-type]
        except Exception:
            log.exception("the on_event callback raised; the search goes on")

    def totals(self) -> dict[str, Any]:
        c = self.counters
        return {"attempts": c.attempts, "tokens": c.tokens, "cost": c.cost}

    def request_budget(self) -> str | None:
        """The request budget spent, if any (checked before every LLM request)."""
        b, c = self.settings.budget, self.counters
        if b.attempts is not None and c.attempts + c.in_flight >= b.attempts:
            return "attempts"
        if b.tokens is not None and c.tokens >= b.tokens:
            return "tokens"
        if b.cost is not None and c.cost >= b.cost:
            return "cost"
        if b.seconds is not None and self.elapsed >= b.seconds:
            return "seconds"
        return None

    def nearest_budget(self, rounds: int, patience: int) -> dict[str, Any] | None:
        b, c = self.settings.budget, self.counters
        used: list[tuple[str, float, float]] = []
        for name, value, limit in (
            ("rounds", rounds, b.rounds),
            ("attempts", c.attempts, b.attempts),
            ("tokens", c.tokens, b.tokens),
            ("cost", c.cost, b.cost),
            ("seconds", self.elapsed, b.seconds),
            ("patience", patience, b.patience),
        ):
            if limit is not None:
                used.append((name, float(value), float(limit)))
        if not used:
            return None
        name, value, limit = max(used, key=lambda u: u[1] / u[2])
        return {"name": name, "used": value, "limit": limit}

    def price(self, model: str | None, prompt_tokens: int, completion_tokens: int) -> float:
        prices = self.settings.prices or {}
        if model is None or model not in prices:
            return 0.0
        inp, out = prices[model]
        return (prompt_tokens * inp + completion_tokens * out) / 1e6


# Failures found after validation: a replayed attempt with one of these is rejected again from
# its record, without building or evaluating the candidate a second time.
_AFTER_VALIDATION = frozenset(
    ("compile_error", "build_timeout", "load_error", "panic", "check_failed", "timeout", "crash")
)


class _Metered:
    """The agent with the request budgets in front of it (the lane reports the llm stage).

    ``replay`` holds the committed attempts of this lane from an earlier session (a lane the
    process died in): while the lane sends exactly the conversation recorded, the recorded
    reply is returned without a request, and the attempt is not recorded twice.
    """

    def __init__(
        self, inner: Agent, run: _Run, round: int, lane: int, replay: list[dict[str, Any]]
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.run = run
        self.round = round
        self.lane = lane
        self.replay = replay
        self.replayed = False  # the last reply came from the record
        self.replayed_failure: Failure | None = None

    def _from_record(self, request: Request) -> Reply | None:
        self.replayed, self.replayed_failure = False, None
        if not self.replay:
            return None
        record = self.replay[0]
        if record["reply"] is None or record["prompt"] != [m.to_dict() for m in request.messages]:
            self.replay.clear()  # the lane went another way: ask the model from here on
            return None
        self.replay.pop(0)
        self.replayed = True
        if record["failure_kind"] in _AFTER_VALIDATION:
            facts = record["failure"]
            failure = from_facts(facts) if facts is not None else None
            if failure is None:  # recorded before failures were stored as facts
                failure = Failure(kind=record["failure_kind"], message="",
                                  details=record["feedback"] or "")  # fmt: skip
            self.replayed_failure = failure
        usage = Usage(
            prompt_tokens=record["prompt_tokens"],
            completion_tokens=record["completion_tokens"],
            requests=1,
        )
        return Reply(text=record["reply"], usage=usage, finish_reason=record["finish_reason"])

    async def complete(self, request: Request) -> Reply:
        recorded = self._from_record(request)
        if recorded is not None:
            return recorded
        reason = self.run.request_budget()
        if reason is not None:
            self.run.stop = self.run.stop or reason
            raise _BudgetReached(reason)
        self.run.counters.in_flight += 1
        try:
            return await self.inner.complete(request)
        finally:
            self.run.counters.in_flight -= 1


def _check(
    run: _Run,
    evaluator: Evaluator,
    *,
    repeats: int,
    purpose: str,
    round: int,
    lane: int | None,
    rows: list[dict[str, Any]],
    measured: list[Measured],
    started: Callable[[], None] | None = None,
) -> Check | RemoteCheck:
    """The check that evaluates a candidate ``repeats`` times into ``rows`` and ``measured``:
    in this process, or (an isolating runtime) a :class:`RemoteCheck` run by its workers."""
    if run.host.isolated:
        return RemoteCheck(evaluator=evaluator, repeats=repeats, purpose=purpose, round=round,
                           lane=lane, rows=rows, measured=measured, started=started)  # fmt: skip

    async def check(fns: Any, maps: Any) -> float:
        if started is not None:
            started()
        m = await evaluator.measure(fns, maps, repeats=repeats, purpose=purpose, round=round,
                                    lane=lane, rows=rows)  # fmt: skip
        measured.append(m)
        return m.score

    return check


def _model_of(agent: Agent) -> str | None:
    model = getattr(agent, "model", None)
    return model if isinstance(model, str) else agent.name


def _default_name(store: Store) -> str:
    base = time.strftime("run-%Y%m%d-%H%M%S")
    name, n = base, 1
    while store.run(name, by_id=False) is not None:
        n += 1
        name = f"{base}-{n}"
    return name


def _open_store(store: str | os.PathLike[str] | Store | None) -> Store:
    if isinstance(store, Store):
        return store
    return Store(default_store_path() if store is None else Path(store))


async def search(host: Host, agent: Agent, s: Settings) -> SearchRun:
    """Runs (or resumes) a search; see ``Runtime.search`` for the contract."""
    s = validate_settings(s)
    store = _open_store(s.store)
    try:
        with contextlib.ExitStack() as claims:
            return await _search(host, agent, s, store, claims)
    finally:
        if not isinstance(s.store, Store):
            store.close()


async def _search(
    host: Host, agent: Agent, s: Settings, store: Store, claims: contextlib.ExitStack
) -> SearchRun:
    model = _model_of(agent)
    if s.budget.cost is not None and model not in (s.prices or {}):
        raise ConfigError(
            f"Budget(cost=...) needs the price of model {model!r}: pass "
            f"prices={{{model!r}: (USD per million prompt tokens, USD per million completion "
            "tokens)}"
        )
    decls = host.declarations
    unknown = sorted(set(s.functions or ()) - set(decls.names))
    if unknown:
        raise ConfigError(
            f"functions= names {', '.join(unknown)}, not declared; declared: "
            f"{', '.join(decls.names)}"
        )
    decl_hash = hashlib.sha256(decls.source.encode()).hexdigest()
    eval_hash = source_hash(s.evaluate)
    name = s.name or _default_name(store)
    resume = s.resume or os.environ.get("SYMBIONT_RESUME") == name
    existing = store.run(name, by_id=False)
    if existing is not None and not resume:
        raise ResumeError(
            f"a run named {name!r} already exists in {store.path}: pass resume=True to "
            "continue it, or choose another name"
        )
    if existing is None and resume and s.resume:
        raise ResumeError(f"no run named {name!r} in {store.path} to resume")
    settings_json = {
        "strategy": s.strategy.settings(),
        "budget": s.budget.to_dict(),
        "repeats": s.repeats,
        "maximize": s.maximize,
        "objective": s.objective,
        "evaluator_errors": s.evaluator_errors,
        "evaluate_timeout": s.evaluate_timeout,
        "attempts_per_lane": s.attempts_per_lane,
        "functions": None if s.functions is None else list(s.functions),
        "prices": {k: list(v) for k, v in (s.prices or {}).items()},
    }
    if existing is not None:
        changed = []
        if existing.declarations_hash != decl_hash:
            changed.append("the declarations")
        if existing.evaluator_hash != eval_hash:
            changed.append("the evaluator's source")
        if existing.settings.get("strategy") != settings_json["strategy"]:
            changed.append("the strategy")
        if changed and not s.force:
            raise ResumeError(
                f"run {name!r} cannot be resumed: {' and '.join(changed)} changed since it "
                "started; pass force=True to resume anyway, or start a new run"
            )
        row = existing
        claims.enter_context(store.claim(row.id, name))
        store.update_run(row.id, status="running", stop_reason=None)
    else:
        row = store.create_run(
            name=name,
            task=s.task,
            declarations=decls.source,
            settings=settings_json,
            argv=list(getattr(sys, "orig_argv", sys.argv)),
            cwd=os.getcwd(),
            declarations_hash=decl_hash,
            evaluator_hash=eval_hash,
        )
        claims.enter_context(store.claim(row.id, name))
    evaluator = Evaluator(
        s.evaluate, objective=s.objective, timeout=s.evaluate_timeout, errors=s.evaluator_errors
    )
    run = _Run(
        store=store,
        row=row,
        settings=s,
        host=host,
        archive=Archive(maximize=s.maximize),
        counters=_Counters(attempts=row.attempts, tokens=row.tokens, cost=row.cost),
        started=time.monotonic(),
        elapsed_before=float((row.state or {}).get("elapsed", 0.0)),
    )
    state = row.state or {}
    if state.get("strategy"):
        s.strategy.restore(state["strategy"])
    run.emit("run_started", name=name, resumed=existing is not None, budget=s.budget.to_dict())
    try:
        if existing is not None:
            await _restore_revisions(run, int(state.get("round", 0)))
        if 0 not in run.codes:
            await _seed(run, evaluator)
        await _rounds(run, agent, evaluator, state)
        best = await _confirm(run, evaluator)
        reason = run.stop or "rounds"
        store.update_run(
            row.id,
            status="finished",
            stop_reason=reason,
            best_revision=None if best is None else best.revision,
            best_score=None if best is None else best.score,
        )
        if best is not None:
            host.activate(best.runtime_revision)
        run.emit("run_ended", stop_reason=reason, best=None if best is None else best.score)
        log.info(
            "search %r stopped (%s); best: %s",
            name,
            reason,
            "none" if best is None else f"revision {best.revision} score={best.score:.6g}",
        )
        return _result(run, best, reason)
    except asyncio.CancelledError:
        store.update_run(
            row.id,
            status="interrupted",
            stop_reason="interrupted",
            state={**(store.require_run(row.id).state or {}), "elapsed": run.elapsed},
        )
        run.emit("run_ended", stop_reason="interrupted", best=None)
        log.warning(
            "search %r interrupted; resume with: symbiont resume %s --store %s "
            "(or search(..., name=%r, resume=True))",
            name,
            name,
            store.path,
            name,
        )
        raise
    except EvolveError as exc:
        if not exc.fatal:
            store.update_run(row.id, status="failed",
                             stop_reason=f"{type(exc).__name__}: {exc}"[:500])  # fmt: skip
            raise
        reason = f"agent: {exc.__cause__}"[:500]
        store.update_run(row.id, status="failed", stop_reason=reason)
        run.emit("run_ended", stop_reason="agent", best=None)
        log.error(
            "search %r stopped: the agent %r failed and asking again cannot help (%s); fix it, "
            "then resume with: symbiont resume %s --store %s",
            name, agent.name, exc.__cause__, name, store.path,
        )  # fmt: skip
        raise
    except EvaluatorBug as bug:
        store.update_run(
            row.id, status="failed", stop_reason=f"evaluator raised {type(bug.error).__name__}"
        )
        # The cause, when there is one, is the worker's traceback of an isolated evaluator.
        raise bug.error from bug.error.__cause__
    except BaseException as exc:
        store.update_run(row.id, status="failed", stop_reason=f"{type(exc).__name__}: {exc}"[:500])
        raise


async def _restore_revisions(run: _Run, completed: int) -> None:
    """Registers the stored revisions again (from the build cache: no LLM, no rebuild) and
    rebuilds the archive from their stored scores, as it was when round ``completed`` ended."""
    for rev in run.store.revisions(run.row.id):
        candidate = run.host.validate(rev["code"])
        if isinstance(candidate, Failure):
            raise ResumeError(
                f"revision {rev['number']} of run {run.row.name!r} no longer validates: "
                f"{candidate.summary}"
            )
        outcome = await run.host.try_candidate(candidate, lane=None, check=None, parent=None)
        if isinstance(outcome, Rejected):
            raise ResumeError(
                f"revision {rev['number']} of run {run.row.name!r} no longer builds: "
                f"{outcome.failure.summary}"
            )
        _remember(run, rev["number"], rev["code"], rev["content_hash"], outcome.revision)
        run.feedback[rev["number"]] = rev["feedback"] or ""
        run.spread[rev["number"]] = rev["spread"]
        if rev["status"] == "scored":
            held = run.pending if rev["round"] > completed else run.archive.entries
            held.append(
                Entry(
                    number=rev["number"],
                    score=rev["score"],
                    metrics=rev["metrics"],
                    island=rev["island"],
                    parent=rev["parent"],
                    round=rev["round"],
                )
            )


def _remember(run: _Run, number: int, code: str, chash: str, runtime: int) -> None:
    run.known[chash] = number
    run.runtime_of[number] = runtime
    run.codes[number] = code
    run.next_number = max(run.next_number, number + 1)


async def _seed(run: _Run, evaluator: Evaluator) -> None:
    """Revision 0: the runtime's active code, evaluated once (never again on resume)."""
    code = run.host.active_code()
    candidate = run.host.validate(code)
    rows: list[dict[str, Any]] = []
    measured: list[Measured] = []
    failure: Failure | None = None
    if isinstance(candidate, Failure):
        failure = candidate
        normalised = normalise_source(code)
        runtime = None
    else:
        normalised = candidate.normalised

        check = _check(run, evaluator, repeats=run.settings.repeats, purpose="candidate",
                       round=0, lane=None, rows=rows, measured=measured)  # fmt: skip

        outcome = await run.host.try_candidate(candidate, lane=None, check=check, parent=None)
        if isinstance(outcome, Rejected):
            failure = outcome.failure
            # Registered without the check, so the lanes can start from it.
            outcome = await run.host.try_candidate(candidate, lane=None, check=None, parent=None)
        runtime = outcome.revision if isinstance(outcome, Registered) else None
    m = measured[-1] if measured and failure is None else None
    chash = content_hash(normalised)
    run.store.add_revision(
        run.row.id,
        number=0,
        code=code,
        content_hash=chash,
        parent=None,
        round=0,
        lane=None,
        island=None,
        score=None if m is None else m.score,
        metrics={} if m is None else m.metrics,
        spread=None if m is None else m.spread,
        feedback=(m.feedback if m is not None else failure.feedback if failure else None),
        status="scored" if m is not None else "failed",
        evaluations=rows,
    )
    _remember(run, 0, code, chash, runtime if runtime is not None else -1)
    run.feedback[0] = (m.feedback or "") if m is not None else (failure.summary if failure else "")
    if m is not None:
        run.spread[0] = m.spread
        run.archive.entries.append(
            Entry(number=0, score=m.score, metrics=m.metrics, island=None, parent=None, round=0)
        )
        run.emit("revision", round=0, revision=0, score=m.score, metrics=m.metrics)


def _shown(run: _Run, number: int) -> Shown:
    entry = run.archive.get(number)
    return Shown(
        revision=number,
        code=run.codes[number],
        score=None if entry is None else entry.score,
        metrics={} if entry is None else dict(entry.metrics),
    )


def _stop_between_rounds(run: _Run, rounds: int, patience: int) -> str | None:
    # The target first: a run that reaches it in its last round reached its goal.
    b = run.settings.budget
    best = run.archive.best()
    if (
        b.target is not None
        and best is not None
        and (best.score >= b.target if run.archive.maximize else best.score <= b.target)
    ):
        return "target"
    if b.rounds is not None and rounds >= b.rounds:
        return "rounds"
    if b.patience is not None and patience >= b.patience:
        return "patience"
    return run.request_budget()


async def _rounds(run: _Run, agent: Agent, evaluator: Evaluator, state: Mapping[str, Any]) -> None:
    rounds = int(state.get("round", 0))
    patience = int(state.get("patience", 0))
    last: str | None = state.get("last")
    failures: list[str] = list(state.get("failures", []))
    strategy = run.settings.strategy
    while True:
        reason = _stop_between_rounds(run, rounds, patience)
        if reason is not None:
            run.stop = reason
            return
        r = rounds + 1
        specs = strategy.plan(r, run.archive, 0)
        if not specs:
            raise ConfigError(f"strategy {strategy!r} planned no lane for round {r}")
        finished = {e["lane"]: e["data"] for e in run.store.events(run.row.id, "lane_end", round=r)}
        if not finished:
            run.store.add_event(
                run.row.id,
                "round_started",
                round=r,
                data={"lanes": [dataclasses.asdict(x) for x in specs]},
            )
        run.emit("round_started", round=r, lanes=len(specs))
        before = run.archive.best()
        lane_failures: list[str] = []
        jobs = [
            _lane(
                run,
                agent=agent,
                evaluator=evaluator,
                round=r,
                index=i,
                spec=spec,
                last=last,
                failures=failures,
                lane_failures=lane_failures,
            )
            for i, spec in enumerate(specs)
            if i not in finished
        ]
        run.lanes = [asyncio.ensure_future(job) for job in jobs]
        outcomes = await asyncio.gather(*run.lanes, return_exceptions=True)
        run.lanes = []
        for o in outcomes:
            if isinstance(o, EvolveError) and o.fatal:
                raise o  # before the cancellations it caused
        for o in outcomes:
            if isinstance(o, BaseException):
                raise o
        run.archive.entries.extend(e for e in run.pending if run.archive.get(e.number) is None)
        run.pending.clear()
        if run.stop is not None:
            return  # a request budget cut the round short: it is replayed on resume
        ends = {e["lane"]: e["data"] for e in run.store.events(run.row.id, "lane_end", round=r)}
        results: list[int | None] = [ends[i]["revision"] for i in range(len(specs))]
        strategy.observe(r, specs, results, run.archive)
        after = run.archive.best()
        improved = after is not None and (
            before is None or run.archive.better(after.score, before.score)
        )
        patience = 0 if improved else patience + 1
        made = [x for x in results if x is not None]
        last_rev = made[-1] if made else None
        entry = run.archive.get(last_rev) if last_rev is not None else None
        last = round_outcome(
            r,
            last_rev,
            None if entry is None else entry.score,
            lane_failures[-1] if lane_failures else None,
        )
        failures = (failures + lane_failures)[-5:]
        rounds = r
        run.store.update_run(
            run.row.id,
            rounds=r,
            best_revision=None if after is None else after.number,
            best_score=None if after is None else after.score,
            state={
                "round": r,
                "patience": patience,
                "last": last,
                "failures": failures,
                "strategy": strategy.state(),
                "elapsed": run.elapsed,
            },
        )
        run.emit(
            "round_ended",
            round=r,
            best=None if after is None else after.score,
            best_revision=None if after is None else after.number,
            totals=run.totals(),
            elapsed=run.elapsed,
            budget=run.nearest_budget(r, patience),
        )


async def _lane(
    run: _Run,
    *,
    agent: Agent,
    evaluator: Evaluator,
    round: int,
    index: int,
    spec: LaneSpec,
    last: str | None,
    failures: Sequence[str],
    lane_failures: list[str],
) -> None:
    host, s = run.host, run.settings
    decls = host.declarations
    # With functions=[...] the model writes only those; the rest comes from the parent.
    lane_decls = decls if s.functions is None else subset(decls, s.functions)
    best = run.archive.best()
    frontier: tuple[Shown, ...] = ()
    if isinstance(s.strategy, Pareto):
        frontier = tuple(_shown(run, e.number) for e in s.strategy.front(run.archive))
    parent_code = run.codes[spec.parent]
    # The code the lane starts from (and edit replies apply to): the parent's, when there is
    # something worth showing.
    current = shown_current(parent_code, decls.names, partial=s.functions is not None)
    ctx = PromptContext(
        task=s.task,
        prelude=decls.prelude,
        signatures=lane_decls.signatures_text,
        objective=s.objective,
        maximize=s.maximize,
        round=round,
        lane=index,
        parent=_shown(run, spec.parent),
        best=None if best is None else _shown(run, best.number),
        inspirations=tuple(_shown(run, n) for n in spec.inspirations),
        frontier=frontier,
        last=last,
        failures=tuple(failures),
        feedback=run.feedback.get(spec.parent) or None,
        hint=spec.hint,
        functions=s.functions,
        placeholders=tuple(placeholders(parent_code, decls.names)),
        edits=host.edits and current is not None,
    )
    text = (s.prompt or default_prompt)(ctx)
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("the prompt builder must return a non-empty str")
    produced: list[int] = []
    model = _model_of(agent)
    parent_runtime = run.runtime_of.get(spec.parent)

    class Sink:
        async def try_candidate(
            self, candidate: Candidate, *, lane: int, attempt: int
        ) -> Registered | Rejected:
            if metered.replayed_failure is not None:
                return Rejected(failure=metered.replayed_failure, timings=StageTimings())
            if s.functions is not None:
                merged = host.validate(complete_from_parent(candidate.code, parent_code))
                if isinstance(merged, Failure):
                    return Rejected(failure=merged, timings=StageTimings())
                candidate = merged
            chash = content_hash(candidate.normalised)
            number = run.known.get(chash)
            if number is not None and run.runtime_of.get(number, -1) >= 0:
                # Already a revision of this run: neither built nor evaluated again.
                entry = run.archive.get(number)
                produced.append(number)
                return Registered(
                    revision=run.runtime_of[number],
                    new=False,
                    score=None if entry is None else entry.score,
                    timings=StageTimings(),
                )
            rows: list[dict[str, Any]] = []
            measured: list[Measured] = []

            def evaluating() -> None:
                run.emit(
                    "stage", round=round, lane=index, stage="build", state="ended", outcome="ok"
                )
                run.emit("stage", round=round, lane=index, stage="evaluate", state="started")

            check = _check(run, evaluator, repeats=s.repeats, purpose="candidate", round=round,
                           lane=index, rows=rows, measured=measured,
                           started=evaluating)  # fmt: skip
            run.emit("stage", round=round, lane=index, stage="build", state="started")
            try:
                outcome = await host.try_candidate(
                    candidate, lane=lane, check=check, parent=parent_runtime
                )
            except EvaluatorBug:
                run.store.add_evaluations(run.row.id, None, rows)  # the evaluation that raised
                raise
            if isinstance(outcome, Rejected):
                if rows:
                    # The evaluation that rejected the candidate keeps the failure's facts.
                    rows[-1] = {**rows[-1], "failure": to_facts(outcome.failure)}
                    run.store.add_evaluations(run.row.id, None, rows)
                run.emit(
                    "stage",
                    round=round,
                    lane=index,
                    stage="evaluate" if rows else "build",
                    state="ended",
                    outcome=outcome.failure.kind,
                )
                return outcome
            m = measured[-1]
            number = run.known.get(chash)
            if number is None:
                number = run.next_number
                run.store.add_revision(
                    run.row.id,
                    number=number,
                    code=candidate.code,
                    content_hash=chash,
                    parent=spec.parent,
                    round=round,
                    lane=index,
                    island=spec.island,
                    score=m.score,
                    metrics=m.metrics,
                    spread=m.spread,
                    feedback=m.feedback,
                    status="scored",
                    evaluations=rows,
                )
                _remember(run, number, candidate.code, chash, outcome.revision)
                run.feedback[number] = m.feedback or ""
                run.spread[number] = m.spread
                run.archive.entries.append(
                    Entry(
                        number=number,
                        score=m.score,
                        metrics=m.metrics,
                        island=spec.island,
                        parent=spec.parent,
                        round=round,
                    )
                )
                run.emit(
                    "revision",
                    round=round,
                    lane=index,
                    revision=number,
                    score=m.score,
                    metrics=m.metrics,
                )
            produced.append(number)
            run.emit(
                "stage", round=round, lane=index, stage="evaluate", state="ended", outcome="scored"
            )
            return outcome

    def on_attempt(trace: AttemptTrace) -> None:
        if trace.outcome == "agent_error" and run.stop is not None:
            return  # the request a budget refused was never sent
        if metered.replayed and trace.reply is not None:
            metered.replayed = False
            return  # recorded (and counted) by the session that sent it
        usage = trace.usage
        cost = run.price(model, usage.prompt_tokens, usage.completion_tokens)
        revision = produced[-1] if trace.revision is not None and produced else None
        failure = trace.failure
        run.store.add_attempt(
            run.row.id,
            round=round,
            lane=index,
            attempt=trace.attempt,
            messages=[m.to_dict() for m in trace.messages],
            reply=trace.reply,
            model=model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost=cost,
            timings=dataclasses.asdict(trace.timings),
            outcome=trace.outcome,
            decision=trace.decision,
            failure_kind=None if failure is None else failure.kind,
            feedback=None if failure is None else failure.feedback,
            revision=revision,
            started=trace.started,
            finish_reason=trace.finish_reason,
            failure=None if failure is None else to_facts(failure),
        )
        run.counters.attempts += 1
        run.counters.tokens += usage.total_tokens
        run.counters.cost += cost
        if failure is not None:
            lane_failures.append(failure_line(round, index, failure))
        run.emit(
            "attempt",
            round=round,
            lane=index,
            outcome=trace.outcome,
            tokens=usage.total_tokens,
            totals=run.totals(),
        )

    limits = host.limits
    if s.attempts_per_lane is not None:
        limits = dataclasses.replace(limits, attempts=s.attempts_per_lane)
    lane_id = host.next_lane()
    replay = run.store.attempts(run.row.id, full=True, round=round, lane=index)
    metered = _Metered(agent, run, round, index, replay)
    result: int | None = None
    failure_text: str | None = None
    try:
        await Lane(
            lane=lane_id,
            agent=metered,
            task=s.task,
            prompt=text,
            decls=lane_decls,
            current=current,
            revision=spec.parent,
            policy=host.policy,
            sink=Sink(),
            limits=limits,
            gate=host.gate(),
            seed=spec.seed,
            edits=host.edits,
            functions=s.functions,
            on_attempt=on_attempt,
            on_event=lambda e: run.emit(e.kind, round=round, lane=index, **e.data),
        ).run()
        result = produced[-1]
    except EvolveError as exc:
        cause = exc.__cause__
        if isinstance(cause, _BudgetReached):
            return  # not finished: replayed when the run is resumed with a larger budget
        if exc.fatal:
            # Asking again cannot help (a bad key, an unknown model): the lanes still running
            # are stopped now rather than each finding out with a request of its own.
            this = asyncio.current_task()
            for task in run.lanes:
                if task is not this:
                    task.cancel()
            raise
        if cause is not None:
            raise  # the agent failed: the run stops, and a resume runs this lane again
        failure_text = exc.last_failure.summary if exc.last_failure else str(exc)
    run.store.add_event(
        run.row.id,
        "lane_end",
        round=round,
        lane=index,
        data={
            "revision": result,
            "failure": failure_text,
            "island": spec.island,
            "parent": spec.parent,
        },
    )


async def _confirm(run: _Run, evaluator: Evaluator) -> Best | None:
    """The best revision; with repeats > 1 the top three are measured again with twice the
    repeats and the best of those confirmed measurements wins."""
    ranked = run.archive.ranked()
    if not ranked:
        return None
    s = run.settings
    if s.repeats <= 1 or s.confirm_repeats <= 0:
        top = ranked[0]
        return _best(
            run,
            top,
            score=top.score,
            metrics=dict(top.metrics),
            spread=run.spread.get(top.number),
            confirmed=False,
        )
    confirmed: list[tuple[Entry, Measured]] = []

    async def confirm(entry: Entry) -> None:
        rows: list[dict[str, Any]] = []
        measured: list[Measured] = []
        check = _check(run, evaluator, repeats=s.confirm_repeats, purpose="confirm", round=-1,
                       lane=None, rows=rows, measured=measured)  # fmt: skip
        candidate = run.host.validate(run.codes[entry.number])
        if isinstance(candidate, Failure):
            return
        outcome = await run.host.try_candidate(candidate, lane=None, check=check, parent=None)
        run.store.add_evaluations(run.row.id, entry.number, rows)
        if isinstance(outcome, Registered) and measured:
            confirmed.append((entry, measured[-1]))

    if run.host.isolated:
        # In workers the confirmations fan out like a round's evaluations.
        await asyncio.gather(*(confirm(e) for e in ranked[:3]))
        order = {e.number: i for i, e in enumerate(ranked)}
        confirmed.sort(key=lambda c: order[c[0].number])
    else:
        # In this process, one at a time: timings measured side by side would disturb
        # each other.
        for entry in ranked[:3]:
            await confirm(entry)
    if not confirmed:
        top = ranked[0]
        return _best(
            run,
            top,
            score=top.score,
            metrics=dict(top.metrics),
            spread=run.spread.get(top.number),
            confirmed=False,
        )
    entry, m = max(confirmed, key=lambda c: c[1].score if s.maximize else -c[1].score)
    run.store.add_event(
        run.row.id,
        "confirmed",
        data={"revision": entry.number, "score": m.score, "spread": m.spread},
    )
    return _best(run, entry, score=m.score, metrics=m.metrics, spread=m.spread, confirmed=True)


def _best(
    run: _Run,
    e: Entry,
    *,
    score: float,
    metrics: Mapping[str, float],
    spread: float | None,
    confirmed: bool,
) -> Best:
    return Best(
        revision=e.number,
        runtime_revision=run.runtime_of[e.number],
        code=run.codes[e.number],
        score=score,
        metrics=dict(metrics),
        spread=spread,
        confirmed=confirmed,
    )


def _summary(attempt: Mapping[str, Any]) -> str | None:
    failure = from_facts(attempt["failure"]) if attempt["failure"] is not None else None
    if failure is not None:
        return failure.summary
    feedback = (attempt["feedback"] or "").strip()  # recorded before failures were facts
    return feedback.splitlines()[0] if feedback else attempt["failure_kind"]


def _result(run: _Run, best: Best | None, reason: str) -> SearchRun:
    history = tuple(
        HistoryEntry(
            round=a["round"],
            lane=a["lane"],
            attempt=a["attempt"],
            outcome=a["outcome"],
            failure_kind=a["failure_kind"],
            summary=_summary(a),
            feedback=a["feedback"],
            revision=a["revision"],
            tokens=a["prompt_tokens"] + a["completion_tokens"],
            cost=a["cost"],
        )
        for a in run.store.attempts(run.row.id)
    )
    strategy = run.settings.strategy
    if isinstance(strategy, Pareto):
        frontier = tuple(
            _best(
                run,
                e,
                score=e.score,
                metrics=dict(e.metrics),
                spread=run.spread.get(e.number),
                confirmed=False,
            )
            for e in strategy.front(run.archive)
        )
    else:
        frontier = () if best is None else (best,)
    c = run.counters
    return SearchRun(
        name=run.row.name,
        store=str(run.store.path),
        best=best,
        history=history,
        frontier=frontier,
        stop_reason=reason,
        rounds=run.store.require_run(run.row.id).rounds,
        attempts=c.attempts,
        tokens=c.tokens,
        cost=c.cost,
    )
