"""The trader example: the backtest evaluator on hand-written Rust, the ensemble's vote, and a
scripted search through bad candidates to a good one on the real GOOG candles."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import symbiont as sb
from symbiont._cli import examples_dir
from symbiont.testing import ScriptedAgent

pytest.importorskip("backtesting", reason="the trader example's extra: pip install backtesting")

MAIN = examples_dir() / "trader" / "main.py"
EXAMPLE = runpy.run_path(str(MAIN))
task: Any = EXAMPLE["task"]

SIGNATURE = "fn decide(c: &[Candle], a: &Account) -> Action"
CROSSOVER = """
fn decide(c: &[Candle], a: &Account) -> Action {
    let n = c.len();
    if n < 20 { return Action::Hold; }
    let fast: f64 = c[n - 5..].iter().map(|x| x.close).sum::<f64>() / 5.0;
    let slow: f64 = c[n - 20..].iter().map(|x| x.close).sum::<f64>() / 20.0;
    if fast > slow && a.position == 0.0 { Action::Buy { qty: 1.0 } }
    else if fast < slow && a.position > 0.0 { Action::Sell { qty: 1.0 } }
    else { Action::Hold }
}
"""
HOLD_FOREVER = """
fn decide(c: &[Candle], a: &Account) -> Action {
    if a.position == 0.0 { Action::Buy { qty: 1.0 } } else { Action::Hold }
}
"""


def fenced(code: str) -> str:
    return f"```rust\n{code.strip()}\n```"


@pytest.fixture(scope="module")
def data() -> tuple[Any, Any]:
    train, held_out = task.load("GOOG")
    return train, held_out


def test_the_split_is_70_30_of_the_installed_candles(data: tuple[Any, Any]) -> None:
    train, held_out = data
    assert (len(train), len(held_out)) == (1503, 645)
    assert train.index[-1] < held_out.index[0]
    with pytest.raises(ValueError, match="choose one of GOOG, EURUSD, BTCUSD"):
        task.load("SPY")


def test_evaluator_on_hand_written_candidates(data: tuple[Any, Any]) -> None:
    train, _ = data
    rt = sb.Runtime(task.DECLARATION)
    idle = task.backtest(rt, rt.fns.decide, train)  # the default holds: no trade, no gain
    assert (idle.return_pct, idle.trades) == (0.0, 0)
    hold = rt.register(HOLD_FOREVER)
    bought = task.backtest(rt, rt.revision(hold).fns.decide, train)
    # Bought at the first decision and held: buy-and-hold less the commission, the first bars
    # and the cash a whole number of shares leaves over.
    assert bought.trades == 1
    assert 0.9 * bought.buy_hold_pct < bought.return_pct < bought.buy_hold_pct
    cross = rt.register(CROSSOVER)
    crossed = task.backtest(rt, rt.revision(cross).fns.decide, train)
    assert crossed.trades > 10 and crossed.return_pct != bought.return_pct
    assert crossed.max_drawdown_pct < 0 and len(crossed.equity) == len(train)
    score = task.evaluator(rt, train)(rt.revision(cross).fns)
    assert score.value == crossed.return_pct
    assert f"{crossed.trades} trades" in (score.feedback or "")


def test_evaluator_rejects_a_bad_quantity_and_surfaces_a_panic(data: tuple[Any, Any]) -> None:
    train, _ = data
    rt = sb.Runtime(task.DECLARATION)
    greedy = rt.register(
        "fn decide(c: &[Candle], a: &Account) -> Action { Action::Buy { qty: 2.0 } }"
    )
    with pytest.raises(sb.Reject, match=r"Buy \{ qty: 2.0 \}: qty must be a fraction in \(0, 1\]"):
        task.backtest(rt, rt.revision(greedy).fns.decide, train)
    nan = rt.register(
        "fn decide(c: &[Candle], a: &Account) -> Action { Action::Sell { qty: f64::NAN } }"
    )
    task.backtest(rt, rt.revision(nan).fns.decide, train)  # never holds units: a Sell is moot
    crash = rt.register(
        "fn decide(c: &[Candle], a: &Account) -> Action {\n"
        '    if c.len() > 30 { panic!("too many candles") }\n    Action::Hold\n}'
    )
    with pytest.raises(sb.PanicError, match="too many candles"):
        task.backtest(rt, rt.revision(crash).fns.decide, train)


def test_ensemble_takes_the_majority_and_averages_its_quantities() -> None:
    rt = sb.Runtime(task.DECLARATION)
    revs = [
        rt.register(f"fn decide(c: &[Candle], a: &Account) -> Action {{ {body} }}")
        for body in ("Action::Buy { qty: 0.2 }", "Action::Buy { qty: 0.4 }",
                     "Action::Sell { qty: 1.0 }", "Action::Hold")
    ]  # fmt: skip
    candles = rt.types.Candle.zeros(3)
    account = rt.types.Account(cash=1.0, position=0.0, equity=1.0)
    action = rt.types.Action
    assert task.ensemble(rt, revs[:3])(candles, account) == action.Buy(qty=pytest.approx(0.3))
    # Three different answers: no majority, so it holds.
    assert task.ensemble(rt, [revs[0], revs[2], revs[3]])(candles, account) == action.Hold()
    assert task.ensemble(rt, [revs[2], revs[2], revs[0]])(candles, account) == action.Sell(qty=1.0)


def test_scripted_search_rejects_bad_candidates_then_reports_in_and_out_of_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_qty = "fn decide(c: &[Candle], a: &Account) -> Action { Action::Buy { qty: 2.0 } }"
    panics = (
        "fn decide(c: &[Candle], a: &Account) -> Action {\n"
        "    if c[c.len()].close > 0.0 { Action::Hold } else { Action::Hold }\n}"
    )
    spins = (
        "fn decide(c: &[Candle], a: &Account) -> Action {\n"
        "    let mut n = 0u64;\n"
        "    while n != u64::MAX || c.is_empty() { n = n.wrapping_add(1); }\n"
        "    Action::Hold\n}"
    )
    exits = (
        "fn decide(c: &[Candle], a: &Account) -> Action {\n"
        "    if c.is_empty() { std::process::exit(0) }\n    Action::Hold\n}"
    )
    script = [fenced(s) for s in (bad_qty, panics, spins, exits, CROSSOVER, HOLD_FOREVER)]
    agent = ScriptedAgent(script)
    plot = tmp_path / "equity.png"
    code = EXAMPLE["main"](
        agent, rounds=2, attempts=5, store=str(tmp_path / "runs.db"), plot_path=str(plot)
    )
    assert code == 0
    feedback = [r.messages[-1].content for r in agent.requests[1:5]]
    assert "Buy { qty: 2.0 }: qty must be a fraction in (0, 1]" in feedback[0]
    assert "panicked at line 2" in feedback[1] and "index out of bounds" in feedback[1]
    assert "did not finish within its deadline of 1 s" in feedback[2]
    assert "std::process" in feedback[3]
    # The second round's parent is the crossover, whose training score it shows the model.
    assert "trades" in agent.requests[5].messages[-1].content
    out = capsys.readouterr().out
    assert "best revision 1, ensemble of revisions 1, 2, 0" in out
    assert "let fast: f64" in out
    labels = (
        "revision 1 (train)",
        "revision 1 (held out)",
        "ensemble (train)",
        "ensemble (held out)",
    )
    for label in labels:
        assert label in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_backtesting_it_says_how_to_install_and_exits_cleanly() -> None:
    script = (
        "import runpy, sys; sys.modules['backtesting'] = None; "
        f"sys.argv = ['main.py']; runpy.run_path({str(MAIN)!r}, run_name='__main__')"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "pip install 'symbiont[trader]'" in out.stdout
