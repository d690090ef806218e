"""Bounded retries across runs: a failing subscribe is parked, not retried forever; an opt-out is never given
up and is reported by every run until it has reached its system (R25)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from structlog.testing import capture_logs

from connectors.base import Action, Outcome, Status
from sync_worker import outbox
from sync_worker.outbox import ITEMS
from sync_worker.web.outbox_gauges import oldest_optout_age
from tests.runs.test_runner import World


@pytest.fixture
def world(engine: Engine) -> World:
    return World(engine)


def subscribe_rows(world: World) -> list[tuple[str, int]]:
    query = select(ITEMS.c.state, ITEMS.c.attempts).where(ITEMS.c.action == Action.SUBSCRIBE.value)
    with world.engine.begin() as conn:
        return [
            (str(state), int(attempts))
            for state, attempts in conn.execute(query.order_by(ITEMS.c.created_at))
        ]


def klaviyo_fails(world: World, action: Action, outcome: Outcome) -> None:
    """Klaviyo answers every push of ``action`` with ``outcome``."""
    world.klaviyo.fail = lambda c: outcome if c.action == action else None


def consent_not_yet_in_klaviyo(world: World) -> None:
    world.ledger.grant("jan@example.nl", "newsletter")
    world.klaviyo.add("jan@example.nl", Status.NOT_SUBSCRIBED)


async def unsubscribed_in_mailchimp(world: World) -> None:
    """Jan, subscribed everywhere with consent, unsubscribes in Mailchimp after a first run."""
    world.ledger.grant("jan@example.nl", "newsletter")
    world.everywhere("jan@example.nl", Status.SUBSCRIBED)
    await world.run()
    world.mailchimp.set_status("jan@example.nl", "newsletter", Status.UNSUBSCRIBED)


async def test_failing_subscribe_is_parked_after_max_attempts_over_runs_not_retried_forever(
    world: World,
) -> None:
    consent_not_yet_in_klaviyo(world)
    klaviyo_fails(world, Action.SUBSCRIBE, Outcome.RETRY_LATER)
    for _ in range(outbox.MAX_ATTEMPTS + 3):
        # Full runs decide everyone each time: each would plan the subscribe again with a new count.
        await world.run(full=True)
    assert len(world.klaviyo.pushes) == outbox.MAX_ATTEMPTS
    states = subscribe_rows(world)
    assert states[-1] == ("parked", outbox.MAX_ATTEMPTS)
    assert {s for s, _ in states[:-1]} == {"superseded"}
    quiet = await world.run(full=True)
    assert quiet.counts["klaviyo"].planned == 0
    assert quiet.subscribes_given_up == {"klaviyo": 1}
    assert quiet.summary()["subscribes_given_up"] == {"klaviyo": 1}


async def test_subscribe_left_by_an_interrupted_run_is_decided_again_in_the_next_incremental_run(
    world: World,
) -> None:
    consent_not_yet_in_klaviyo(world)
    klaviyo_fails(world, Action.SUBSCRIBE, Outcome.RETRY_LATER)
    await world.run()
    world.klaviyo.fail = lambda _c: None
    # Nothing changed in the vendor: only the superseded subscribe brings the person back to planning.
    await world.run()
    assert world.klaviyo.status("jan@example.nl", "newsletter") == Status.SUBSCRIBED
    assert subscribe_rows(world) == [("superseded", 1), ("done", 1)]


async def test_opt_out_that_keeps_failing_is_retried_every_run_and_reported_until_it_lands(
    world: World,
) -> None:
    await unsubscribed_in_mailchimp(world)
    klaviyo_fails(world, Action.UNSUBSCRIBE, Outcome.RETRY_LATER)
    for _ in range(outbox.MAX_ATTEMPTS - 1):
        failing = await world.run()
        assert failing.stuck_optouts == []  # within the bound: a failed push, not yet an alarm
    with capture_logs() as logs:
        loud = await world.run()  # the MAX_ATTEMPTS-th failure
    assert loud.status == "partial"
    [stuck] = loud.stuck_optouts
    assert (stuck.system, stuck.failing, stuck.refused) == ("klaviyo", 1, 0)
    assert loud.summary()["optouts_not_propagated"]["klaviyo"]["failing"] == 1
    assert [e["connector"] for e in logs if e["event"] == "optouts_not_propagated"] == ["klaviyo"]
    assert [e["log_level"] for e in logs if e["event"] == "optouts_not_propagated"] == ["error"]
    world.klaviyo.fail = lambda _c: None
    landed = await world.run()
    assert world.klaviyo.status("jan@example.nl", "newsletter") == Status.UNSUBSCRIBED
    assert landed.stuck_optouts == []


async def test_opt_out_the_vendor_refuses_is_parked_and_reported_by_every_run(world: World) -> None:
    await unsubscribed_in_mailchimp(world)
    klaviyo_fails(world, Action.UNSUBSCRIBE, Outcome.REJECTED)
    refused = await world.run()
    later = await world.run()  # no vendor change: the refusal is still reported
    for report in (refused, later):
        assert [(s.system, s.failing, s.refused) for s in report.stuck_optouts] == [("klaviyo", 0, 1)]
        assert report.status == "partial"
    # The alert gauge of R25 keeps ageing it: a refusal is not a propagation.
    # (The second run read the refused slot back and planned the opt-out again: the new refusal is the oldest.)
    an_hour_later = later.stuck_optouts[0].oldest + timedelta(hours=1)
    assert oldest_optout_age(world.engine, lambda: an_hour_later)() == 3600
