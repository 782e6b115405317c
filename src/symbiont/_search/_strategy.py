"""Search strategies: which parents the lanes of a round start from, with which hints.

A strategy is a small object with a seeded RNG whose whole state (RNG included) is JSON, so a
resumed run plans exactly the rounds the uninterrupted run would have planned.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from symbiont._errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """A scored revision of the run, as strategies see it."""

    number: int
    score: float
    metrics: Mapping[str, float]
    island: int | None
    parent: int | None
    round: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LaneSpec:
    """One lane of a round: its parent revision, island, strategy hint, inspirations, and the
    sampling seed sent with its requests (drawn from the strategy's RNG: lanes differ, and a
    resumed run sends the same seeds)."""

    parent: int
    island: int | None = None
    hint: str | None = None
    inspirations: tuple[int, ...] = ()
    seed: int | None = None


@dataclass(slots=True)
class Archive:
    """The scored revisions of a run and the direction of its objective."""

    maximize: bool = True
    entries: list[Entry] = field(default_factory=list)

    def better(self, a: float, b: float) -> bool:
        return a > b if self.maximize else a < b

    def best(self, among: Sequence[Entry] | None = None) -> Entry | None:
        pool = self.entries if among is None else among
        out: Entry | None = None
        for e in pool:
            if out is None or self.better(e.score, out.score):
                out = e
        return out

    def ranked(self) -> list[Entry]:
        return sorted(
            self.entries, key=lambda e: (-e.score if self.maximize else e.score, e.number)
        )

    def get(self, number: int) -> Entry | None:
        for e in self.entries:
            if e.number == number:
                return e
        return None


class Strategy(Protocol):
    """A search policy.

    ``plan(round, archive, seed)`` returns the lanes of the round (at least one); ``seed`` is
    the run's seed revision, the parent while nothing scored. ``observe(round, specs, results,
    archive)`` is told the revision each lane produced (None for a lane without one) after the
    archive took them in. ``state()`` / ``restore(state)`` carry everything (RNG included) as
    JSON; ``settings()`` describes the policy for the store.
    """

    name: str

    def plan(self, round: int, archive: Archive, seed: int) -> list[LaneSpec]: ...

    def observe(
        self, round: int, specs: Sequence[LaneSpec], results: Sequence[int | None], archive: Archive
    ) -> None: ...

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: Mapping[str, Any]) -> None: ...

    def settings(self) -> dict[str, Any]: ...


def _rng_state(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _set_rng(rng: random.Random, state: Sequence[Any]) -> None:
    rng.setstate((state[0], tuple(state[1]), state[2]))


class _Base:
    name = "base"

    def __init__(self, seed: int, inspirations: int) -> None:
        if not isinstance(inspirations, int) or inspirations < 0:
            raise ConfigError(f"inspirations must be an int >= 0, got {inspirations!r}")
        self.seed = seed
        self.inspirations = inspirations
        self.rng = random.Random(seed)

    def _inspire(
        self, archive: Archive, parent: int, pool: Sequence[Entry] | None = None
    ) -> tuple[int, ...]:
        """The best other revision, then random others: good and diverse examples."""
        others = [e for e in (archive.ranked() if pool is None else pool) if e.number != parent]
        if not others or not self.inspirations:
            return ()
        chosen = [others[0]]
        rest = others[1:]
        while rest and len(chosen) < self.inspirations:
            chosen.append(rest.pop(self.rng.randrange(len(rest))))
        return tuple(e.number for e in chosen)

    def _seed(self) -> int:
        return self.rng.randrange(1 << 31)

    def observe(
        self, round: int, specs: Sequence[LaneSpec], results: Sequence[int | None], archive: Archive
    ) -> None:
        return None

    def state(self) -> dict[str, Any]:
        return {"rng": _rng_state(self.rng)}

    def restore(self, state: Mapping[str, Any]) -> None:
        _set_rng(self.rng, state["rng"])

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "inspirations": self.inspirations}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items() if k != "name")
        return f"{type(self).__name__}({args})"


class HillClimb(_Base):
    """One lane per round, from the best revision so far (the seed while nothing scored)."""

    name = "hill_climb"

    def __init__(self, *, seed: int = 0, inspirations: int = 2) -> None:
        super().__init__(seed, inspirations)

    def plan(self, round: int, archive: Archive, seed: int) -> list[LaneSpec]:
        best = archive.best()
        parent = seed if best is None else best.number
        return [
            LaneSpec(parent=parent, inspirations=self._inspire(archive, parent), seed=self._seed())
        ]


class Lanes(_Base):
    """``n`` concurrent lanes per round, all from the best revision; lane ``i`` gets
    ``hints[i % len(hints)]`` (a strategy hint such as "use a lookup table"). Every lane's
    candidate is evaluated and the best of all is kept."""

    name = "lanes"

    def __init__(
        self, n: int, *, hints: Sequence[str] = (), seed: int = 0, inspirations: int = 2
    ) -> None:
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"Lanes(n) needs an int n >= 1, got {n!r}")
        if isinstance(hints, str):
            raise ConfigError("Lanes(hints=...) takes a list of hints, not one str")
        super().__init__(seed, inspirations)
        self.n = n
        self.hints = tuple(hints)

    def plan(self, round: int, archive: Archive, seed: int) -> list[LaneSpec]:
        best = archive.best()
        parent = seed if best is None else best.number
        return [
            LaneSpec(
                parent=parent,
                hint=self.hints[i % len(self.hints)] if self.hints else None,
                inspirations=self._inspire(archive, parent),
                seed=self._seed(),
            )
            for i in range(self.n)
        ]

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "n": self.n, "hints": list(self.hints)}


class Islands(_Base):
    """``n`` populations evolving apart: each round runs one lane per island, from the best
    of that island, inspired by that island only. Every ``migrate_every`` rounds each island
    receives the best of the previous island (a ring), so good ideas spread slowly."""

    name = "islands"

    def __init__(
        self, n: int, *, migrate_every: int = 3, seed: int = 0, inspirations: int = 2
    ) -> None:
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"Islands(n) needs an int n >= 1, got {n!r}")
        if not isinstance(migrate_every, int) or migrate_every < 1:
            raise ConfigError(f"migrate_every must be an int >= 1, got {migrate_every!r}")
        super().__init__(seed, inspirations)
        self.n = n
        self.migrate_every = migrate_every
        self.members: list[list[int]] = [[] for _ in range(n)]
        self.migrations: list[tuple[int, int, int]] = []  # (round, revision, to island)

    def plan(self, round: int, archive: Archive, seed: int) -> list[LaneSpec]:
        specs = []
        for island in range(self.n):
            pool = [e for n in self.members[island] if (e := archive.get(n)) is not None]
            best = archive.best(pool)
            parent = seed if best is None else best.number
            ranked = sorted(pool, key=lambda e: -e.score if archive.maximize else e.score)
            specs.append(
                LaneSpec(
                    parent=parent,
                    island=island,
                    inspirations=self._inspire(archive, parent, ranked),
                    seed=self._seed(),
                )
            )
        return specs

    def observe(
        self, round: int, specs: Sequence[LaneSpec], results: Sequence[int | None], archive: Archive
    ) -> None:
        for spec, result in zip(specs, results, strict=True):
            if (
                result is not None
                and spec.island is not None
                and result not in self.members[spec.island]
                and archive.get(result) is not None
            ):
                self.members[spec.island].append(result)
        if self.n > 1 and round % self.migrate_every == 0:
            bests = []
            for island in range(self.n):
                pool = [e for n in self.members[island] if (e := archive.get(n)) is not None]
                bests.append(archive.best(pool))
            for island in range(self.n):
                incoming = bests[(island - 1) % self.n]
                if incoming is not None and incoming.number not in self.members[island]:
                    self.members[island].append(incoming.number)
                    self.migrations.append((round, incoming.number, island))

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "members": self.members,
            "migrations": [list(m) for m in self.migrations],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        super().restore(state)
        self.members = [list(m) for m in state["members"]]
        self.migrations = [(a, b, c) for a, b, c in state["migrations"]]

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "n": self.n, "migrate_every": self.migrate_every}


class Pareto(_Base):
    """A non-dominated archive over several metrics; each of the round's ``lanes`` starts
    from a member of the front drawn at random. ``objectives`` maps metric names to ``"max"``
    or ``"min"`` (a list of names takes the run's direction). The evaluator returns a dict
    (or a ``Score`` whose metrics) holding every objective."""

    name = "pareto"

    def __init__(
        self,
        objectives: Sequence[str] | Mapping[str, str],
        *,
        lanes: int = 1,
        seed: int = 0,
        inspirations: int = 2,
    ) -> None:
        if isinstance(objectives, str) or not objectives:
            raise ConfigError("Pareto(objectives=...) needs a list of metric names (two or more)")
        if isinstance(objectives, Mapping):
            for k, v in objectives.items():
                if v not in ("max", "min"):
                    raise ConfigError(f"Pareto objective {k!r}: direction must be 'max' or 'min'")
            self.objectives: dict[str, str | None] = dict(objectives)
        else:
            self.objectives = {name: None for name in objectives}
        if not isinstance(lanes, int) or lanes < 1:
            raise ConfigError(f"Pareto(lanes=...) must be an int >= 1, got {lanes!r}")
        super().__init__(seed, inspirations)
        self.lanes = lanes

    def directions(self, maximize: bool) -> dict[str, bool]:
        """Objective name -> True when larger is better."""
        return {k: (maximize if v is None else v == "max") for k, v in self.objectives.items()}

    def front(self, archive: Archive) -> list[Entry]:
        """The non-dominated entries (those lacking an objective are left out)."""
        dirs = self.directions(archive.maximize)
        pool = [e for e in archive.entries if all(k in e.metrics for k in dirs)]

        def key(e: Entry) -> list[float]:
            return [e.metrics[k] if up else -e.metrics[k] for k, up in dirs.items()]

        front = []
        for e in pool:
            ke = key(e)
            dominated = False
            for o in pool:
                ko = key(o)
                if all(a >= b for a, b in zip(ko, ke, strict=True)) and ko != ke:
                    dominated = True
                    break
            if not dominated:
                front.append(e)
        return sorted(front, key=lambda e: e.number)

    def plan(self, round: int, archive: Archive, seed: int) -> list[LaneSpec]:
        front = self.front(archive)
        specs = []
        for _ in range(self.lanes):
            parent = seed if not front else front[self.rng.randrange(len(front))].number
            specs.append(
                LaneSpec(
                    parent=parent,
                    inspirations=self._inspire(archive, parent, front),
                    seed=self._seed(),
                )
            )
        return specs

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "objectives": self.objectives, "lanes": self.lanes}
