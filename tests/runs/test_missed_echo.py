"""A push whose echo a pull never brings back (the vendor did not move the record's stamp past the pull's
watermark) must not hold back a later change of that slot: an opt-out still reaches that system (R25)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from connectors.base import Action, Outcome, Status
from sync_worker import snapshot
from tests.runs.test_runner import World


@pytest.fixture
def world(engine: Engine) -> World:
    return World(engine)


def miss_the_echoes(world: World) -> None:
    """Move Klaviyo's cursor past our pushes, as if they were stamped at the pull's own watermark."""
    with world.engine.begin() as conn:
        snapshot.save_cursor(conn, "klaviyo", "contacts", str(world.klaviyo.seq), world.now)


async def test_withdrawal_reaches_a_system_whose_echo_of_our_subscribe_was_missed(world: World) -> None:
    world.ledger.grant("jan@example.nl", "newsletter")
    world.mailchimp.add("jan@example.nl", Status.SUBSCRIBED)
    world.klaviyo.add("jan@example.nl", Status.NOT_SUBSCRIBED)
    await world.run()
    assert world.klaviyo.status("jan@example.nl", "newsletter") == Status.SUBSCRIBED
    miss_the_echoes(world)
    quiet = await world.run()
    assert quiet.planned == 0  # what Klaviyo accepted counts as what it shows: nothing is pushed again
    world.mailchimp.set_status("jan@example.nl", "newsletter", Status.UNSUBSCRIBED)
    await world.run()
    assert world.klaviyo.status("jan@example.nl", "newsletter") == Status.UNSUBSCRIBED


async def test_refused_change_is_not_pushed_again_until_its_slot_is_read_back(world: World) -> None:
    world.ledger.grant("jan@example.nl", "newsletter")
    world.mailchimp.add("jan@example.nl", Status.SUBSCRIBED)
    world.klaviyo.add("jan@example.nl", Status.SUBSCRIBED)
    await world.run()
    world.mailchimp.set_status("jan@example.nl", "newsletter", Status.UNSUBSCRIBED)
    world.klaviyo.fail = lambda c: Outcome.REJECTED if c.action == Action.UNSUBSCRIBE else None
    await world.run()
    refused = len(world.klaviyo.pushes)
    await world.run(emails=["jan@example.nl"])  # decided again, without reading Klaviyo
    assert len(world.klaviyo.pushes) == refused  # the refusal stands until Klaviyo is read again
    world.klaviyo.fail = lambda _c: None
    world.klaviyo.set_status("jan@example.nl", "promotions", Status.SUBSCRIBED)  # Klaviyo's record moves
    await world.run()
    assert world.klaviyo.status("jan@example.nl", "newsletter") == Status.UNSUBSCRIBED
