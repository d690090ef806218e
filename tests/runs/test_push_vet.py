"""A claimed subscribe is decided again when its push comes (sync_worker.push_vet)."""

from __future__ import annotations

from connectors.base import Action, Change
from sync_worker.push_vet import Stopped, no_longer_allowed
from tests.runs.fakes import T0, FakeLedger

PURPOSES = ("newsletter", "promotions")


def subscribe(email: str, purpose: str) -> Change:
    return Change(f"k-{email}-{purpose}", "klaviyo", email, Action.SUBSCRIBE, purpose)


def test_only_subscribes_the_decision_no_longer_allows_are_stopped_and_each_names_its_rule() -> None:
    ledger = FakeLedger()
    ledger.grant("allowed@example.nl", "newsletter")
    ledger.grant("withdrew@example.nl", "newsletter")
    ledger.withdraw("withdrew@example.nl", "newsletter", T0)
    subscribes = [
        subscribe("allowed@example.nl", "newsletter"),
        subscribe("withdrew@example.nl", "newsletter"),
        subscribe("never@example.nl", "newsletter"),
    ]
    stopped = no_longer_allowed(None, ledger, subscribes, purposes=PURPOSES, requires={}, now=T0)  # type: ignore[arg-type]
    assert stopped == {
        subscribes[1].key: Stopped(
            "R16",
            "not pushed: newsletter was no longer allowed when its push came (R16: withdraw by the person)",
        ),
        subscribes[2].key: Stopped(
            "R1", "not pushed: newsletter was no longer allowed when its push came (R1: no consent recorded)"
        ),
    }


def test_a_purpose_mailed_through_another_ones_flag_needs_that_one_allowed_too_r27() -> None:
    ledger = FakeLedger()
    ledger.grant("jan@example.nl", "promotions")  # promotions allowed, newsletter not
    promotions = subscribe("jan@example.nl", "promotions")
    assert no_longer_allowed(None, ledger, [promotions], purposes=PURPOSES, requires={}, now=T0) == {}  # type: ignore[arg-type]
    coupled = no_longer_allowed(
        None,  # type: ignore[arg-type]
        ledger,
        [promotions],
        purposes=PURPOSES,
        requires={"promotions": "newsletter"},
        now=T0,
    )
    assert [why.rule for why in coupled.values()] == ["R1"]
    assert coupled[promotions.key].text.startswith("not pushed: newsletter was no longer allowed")
