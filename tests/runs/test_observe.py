"""observe(): vendor changes become ledger events; echoes and bare subscribed flags never become grants."""

from __future__ import annotations

from datetime import timedelta

from connectors.base import ContactRecord, Evidence, GlobalState, PurposeState, Status
from sync_worker.ledger_port import EventKind
from sync_worker.observe import ACCOUNT, Seen, carried_over, observe
from tests.runs.fakes import T0

LATER = T0 + timedelta(hours=1)


def record(
    newsletter: Status,
    *,
    global_state: GlobalState = GlobalState.ACTIVE,
    evidence: Evidence | None = None,
    changed_at: object = LATER,
) -> ContactRecord:
    return ContactRecord(
        system="mailchimp",
        external_id="m-1",
        email="jan@example.nl",
        updated_at=LATER,
        purposes=(PurposeState("newsletter", newsletter, changed_at),),  # type: ignore[arg-type]
        global_state=global_state,
        reason="no longer interested",
        evidence=evidence,
    )


def seen(newsletter: Status, global_state: GlobalState = GlobalState.ACTIVE) -> Seen:
    return Seen("m-1", {"newsletter": newsletter}, global_state)


def test_unsubscribe_in_vendor_becomes_withdrawal_with_vendor_time_and_reason() -> None:
    result = observe(seen(Status.SUBSCRIBED), record(Status.UNSUBSCRIBED), {}, now=LATER + timedelta(days=1))
    [event] = result.events
    assert (event.kind, event.purpose, event.rule) == (EventKind.WITHDRAW, "newsletter", "R20")
    assert event.occurred_at == LATER
    assert event.reason == "no longer interested"
    assert event.time_from_source


def test_withdrawal_without_vendor_time_takes_effect_when_read_r31() -> None:
    rec = ContactRecord(
        "mailchimp", "m-1", "jan@example.nl", None, (PurposeState("newsletter", Status.UNSUBSCRIBED),)
    )
    [event] = observe(seen(Status.SUBSCRIBED), rec, {}, now=LATER).events
    assert event.occurred_at == LATER
    assert not event.time_from_source


def test_subscribed_flag_without_evidence_is_never_a_grant_r8() -> None:
    result = observe(seen(Status.UNSUBSCRIBED), record(Status.SUBSCRIBED), {}, now=LATER)
    assert [e.kind for e in result.events] == [EventKind.UNPROVEN]
    assert result.events[0].rule == "R8"
    assert all(e.kind != EventKind.GRANT for e in result.events)


def test_subscribed_with_vendor_evidence_is_offered_to_the_ledger_as_grant() -> None:
    evidence = Evidence(consent_at=T0, method="double_opt_in", collection_point="mailchimp:signup-form")
    [event] = observe(None, record(Status.SUBSCRIBED, evidence=evidence), {}, now=LATER).events
    assert (event.kind, event.occurred_at, event.evidence) == (EventKind.GRANT, T0, evidence)


def test_state_we_pushed_read_back_is_an_echo_not_the_persons_act() -> None:
    result = observe(
        seen(Status.SUBSCRIBED), record(Status.UNSUBSCRIBED), {"newsletter": "unsubscribed"}, now=LATER
    )
    assert result.events == ()
    assert result.echoes == {"newsletter"}
    assert result.mismatches == frozenset()


def test_state_other_than_pushed_is_a_real_change_and_unconfirms_the_push() -> None:
    result = observe(
        seen(Status.UNSUBSCRIBED), record(Status.SUBSCRIBED), {"newsletter": "unsubscribed"}, now=LATER
    )
    assert result.mismatches == {"newsletter"}
    assert [e.kind for e in result.events] == [EventKind.UNPROVEN]


def test_unchanged_state_yields_no_event() -> None:
    assert observe(seen(Status.SUBSCRIBED), record(Status.SUBSCRIBED), {}, now=LATER).events == ()


def test_pending_double_opt_in_is_not_a_grant_r6() -> None:
    assert observe(seen(Status.NOT_SUBSCRIBED), record(Status.PENDING), {}, now=LATER).events == ()


def test_leaving_the_purposes_list_counts_as_withdrawal() -> None:
    [event] = observe(seen(Status.SUBSCRIBED), record(Status.NOT_SUBSCRIBED), {}, now=LATER).events
    assert event.kind == EventKind.WITHDRAW


def test_unsubscribed_from_all_is_an_objection_r17() -> None:
    rec = record(Status.SUBSCRIBED, global_state=GlobalState.UNSUBSCRIBED_ALL)
    [event] = observe(seen(Status.SUBSCRIBED), rec, {}, now=LATER).events
    assert (event.kind, event.purpose, event.rule) == (EventKind.OBJECT, None, "R17")


