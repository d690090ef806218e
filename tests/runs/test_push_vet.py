"""A claimed subscribe is decided again when its push comes (sync_worker.push_vet)."""

from __future__ import annotations

from connectors.base import Action, Change
from sync_worker.ledger_port import EventKind, ObservedEvent
from sync_worker.plan import REPERMISSION_TAG
from sync_worker.push_vet import Stale, no_longer_allowed
from tests.runs.fakes import T0, FakeLedger

PURPOSES = ("newsletter", "promotions")


def change(email: str, action: Action, purpose: str | None) -> Change:
    return Change(f"k-{email}-{action}-{purpose}", "klaviyo", email, action, purpose)


def test_only_subscribes_the_decision_no_longer_allows_are_stale_and_each_names_its_rule() -> None:
    ledger = FakeLedger()
    ledger.grant("allowed@example.nl", "newsletter")
    ledger.grant("withdrew@example.nl", "newsletter")
    ledger.withdraw("withdrew@example.nl", "newsletter", T0)
    changes = [
        change("allowed@example.nl", Action.SUBSCRIBE, "newsletter"),
        change("withdrew@example.nl", Action.SUBSCRIBE, "newsletter"),
        change("never@example.nl", Action.SUBSCRIBE, "newsletter"),
        change("withdrew@example.nl", Action.UNSUBSCRIBE, "promotions"),  # an opt-out always goes
        change("withdrew@example.nl", Action.TAG, None),
    ]
    stale = no_longer_allowed(None, ledger, changes, purposes=PURPOSES, requires={}, now=T0)  # type: ignore[arg-type]
    assert {key: why.rule for key, why in stale.items()} == {
        changes[1].key: "R16",
        changes[2].key: "R1",
    }
    assert stale[changes[1].key] == Stale(
        "R16", "not pushed: newsletter is no longer allowed when its push came (R16: withdraw by the person)"
    )


def test_a_purpose_mailed_through_another_ones_flag_needs_that_one_allowed_too_r27() -> None:
    ledger = FakeLedger()
    ledger.grant("jan@example.nl", "promotions")  # promotions allowed, newsletter not
    promotions = change("jan@example.nl", Action.SUBSCRIBE, "promotions")
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
    assert "newsletter is no longer allowed" in coupled[promotions.key].text


def test_a_re_permission_tag_goes_only_while_its_person_is_quarantined_r8() -> None:
    ledger = FakeLedger()
    flag = ObservedEvent("imp@example.nl", "newsletter", EventKind.UNPROVEN, T0, "klaviyo", "flag-1", "R8")
    ledger.events[(flag.source, flag.source_event_id)] = flag
    tag = Change("k-tag", "klaviyo", "imp@example.nl", Action.TAG, tag=REPERMISSION_TAG)
    untag = Change("k-untag", "klaviyo", "imp@example.nl", Action.UNTAG, tag=REPERMISSION_TAG)
    vetted = [tag, untag]
    assert no_longer_allowed(None, ledger, vetted, purposes=PURPOSES, requires={}, now=T0) == {}  # type: ignore[arg-type]
    ledger.withdraw("imp@example.nl", "newsletter", T0)  # no longer quarantined: nobody to ask for consent
    assert no_longer_allowed(None, ledger, vetted, purposes=PURPOSES, requires={}, now=T0) == {  # type: ignore[arg-type]
        "k-tag": Stale("R8", "not pushed: its person is no longer quarantined when its push came (R8)")
    }
