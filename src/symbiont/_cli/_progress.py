"""The one renderer of search progress events.

On a terminal it draws a live panel (rich): the round, each lane in flight with its stage, its
tokens and the reply being written (tokens so far, tokens per second), the best score, tokens,
cost, elapsed time and the budget nearest to ending the run. Anywhere else (a pipe, a file, CI
logs) it prints one plain line per notable event (each stage's end, the reply being written every
few seconds), never a control character. ``evolve`` and ``evolve_batch`` runs are drawn alike.
The library only emits events; this is what ``symbiont.progress()`` returns.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from symbiont._search import Event


# Piped, the reply being written is told of at most this often per lane (seconds).
PLAIN_TOKENS_EVERY = 5.0


@dataclass(slots=True)
class _Lane:
    stage: str = "llm"
    state: str = "started"
    tokens: int = 0
    outcome: str | None = None
    writing: int = 0  # tokens of the reply being written
    rate: float = 0.0  # and its tokens per second
    shown: float = 0.0  # when a plain line last told of the reply being written


@dataclass(slots=True)
class _View:
    what: str = "search"
    name: str = ""
    round: int = 0
    lanes: dict[int, _Lane] = field(default_factory=dict)
    best: float | None = None
    best_revision: int | None = None
    totals: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] | None = None
    started: float = field(default_factory=time.monotonic)
    elapsed_before: float = 0.0


class Progress:
    """An ``on_event`` callback for ``Runtime.search``, ``evolve`` and ``evolve_batch`` that
    renders progress.

    ``file`` defaults to standard error; ``live`` defaults to whether it is a terminal.
    """

    def __init__(self, file: IO[str] | None = None, *, live: bool | None = None) -> None:
        self.file = file or sys.stderr
        isatty = getattr(self.file, "isatty", None)
        self.live = bool(isatty and isatty()) if live is None else live
        self.view = _View()
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._console: Console | None = None

    # -- events ------------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._apply(event)
            if self.live:
                self._draw(event)
            else:
                line = self._line(event)
                if line:
                    self.file.write(line + "\n")
                    self.file.flush()

    def _apply(self, e: Event) -> None:
        v, d = self.view, e.data
        if e.kind == "run_started":
            v.what = str(d.get("what", "search"))
            v.name = str(d.get("name", ""))
            v.started = time.monotonic()
        elif e.kind == "round_started":
            v.round = e.round or 0
            v.lanes = {}
        elif e.kind == "stage" and e.lane is not None:
            lane = v.lanes.setdefault(e.lane, _Lane())
            lane.stage, lane.state = str(d["stage"]), str(d["state"])
            lane.outcome = d.get("outcome")
            if lane.stage == "llm" and lane.state == "started":
                lane.writing, lane.rate, lane.shown = 0, 0.0, time.monotonic()
            elif lane.stage == "llm" and v.what != "search":
                lane.tokens += lane.writing  # a search counts tokens in its attempt events
        elif e.kind == "tokens" and e.lane is not None:
            lane = v.lanes.setdefault(e.lane, _Lane())
            lane.writing, lane.rate = int(d.get("tokens", 0)), float(d.get("per_second", 0.0))
        elif e.kind == "attempt" and e.lane is not None:
            v.lanes.setdefault(e.lane, _Lane()).tokens += int(d.get("tokens", 0))
            v.totals = dict(d.get("totals", {}))
        elif e.kind == "round_ended":
            v.best, v.best_revision = d.get("best"), d.get("best_revision")
            v.totals = dict(d.get("totals", {}))
            v.budget = d.get("budget")
            v.elapsed_before = float(d.get("elapsed", 0.0)) - (time.monotonic() - v.started)

    def _elapsed(self) -> float:
        return self.view.elapsed_before + time.monotonic() - self.view.started

    def _summary(self) -> str:
        v = self.view
        if v.what != "search":
            return f"{v.what} | {self._elapsed():.1f} s"
        best = "-" if v.best is None else f"{v.best:.6g} (revision {v.best_revision})"
        t = v.totals
        parts = [
            f"round {v.round}",
            f"best {best}",
            f"attempts {t.get('attempts', 0)}",
            f"tokens {t.get('tokens', 0):,}",
            f"cost {t.get('cost', 0.0):.4f}",
            f"{self._elapsed():.1f} s",
        ]
        if v.budget:
            b = v.budget
            parts.append(f"ends at {b['name']} {b['used']:g}/{b['limit']:g}")
        return " | ".join(parts)

    # -- plain lines -------------------------------------------------------------------------

    def _line(self, e: Event) -> str | None:
        d = e.data
        where = f"lane {e.lane}" if e.round is None else f"round {e.round} lane {e.lane}"
        if e.kind == "run_started":
            how = "resumed" if d.get("resumed") else "started"
            if self.view.what != "search":
                return f"{self.view.what} {how}"
            return f"search {d.get('name')} {how}"
        if e.kind == "stage" and d.get("state") == "ended" and e.lane is not None:
            line = f"{where}: {d['stage']} {d.get('outcome')}"
            lane = self.view.lanes.get(e.lane)
            if d["stage"] == "llm" and lane is not None and lane.writing:
                line += f" ({lane.writing:,} tokens, {lane.rate:.1f} tokens/s)"
            return line
        if e.kind == "tokens" and e.lane is not None:
            lane = self.view.lanes[e.lane]
            now = time.monotonic()
            if now - lane.shown < PLAIN_TOKENS_EVERY:
                return None
            lane.shown = now
            return f"{where}: writing, {lane.writing:,} tokens ({lane.rate:.1f} tokens/s)"
        if e.kind == "round_started":
            return f"round {e.round}: {d.get('lanes')} lane(s)"
        if e.kind == "revision":
            return f"round {e.round} lane {e.lane}: revision {d['revision']} score={d['score']:.6g}"
        if e.kind == "round_ended":
            return self._summary()
        if e.kind == "run_ended":
            best = d.get("best")
            shown = "-" if best is None else f"{best:.6g}"
            if self.view.what != "search":
                revision = d.get("revision")
                got = "" if revision is None else f": revision {revision}"
                return f"{self.view.what} ended ({d.get('stop_reason')}){got}"
            return f"search ended ({d.get('stop_reason')}); best {shown}"
        return None

    # -- live panel --------------------------------------------------------------------------

    def _render(self) -> RenderableType:
        from rich.table import Table

        table = Table(title=self._summary(), title_justify="left", expand=False)
        table.add_column("lane", justify="right")
        table.add_column("stage")
        table.add_column("tokens", justify="right")
        table.add_column("writing", justify="right")
        for number, lane in sorted(self.view.lanes.items()):
            state = lane.state if lane.outcome is None else f"{lane.state}: {lane.outcome}"
            writing = f"{lane.writing:,} at {lane.rate:.1f}/s" if lane.writing else "-"
            table.add_row(str(number), f"{lane.stage} {state}", f"{lane.tokens:,}", writing)
        return table

    def _draw(self, e: Event) -> None:
        if self._live is None:
            from rich.console import Console
            from rich.live import Live

            self._console = Console(file=self.file)
            self._live = Live(
                get_renderable=self._render,
                console=self._console,
                refresh_per_second=4,
                transient=False,
            )
            self._live.start()
        self._live.refresh()
        if e.kind == "run_ended":
            self._live.stop()
            assert self._console is not None
            line = self._line(e)
            if line:
                self._console.print(line, markup=False, highlight=False)
            self._live = None


def progress(file: IO[str] | None = None, *, live: bool | None = None) -> Progress:
    """An ``on_event`` callback drawing progress: ``rt.search(..., on_event=sb.progress())``
    (or ``rt.evolve``).

    A live panel on a terminal, plain lines otherwise (``live`` forces either).
    """
    return Progress(file, live=live)
