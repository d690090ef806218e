"""The outbox: committed before pushing, batched, settled, retried with a bound, safe across crashes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from sqlalchemy import Connection, Engine

from connectors.base import Action, Basis, Change, Outcome, Status
from sync_worker import due, outbox
from sync_worker.plan import PlannedChange, change_key
from tests.runs.fakes import T0, FakeVendor, ProcessKilled


def unsubscribe(email: str, run_id: str = "run1") -> PlannedChange:
    key = change_key(run_id, "klaviyo", email, "newsletter", Action.UNSUBSCRIBE)
    change = Change(key, "klaviyo", email, Action.UNSUBSCRIBE, "newsletter")
    return PlannedChange(change, "newsletter", "subscribed", "unsubscribed", "R16", "withdrawn")


def vendor_with(emails: list[str]) -> FakeVendor:
    vendor = FakeVendor("klaviyo", ["newsletter"])
    for email in emails:
        vendor.add(email, Status.SUBSCRIBED)
    return vendor


def queued(engine: Engine, email: str = "a@example.nl") -> tuple[FakeVendor, PlannedChange]:
    """A vendor holding one subscribed person, and an unsubscribe for them committed to the outbox."""
    vendor = vendor_with([email])
    item = unsubscribe(email)
    with engine.begin() as conn:
        outbox.enqueue(conn, "run1", [item], T0)
    return vendor, item


def state_of(engine: Engine, key: str) -> dict[str, object]:
    with engine.begin() as conn:
        return dict(outbox.items(conn, [key])[key])


async def test_push_sends_vendor_sized_batches_and_marks_items_done(engine: Engine) -> None:
    emails = [f"p{i}@example.nl" for i in range(5)]
    vendor = vendor_with(emails)
    planned = [unsubscribe(e) for e in emails]
    with engine.begin() as conn:
        outbox.enqueue(conn, "run1", planned, T0)
    results = await outbox.push_system(engine, vendor.connector(), T0)
    assert [len(batch) for batch in vendor.pushes] == [2, 2, 1]  # batch_max 2 in the fake
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    assert all(vendor.status(e, "newsletter") == Status.UNSUBSCRIBED for e in emails)
    assert state_of(engine, planned[0].change.key)["state"] == "done"


async def test_actions_with_one_batch_limit_share_batches(engine: Engine) -> None:
    """Three unsubscribes and one subscribe, batch_max 2 for both: two full batches, not 2 + 1 + 1."""
    emails = [f"p{i}@example.nl" for i in range(4)]
    vendor = vendor_with(emails)
    planned = [unsubscribe(e) for e in emails[:3]]
    key = change_key("run1", "klaviyo", emails[3], "newsletter", Action.SUBSCRIBE)
    grant = Change(key, "klaviyo", emails[3], Action.SUBSCRIBE, "newsletter")
    planned.append(PlannedChange(grant, "newsletter", "unsubscribed", "subscribed", "R1", "consent"))
    with engine.begin() as conn:
        outbox.enqueue(conn, "run1", planned, T0)
    await outbox.push_system(engine, vendor.connector(), T0)
    assert sorted(len(batch) for batch in vendor.pushes) == [2, 2]


async def test_rejected_change_is_parked_with_the_vendors_reason(engine: Engine) -> None:
    vendor, item = queued(engine)
    vendor.fail = lambda _c: Outcome.REJECTED
    await outbox.push_system(engine, vendor.connector(), T0)
    row = state_of(engine, item.change.key)
    assert (row["state"], row["last_error"]) == ("parked", "injected")


def subscribe(email: str, run_id: str = "run1") -> PlannedChange:
    key = change_key(run_id, "klaviyo", email, "newsletter", Action.SUBSCRIBE)
    change = Change(key, "klaviyo", email, Action.SUBSCRIBE, "newsletter")
    return PlannedChange(change, "newsletter", "not_subscribed", "subscribed", "R5", "consent")


async def test_failing_subscribe_is_retried_by_later_runs_then_parked(engine: Engine) -> None:
    vendor = vendor_with(["a@example.nl"])
    item = subscribe("a@example.nl")
    with engine.begin() as conn:
        outbox.enqueue(conn, "run1", [item], T0)
    vendor.fail = lambda _c: Outcome.RETRY_LATER
    for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
        await outbox.push_system(engine, vendor.connector(), T0 + timedelta(minutes=attempt))
        assert len(vendor.pushes) == attempt  # once per run, never again within the same run
    assert state_of(engine, item.change.key)["state"] == "parked"
    await outbox.push_system(engine, vendor.connector(), T0 + timedelta(hours=1))
    assert len(vendor.pushes) == outbox.MAX_ATTEMPTS


async def test_a_subscribe_the_vet_stops_is_superseded_never_sent_and_its_person_due(engine: Engine) -> None:
    vendor = vendor_with(["a@example.nl", "b@example.nl"])
    stopped, sent = subscribe("a@example.nl"), unsubscribe("b@example.nl")
    with engine.begin() as conn:
        outbox.enqueue(conn, "run1", [stopped, sent], T0)
    seen: list[list[str]] = []

    def vet(_conn: Connection, changes: Sequence[Change]) -> dict[str, str]:
        seen.append(sorted(c.key for c in changes))
        # It would stop the opt-out too: push_system never lets it (R25).
        return {stopped.change.key: "not pushed: withdrawn since", sent.change.key: "not pushed: wrong"}

    await outbox.push_system(engine, vendor.connector(), T0, vet=vet)
    assert seen == [[stopped.change.key]]  # asked once, about the claimed change that gives
    assert [c.key for batch in vendor.pushes for c in batch] == [sent.change.key]
    assert state_of(engine, stopped.change.key)["state"] == "superseded"
    assert state_of(engine, stopped.change.key)["last_error"] == "not pushed: withdrawn since"
    assert state_of(engine, sent.change.key)["state"] == "done"
    with engine.begin() as conn:
        assert due.next_due(conn, "", T0, limit=10) == ["a@example.nl"]
    await outbox.push_system(engine, vendor.connector(), T0 + timedelta(hours=1), vet=vet)
    assert len(vendor.pushes) == 1  # superseded is not retried


async def test_failing_opt_out_is_never_given_up_r25(engine: Engine) -> None:
    vendor, item = queued(engine)
    vendor.fail = lambda _c: Outcome.RETRY_LATER
    runs = outbox.MAX_ATTEMPTS + 3
    for attempt in range(1, runs + 1):
        await outbox.push_system(engine, vendor.connector(), T0 + timedelta(minutes=attempt))
    assert len(vendor.pushes) == runs  # one attempt per run, past the bound
    row = state_of(engine, item.change.key)
    assert (row["state"], row["attempts"]) == ("failed", runs)
    vendor.fail = lambda _c: None
    await outbox.push_system(engine, vendor.connector(), T0 + timedelta(hours=1))
    assert vendor.status("a@example.nl", "newsletter") == Status.UNSUBSCRIBED


async def test_failed_item_succeeds_on_a_later_run(engine: Engine) -> None:
    vendor, item = queued(engine)
    vendor.fail = lambda _c: Outcome.RETRY_LATER
    await outbox.push_system(engine, vendor.connector(), T0)
    vendor.fail = lambda _c: None
    await outbox.push_system(engine, vendor.connector(), T0 + timedelta(minutes=15))
    row = state_of(engine, item.change.key)
    assert (row["state"], row["attempts"]) == ("done", 1)
    assert vendor.status("a@example.nl", "newsletter") == Status.UNSUBSCRIBED


async def test_crash_after_claim_loses_nothing_the_next_run_takes_over_after_the_lease(
    engine: Engine,
) -> None:
    vendor, item = queued(engine)
    vendor.crash_on_push = ProcessKilled()  # the process dies mid-push: nothing is settled
    with pytest.raises(ProcessKilled):
        await outbox.push_system(engine, vendor.connector(), T0)
    assert state_of(engine, item.change.key)["state"] == "in_flight"
    vendor.crash_on_push = None
    # Another process within the lease must not take the claimed item...
    await outbox.push_system(engine, vendor.connector(), T0 + timedelta(seconds=30))
    assert vendor.pushes == []
    # ...the next run after the lease does, and the opt-out reaches the vendor.
    await outbox.push_system(engine, vendor.connector(), T0 + outbox.LEASE + timedelta(seconds=1))
    assert state_of(engine, item.change.key)["state"] == "done"
    assert vendor.status("a@example.nl", "newsletter") == Status.UNSUBSCRIBED


async def test_crash_after_claim_the_lease_holder_takes_over_the_orphaned_claim_at_once(
    engine: Engine,
) -> None:
    vendor, item = queued(engine)
    vendor.crash_on_push = ProcessKilled()
    with pytest.raises(ProcessKilled):
        await outbox.push_system(engine, vendor.connector(), T0)
    vendor.crash_on_push = None
    # Every pusher holds the connector's lease: whoever holds it now knows the claimant died (R25).
    await outbox.push_system(engine, vendor.connector(), T0 + timedelta(seconds=30), leased=True)
    assert state_of(engine, item.change.key)["state"] == "done"
    assert vendor.status("a@example.nl", "newsletter") == Status.UNSUBSCRIBED


async def test_connector_exception_fails_the_batch_for_a_later_retry(engine: Engine) -> None:
    vendor, item = queued(engine)
    vendor.crash_on_push = ConnectionError("sandbox down")
    [result] = await outbox.push_system(engine, vendor.connector(), T0)
    assert result.outcome == Outcome.RETRY_LATER
    assert "sandbox down" in (result.reason or "")
    assert state_of(engine, item.change.key)["state"] == "failed"


def test_leftover_subscribe_is_superseded_never_pushed_without_a_fresh_decision(engine: Engine) -> None:
    key = change_key("old", "klaviyo", "a@example.nl", "newsletter", Action.SUBSCRIBE)
    change = Change(key, "klaviyo", "a@example.nl", Action.SUBSCRIBE, "newsletter")
    subscribe = PlannedChange(change, "newsletter", "not_subscribed", "subscribed", "R5", "consent")
    with engine.begin() as conn:
        outbox.enqueue(conn, "old", [subscribe, unsubscribe("b@example.nl", "old")], T0)
        assert outbox.supersede_subscribes(conn, "new", T0) == 1
        assert outbox.in_flight(conn, ["a@example.nl", "b@example.nl"]) == {
            "b@example.nl": {("klaviyo", "newsletter")}
        }


async def test_done_item_awaits_its_echo_until_verified(engine: Engine) -> None:
    vendor, _ = queued(engine)
    await outbox.push_system(engine, vendor.connector(), T0)
    with engine.begin() as conn:
        assert outbox.awaiting_echo(conn, "klaviyo", ["a@example.nl"]) == {
            "a@example.nl": {"newsletter": "unsubscribed"}
        }
        outbox.verify(conn, "klaviyo", "a@example.nl", ["newsletter"], outcome="echo", now=T0)
        assert outbox.awaiting_echo(conn, "klaviyo", ["a@example.nl"]) == {}
        assert outbox.in_flight(conn, ["a@example.nl"]) == {}


def test_change_survives_the_json_round_trip() -> None:
    change = Change("k", "hubspot", "a@example.nl", Action.SUBSCRIBE, "newsletter", "h-1", consent_at=T0)
    assert outbox.change_from_json(outbox.change_to_json(change)) == change


def test_change_json_text_is_stable() -> None:
    # Items written by earlier versions are read back by this one: the text keeps its keys, order and values.
    change = Change(
        "k", "hubspot", "a@example.nl", Action.SUBSCRIBE, "newsletter", "h-1", Basis.CONSENT, T0, None
    )
    assert outbox.change_to_json(change) == (
        '{"action": "subscribe", "basis": "consent", "consent_at": "' + T0.isoformat() + '", '
        '"email": "a@example.nl", "external_id": "h-1", "key": "k", "purpose": "newsletter", '
        '"system": "hubspot", "tag": null}'
    )
