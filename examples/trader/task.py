"""The trader task: declarations, the backtest evaluator and the ensemble, importable by tests.

`decide(candles, account) -> Action` is called by a backtesting.py strategy on every bar with
the recent candles (a structured array, zero copy) and the account. The market data is read
from the installed `backtesting` package (AGPL-3.0, an optional dependency of this example
only): nothing of it is copied into this repository.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import symbiont as sb

DECLARATION = """
/// One bar of market data, oldest first in the slice `decide` receives.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Candle { pub open: f64, pub high: f64, pub low: f64, pub close: f64, pub volume: f64 }

/// The account before this bar's decision: cash, units held (never negative: long only) and
/// equity (cash + units * last close).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Account { pub cash: f64, pub position: f64, pub equity: f64 }

/// Buy { qty }: spend the fraction `qty` (0 < qty <= 1) of the available cash.
/// Sell { qty }: sell the fraction `qty` (0 < qty <= 1) of the units held.
pub enum Action { Hold, Buy { qty: f64 }, Sell { qty: f64 } }

/// Decide what to do at the close of the last candle of `candles` (at most the last 64 bars).
fn decide(candles: &[Candle], account: &Account) -> Action { Action::Hold }
"""

TASK = (
    "Evolve a long-only trading rule: `decide` sees the recent candles and the account and "
    "returns Hold, Buy or Sell. The score is the strategy's return in percent on the training "
    "period, after a 0.2% commission per trade; buy-and-hold is the bar to beat."
)

WINDOW = 64
COMMISSION = 0.002
DATASETS = ("GOOG", "EURUSD", "BTCUSD")
INSTALL_HINT = (
    "the trader example needs the `backtesting` package (AGPL-3.0, not a dependency of "
    "symbiont): pip install 'symbiont[trader]'  (or: pip install backtesting)"
)

Decide = Callable[[np.ndarray, Any], Any]


def backtesting_available() -> bool:
    try:
        import backtesting  # noqa: F401
    except ImportError:
        return False
    return True


def load(dataset: str, train_share: float = 0.7) -> tuple[Any, Any]:
    """The candles of `dataset` from the installed package, split into train and held out."""
    import backtesting.test as data

    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    frame = getattr(data, dataset)
    cut = int(len(frame) * train_share)
    return frame.iloc[:cut], frame.iloc[cut:]


def candles(rt: sb.Runtime, frame: Any) -> np.ndarray:
    """The frame as a structured array of `Candle`, built once per backtest."""
    arr = rt.types.Candle.zeros(len(frame))
    for name in ("open", "high", "low", "close", "volume"):
        arr[name] = frame[name.capitalize()].to_numpy(dtype=np.float64)
    return arr


@dataclass(frozen=True, slots=True)
class Result:
    """The statistics backtesting.py reports for one run, and its equity curve."""

    return_pct: float
    buy_hold_pct: float
    max_drawdown_pct: float
    sharpe: float
    trades: int
    equity: Any  # pandas Series indexed by time

    def row(self) -> str:
        return (
            f"{self.return_pct:+8.1f}% {self.buy_hold_pct:+8.1f}% "
            f"{self.max_drawdown_pct:7.1f}% {self.sharpe:6.2f} {self.trades:6d}"
        )


def _check_qty(kind: str, qty: float) -> float:
    if not 0.0 < qty <= 1.0:  # also refuses NaN
        raise sb.Reject(f"{kind} {{ qty: {qty} }}: qty must be a fraction in (0, 1]")
    return qty


def backtest(rt: sb.Runtime, decide: Decide, frame: Any, *, cash: float = 1_000_000.0) -> Result:
    """Runs `decide` over `frame` in backtesting.py, with its commission and statistics.

    An invalid quantity rejects the candidate (`sb.Reject`); a panic or a timeout of `decide`
    propagates as the runtime's error, which a search records and feeds back.
    """
    from backtesting import Backtest, Strategy

    arr = candles(rt, frame)
    closes = arr["close"]
    account = rt.types.Account
    action = rt.types.Action

    class Evolved(Strategy):
        def init(self) -> None:
            pass

        def next(self) -> None:
            i = len(self.data)
            units = float(self.position.size)
            equity = float(self.equity)
            acct = account(cash=equity - units * closes[i - 1], position=units, equity=equity)
            match decide(arr[max(0, i - WINDOW) : i], acct):
                case action.Buy(qty=qty):
                    size = _check_qty("Buy", qty) * acct.cash / closes[i - 1]
                    if size >= 1:
                        self.buy(size=int(size))
                case action.Sell(qty=qty):
                    if units > 0:
                        self.position.close(portion=_check_qty("Sell", qty))
                case _:
                    pass

    with warnings.catch_warnings():
        # backtesting.py warns about its own defaults (finalize_trades, fractional units).
        warnings.simplefilter("ignore")
        stats = Backtest(
            frame, Evolved, cash=cash, commission=COMMISSION, finalize_trades=True
        ).run()
    sharpe = float(stats["Sharpe Ratio"])
    return Result(
        return_pct=float(stats["Return [%]"]),
        buy_hold_pct=float(stats["Buy & Hold Return [%]"]),
        max_drawdown_pct=float(stats["Max. Drawdown [%]"]),
        sharpe=0.0 if np.isnan(sharpe) else sharpe,
        trades=int(stats["# Trades"]),
        equity=stats["_equity_curve"]["Equity"],
    )


def evaluator(rt: sb.Runtime, train: Any) -> Callable[[sb.Functions], sb.Score]:
    """The search's evaluation: the training-period return, with the statistics as feedback."""

    def evaluate(fns: sb.Functions) -> sb.Score:
        r = backtest(rt, fns.decide, train)
        return sb.Score(
            r.return_pct,
            metrics={"drawdown": r.max_drawdown_pct, "sharpe": r.sharpe, "trades": r.trades},
            feedback=(
                f"return {r.return_pct:+.1f}% (buy-and-hold {r.buy_hold_pct:+.1f}%), "
                f"max drawdown {r.max_drawdown_pct:.1f}%, Sharpe {r.sharpe:.2f}, "
                f"{r.trades} trades"
            ),
        )

    return evaluate


def ensemble(rt: sb.Runtime, revisions: Sequence[int]) -> Decide:
    """A majority vote of pinned revisions; the quantity is averaged among the agreeing ones.

    With no majority (three different actions) it holds."""
    handles = [rt.revision(n).fns.decide for n in revisions]
    action = rt.types.Action

    def decide(candles: np.ndarray, account: Any) -> Any:
        votes = [h(candles, account) for h in handles]
        kind, count = Counter(type(v) for v in votes).most_common(1)[0]
        if count * 2 <= len(votes) or kind is action.Hold:
            return action.Hold()
        qty = sum(v.qty for v in votes if type(v) is kind) / count
        return kind(qty=qty)

    return decide