def test_spam_complaint_is_an_objection_r18() -> None:
    rec = record(Status.SUBSCRIBED, global_state=GlobalState.COMPLAINED)
    [event] = observe(seen(Status.SUBSCRIBED), rec, {}, now=LATER).events
    assert (event.kind, event.rule) == (EventKind.COMPLAINT, "R18")


def test_bounce_is_no_consent_fact() -> None:
    rec = record(Status.SUBSCRIBED, global_state=GlobalState.BOUNCED)
    assert observe(seen(Status.SUBSCRIBED), rec, {}, now=LATER).events == ()


def test_erasure_we_pushed_read_back_is_an_echo() -> None:
    rec = record(Status.NOT_SUBSCRIBED, global_state=GlobalState.ERASED)
    result = observe(seen(Status.NOT_SUBSCRIBED), rec, {ACCOUNT: "erased"}, now=LATER)
    assert result.events == ()
    assert result.echoes == {ACCOUNT}


def test_reading_the_same_state_twice_gives_the_same_event_ids_r32() -> None:
    first = observe(None, record(Status.UNSUBSCRIBED), {}, now=LATER)
    again = observe(None, record(Status.UNSUBSCRIBED), {}, now=LATER + timedelta(days=3))
    assert [e.source_event_id for e in first.events] == [e.source_event_id for e in again.events]


def test_side_effects_of_our_unsubscribe_are_part_of_its_echo() -> None:
    """Mailchimp: unsubscribing the status-mapped newsletter also reads as unsubscribed from all."""
    rec = ContactRecord(
        "mailchimp", "m-1", "jan@example.nl", LATER,
        (PurposeState("newsletter", Status.UNSUBSCRIBED, LATER), PurposeState("promotions", Status.UNSUBSCRIBED, LATER)),
        global_state=GlobalState.UNSUBSCRIBED_ALL,
    )  # fmt: skip
    previous = Seen("m-1", {"newsletter": Status.SUBSCRIBED, "promotions": Status.SUBSCRIBED})
    result = observe(previous, rec, {"newsletter": "unsubscribed"}, now=LATER)
    assert result.echoes == {"newsletter"}
    assert result.events == ()


def test_a_complaint_next_to_our_unsubscribe_is_still_the_persons_act() -> None:
    rec = record(Status.UNSUBSCRIBED, global_state=GlobalState.COMPLAINED)
    result = observe(seen(Status.SUBSCRIBED), rec, {"newsletter": "unsubscribed"}, now=LATER)
    assert [e.kind for e in result.events] == [EventKind.COMPLAINT]


def test_side_effect_of_our_subscribe_is_not_an_unproven_flag() -> None:
    rec = ContactRecord(
        "mailchimp", "m-1", "jan@example.nl", LATER,
        (PurposeState("newsletter", Status.SUBSCRIBED, LATER), PurposeState("promotions", Status.SUBSCRIBED, LATER)),
    )  # fmt: skip
    previous = Seen("m-1", {"newsletter": Status.NOT_SUBSCRIBED, "promotions": Status.NOT_SUBSCRIBED})
    result = observe(previous, rec, {"promotions": "subscribed"}, now=LATER)
    assert result.events == ()


def test_a_snapshot_read_with_another_mapping_carries_over_the_account_state_and_unchanged_statuses() -> None:
    before = Seen("m-1", {"newsletter": Status.UNSUBSCRIBED}, GlobalState.COMPLAINED)
    unchanged = record(Status.UNSUBSCRIBED, global_state=GlobalState.COMPLAINED)
    assert observe(carried_over(before, unchanged), unchanged, {}, LATER).events == ()
    # A status that differs is a first look: here a purpose moved to a list Jan never joined.
    moved = record(Status.NOT_SUBSCRIBED, global_state=GlobalState.COMPLAINED)
    assert carried_over(Seen("m-1", {"newsletter": Status.SUBSCRIBED}), moved) == Seen("m-1", {})


def test_a_snapshot_of_another_record_carries_nothing_over() -> None:
    """Another account (a changed shop) holds the person under another id: its state is its own news."""
    elsewhere = Seen("other-shop-7", {"newsletter": Status.UNSUBSCRIBED}, GlobalState.COMPLAINED)
    now_shown = record(Status.UNSUBSCRIBED, global_state=GlobalState.COMPLAINED)
    assert carried_over(elsewhere, now_shown) is None
    kinds = {e.kind for e in observe(carried_over(elsewhere, now_shown), now_shown, {}, LATER).events}
    assert kinds == {EventKind.COMPLAINT, EventKind.WITHDRAW}
