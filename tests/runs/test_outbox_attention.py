"""Operator control of stuck outbox items: list them, retry them with a renewed budget, dismiss them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from connectors.base import Action, Outcome, Status
from sync_worker import outbox, outbox_attention, runlog
from sync_worker.outbox import ITEMS
from sync_worker.outbox_attention import OutboxKeyError
from sync_worker.web.outbox_gauges import oldest_optout_age
from tests.runs.test_retries import (
    consent_not_yet_in_klaviyo,
    klaviyo_fails,
    subscribe_rows,
    unsubscribed_in_mailchimp,
)
from tests.runs.test_runner import World

SECRET = b"test-secret"


@pytest.fixture
def world(engine: Engine) -> World:
    return World(engine)


def attention(world: World) -> list[outbox_attention.Attention]:
    with world.engine.begin() as conn:
        return outbox_attention.needing_attention(conn, world.now)


def retry(world: World, keys: list[str]) -> None:
    with world.engine.begin() as conn:
        outbox_attention.retry(conn, keys, actor="dpo", secret=SECRET, now=world.now)


def dismiss(world: World, keys: list[str], reason: str = "contact deleted in Klaviyo") -> None:
    with world.engine.begin() as conn:
        outbox_attention.dismiss(conn, keys, reason=reason, actor="dpo", secret=SECRET, now=world.now)


def state_of(world: World, key: str) -> tuple[str, int]:
    with world.engine.begin() as conn:
        state, attempts = conn.execute(
            select(ITEMS.c.state, ITEMS.c.attempts).where(ITEMS.c.key == key)
        ).one()
    return str(state), int(attempts)


def operator_log(world: World) -> list[dict[str, object]]:
    with world.engine.begin() as conn:
        runs = [r for r in runlog.runs(conn, 50) if r["trigger"] == "operator"]
        return [c for r in runs for c in runlog.changes(conn, str(r["id"]))]


async def refused_optout(world: World) -> outbox_attention.Attention:
    """Jan unsubscribes in Mailchimp; Klaviyo refuses the opt-out (e.g. it deleted the contact)."""
    await unsubscribed_in_mailchimp(world)
    klaviyo_fails(world, Action.UNSUBSCRIBE, Outcome.REJECTED)
    await world.run()
    [item] = attention(world)
    return item


async def test_refused_optout_is_listed_masked_with_the_vendors_reason_and_marked_as_making_runs_partial(
    world: World,
) -> None:
    item = await refused_optout(world)
    assert (item.system, item.person, item.slot, item.action, item.state) == (
        "klaviyo", "j***@example.nl", "newsletter", "unsubscribe", "parked",
    )  # fmt: skip
    assert item.makes_runs_partial
    assert item.reason
    with world.engine.begin() as conn:  # vendors' words may quote the address
        conn.execute(ITEMS.update().values(last_error="jan@example.nl was permanently deleted"))
    assert attention(world)[0].reason == "j***@example.nl was permanently deleted"
    assert item.age_seconds == 0
    world.now += timedelta(hours=2)
    assert attention(world)[0].age_seconds == 7200


async def test_dismissed_optout_stops_making_runs_partial_keeps_its_row_and_logs_who_why_when(
    world: World,
) -> None:
    await refused_optout(world)
    del world.klaviyo.contacts["jan@example.nl"]  # why Klaviyo refuses: the contact is gone there
    # The echoes of the first push make Jan due once more: the opt-out is planned and refused again.
    await world.run()
    stuck = await world.run()
    assert stuck.status == "partial"  # and so every run from now on, until an operator acts
    [item] = [i for i in attention(world) if i.makes_runs_partial]
    decisions_before = world.ledger.kinds("jan@example.nl")
    dismiss(world, [item.key])
    assert state_of(world, item.key)[0] == "dismissed"
    assert attention(world) == []
    for _ in range(2):
        later = await world.run()
        assert later.stuck_optouts == []
        assert later.status == "success"
    assert oldest_optout_age(world.engine, lambda: world.now)() == 0  # the R25 alert stops ageing it
    # The ledger is untouched: the withdrawal still stands.
    assert world.ledger.kinds("jan@example.nl") == decisions_before
    [logged] = operator_log(world)
    assert logged["person"] == "j***@example.nl"
    assert (logged["before"], logged["after"], logged["rule"]) == ("parked", "dismissed", "R25")
    assert logged["reason"] == f"dismissed by dpo: contact deleted in Klaviyo (outbox item {item.key})"
    assert "jan@example.nl" not in str(logged)


async def test_withdrawal_still_governs_the_next_plan_after_a_dismissal(world: World) -> None:
    item = await refused_optout(world)
    dismiss(world, [item.key])
    world.klaviyo.fail = lambda _c: None
    # Klaviyo shows Jan subscribed again: the dismissal does not stop the opt-out being planned.
    world.klaviyo.set_status("jan@example.nl", "newsletter", Status.SUBSCRIBED)
    await world.run()
    assert world.klaviyo.status("jan@example.nl", "newsletter") == Status.UNSUBSCRIBED


async def test_retried_optout_is_pushed_again_by_the_next_run_with_a_renewed_budget(world: World) -> None:
    await unsubscribed_in_mailchimp(world)
    klaviyo_fails(world, Action.UNSUBSCRIBE, Outcome.RETRY_LATER)
    for _ in range(outbox.MAX_ATTEMPTS):
        stuck = await world.run()
    assert stuck.status == "partial"
    [item] = attention(world)
    assert (item.state, item.attempts, item.makes_runs_partial) == ("failed", outbox.MAX_ATTEMPTS, True)
    retry(world, [item.key])
    assert state_of(world, item.key) == ("pending", 0)
    assert attention(world) == []
    world.klaviyo.fail = lambda _c: None
    landed = await world.run()
    assert world.klaviyo.status("jan@example.nl", "newsletter") == Status.UNSUBSCRIBED
    assert state_of(world, item.key) == ("done", 0)
    assert landed.status == "success"
    [logged] = operator_log(world)
    assert (logged["before"], logged["after"]) == ("failed", "pending")


async def given_up_subscribe(world: World) -> outbox_attention.Attention:
    consent_not_yet_in_klaviyo(world)
    klaviyo_fails(world, Action.SUBSCRIBE, Outcome.RETRY_LATER)
    for _ in range(outbox.MAX_ATTEMPTS):
        await world.run(full=True)
    [item] = attention(world)
    assert (item.action, item.state, item.makes_runs_partial) == ("subscribe", "parked", False)
    return item


async def test_retried_subscribe_is_decided_again_and_gets_a_whole_new_budget(world: World) -> None:
    item = await given_up_subscribe(world)
    pushes = len(world.klaviyo.pushes)
    retry(world, [item.key])
    # The vendor still fails: the fresh subscribe is tried MAX_ATTEMPTS times more, then given up again.
    for _ in range(outbox.MAX_ATTEMPTS + 2):
        await world.run(full=True)
    assert len(world.klaviyo.pushes) == pushes + outbox.MAX_ATTEMPTS
    assert subscribe_rows(world)[-1] == ("parked", outbox.MAX_ATTEMPTS)


async def test_retried_subscribe_lands_on_a_fresh_decision_in_an_incremental_run(world: World) -> None:
    item = await given_up_subscribe(world)
    retry(world, [item.key])
    world.klaviyo.fail = lambda _c: None
    await world.run()  # nothing changed in the vendor: only the retry brings Jan back to planning
    assert world.klaviyo.status("jan@example.nl", "newsletter") == Status.SUBSCRIBED
    assert state_of(world, item.key) == ("superseded", 0)  # the old decision itself was never pushed


async def test_retried_subscribe_is_not_pushed_once_consent_is_withdrawn(world: World) -> None:
    item = await given_up_subscribe(world)
    world.ledger.withdraw("jan@example.nl", "newsletter", world.now)
    retry(world, [item.key])
    world.klaviyo.fail = lambda _c: None
    await world.run()
    assert world.klaviyo.status("jan@example.nl", "newsletter") == Status.NOT_SUBSCRIBED


async def test_dismissed_subscribe_stays_given_up(world: World) -> None:
    item = await given_up_subscribe(world)
    pushes = len(world.klaviyo.pushes)
    dismiss(world, [item.key], reason="address bounces in Klaviyo")
    for _ in range(2):
        quiet = await world.run(full=True)
        assert quiet.counts["klaviyo"].planned == 0
    assert len(world.klaviyo.pushes) == pushes
    assert attention(world) == []


async def test_all_parked_takes_refusals_and_given_up_subscribes_not_failing_items(world: World) -> None:
    item = await refused_optout(world)
    with world.engine.begin() as conn:
        assert outbox_attention.parked_keys(conn) == [item.key]


async def test_unknown_or_unfit_keys_are_named_and_nothing_changes(world: World) -> None:
    item = await refused_optout(world)
    with pytest.raises(OutboxKeyError, match="no-such-key: no such outbox item"):
        dismiss(world, [item.key, "no-such-key"])
    assert state_of(world, item.key)[0] == "parked"
    assert operator_log(world) == []
    dismiss(world, [item.key])
    with pytest.raises(OutboxKeyError, match=f"{item.key}: is dismissed, only parked or failed"):
        dismiss(world, [item.key])
    with world.engine.begin() as conn:
        done = conn.execute(select(ITEMS.c.key).where(ITEMS.c.state == "done")).scalars().first()
    with pytest.raises(OutboxKeyError, match=f"{done}: is done"):
        retry(world, [str(done)])


async def test_dismissal_needs_a_reason(world: World) -> None:
    item = await refused_optout(world)
    with pytest.raises(ValueError, match="reason"):
        dismiss(world, [item.key], reason="  ")


async def test_dismissed_item_can_be_retried(world: World) -> None:
    item = await refused_optout(world)
    dismiss(world, [item.key])
    world.now += timedelta(minutes=1)
    retry(world, [item.key])
    assert state_of(world, item.key) == ("pending", 0)
    assert [(c["before"], c["after"]) for c in operator_log(world)] == [
        ("dismissed", "pending"), ("parked", "dismissed"),
    ]  # fmt: skip
