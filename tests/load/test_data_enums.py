"""Enums with data as results: one frozen dataclass per variant, in rt.types, to `match` on."""

from __future__ import annotations

import dataclasses

import pytest

import symbiont as sb
from symbiont.testing import ScriptedAgent

PRELUDE = """
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Px { price: f64, n: u8 }

/// What the strategy does next.
pub enum Action { Hold, Buy { qty: f64 }, Sell { qty: f64, at: Px }, Note(String, u32) }
"""

FUNCTIONS = """
fn decide(i: u8) -> Action {
    match i {
        0 => Action::Hold,
        1 => Action::Buy { qty: 2.5 },
        2 => Action::Sell { qty: 1.0, at: Px { price: 3.0, n: 1 } },
        _ => Action::Note("hi".to_string(), 7),
    }
}
fn maybe(i: u8) -> (Option<Action>, u8) { (if i == 0 { None } else { Some(Action::Hold) }, i) }
"""


def describe(action: object, types: object) -> str:
    a = types.Action  # type: ignore[attr-defined]
    match action:
        case a.Hold():
            return "hold"
        case a.Buy(qty=q):
            return f"buy {q}"
        case a.Sell(qty, at):
            return f"sell {qty} at {at['price']}"
        case a.Note(text, n):
            return f"note {text} {n}"
    raise AssertionError(action)


@pytest.mark.parametrize("pinned", [False, True])
def test_variants_are_frozen_dataclasses_one_can_match(pinned: bool) -> None:
    rt = sb.Runtime(PRELUDE + FUNCTIONS, profile="debug")
    fns = rt.revision(0).fns if pinned else rt.fns
    action = rt.types.Action
    assert [describe(fns.decide(i), rt.types) for i in range(4)] == [
        "hold", "buy 2.5", "sell 1.0 at 3.0", "note hi 7",
    ]  # fmt: skip
    buy = fns.decide(1)
    assert buy == action.Buy(qty=2.5) and isinstance(buy, action)
    assert type(buy).__qualname__ == "Action.Buy" and repr(buy) == "Action.Buy(qty=2.5)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        buy.qty = 3.0  # type: ignore[misc]
    assert fns.maybe(0) == (None, 0) and fns.maybe(2) == (action.Hold(), 2)
    assert "What the strategy does next." in (action.__doc__ or "")
    assert "qty: f64 (float)" in (action.Buy.__doc__ or "")


def test_an_enum_with_data_is_refused_as_an_argument_saying_so() -> None:
    with pytest.raises(sb.DeclarationError, match="has variants with data: it can be returned"):
        sb.evolvable(PRELUDE + "fn f(a: Action) -> u8;")
    with pytest.raises(sb.DeclarationError, match=r"variant `B`: `&str` cannot be returned"):
        sb.evolvable("enum E { A, B(&str) }\nfn f() -> E;")


def test_a_candidate_returning_variants_in_an_evolve_round_and_a_worker() -> None:
    rt = sb.Runtime(PRELUDE + FUNCTIONS, profile="debug", isolation="process")

    def check(fns: sb.Functions) -> float:
        # In the worker the variant classes are the worker's own: look at the variant's name.
        buy = fns.decide(1)
        return float(type(buy).__qualname__ == "Action.Buy" and buy.qty == 5.0)

    reply = "```rust\n" + FUNCTIONS.replace("qty: 2.5", "qty: 5.0") + "```"
    info = rt.evolve(ScriptedAgent([reply]), "buy more", check=check)
    assert info.score == 1.0
