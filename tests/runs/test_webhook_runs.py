"""Webhook runs: the facts of one vendor's webhook are observed, recorded and pushed for that person only."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine

from connectors.base import GlobalState, Status
from sync_worker.ledger_port import EventKind
from sync_worker.plan import REPERMISSION_TAG
from sync_worker.runner import RunReport
from sync_worker.trigger import WebhookFact
from tests.runs.fakes import T0, FakeVendor
from tests.runs.test_runner import PURPOSES
from tests.runs.test_runner import World as RunnerWorld

JAN = "jan@example.nl"


class World(RunnerWorld):
    """The runner tests' world with a fourth vendor: A..D, one ledger, one database."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.hubspot = FakeVendor("hubspot", PURPOSES)
        self.vendors = [self.mailchimp, self.klaviyo, self.hubspot, self.shopify]
        self.by_name = {v.name: v for v in self.vendors}

    async def run(self, facts: tuple[WebhookFact, ...] = (), **kw: object) -> RunReport:
        return await super().run(facts=facts, **kw)

    def pulls(self) -> int:
        return sum(v.pull_requests for v in self.vendors)

    def external_id(self, system: str, email: str) -> str:
        vendor = self.by_name[system]
        return vendor.record(vendor.contacts[email]).external_id


@pytest.fixture
async def world(engine: Engine) -> World:
    world = World(engine)
    world.ledger.grant(JAN, "newsletter")
    for vendor in world.vendors:
        vendor.add(JAN, Status.SUBSCRIBED)
    await world.run()  # the snapshot every later webhook is observed against
    return world


def unsubscribe(
    world: World, system: str, *, email: str | None = JAN, at: datetime | None = None
) -> WebhookFact:
    """What the vendor's own record now says, as its webhook parser hands it over."""
    world.by_name[system].set_status(JAN, "newsletter", Status.UNSUBSCRIBED)
    return WebhookFact(
        system,
        "unsubscribe",
        email,
        world.external_id(system, JAN),
        "evt-1",
        at or world.by_name[system].clock,
        status=Status.UNSUBSCRIBED,
    )


def withdrawals(world: World) -> list[tuple[str | None, str]]:
    return sorted(
        (e.purpose, e.source)
        for e in world.ledger.events.values()
        if e.email == JAN and e.kind == EventKind.WITHDRAW
    )


async def test_unsubscribe_webhook_is_recorded_once_and_pushed_to_the_other_three_in_that_run(
    world: World,
) -> None:
    pulls = world.pulls()
    fact = unsubscribe(world, "mailchimp")

    report = await world.run((fact,))

    assert report.status == "success", report.summary()
    assert world.pulls() == pulls  # no stream was pulled for one person
    # R20: the vendor's unsubscribe is the person's withdrawal of newsletter. Promotions shows the
    # unsubscribe the first run pushed there (R27): an echo, confirmed, never the person's act.
    assert withdrawals(world) == [("newsletter", "mailchimp")]
    assert (report.counts["mailchimp"].events, report.counts["mailchimp"].echoes) == (1, 1)
    for name in ("klaviyo", "hubspot", "shopify"):
        assert world.by_name[name].status(JAN, "newsletter") == Status.UNSUBSCRIBED, name
    assert report.pushes == {
        ("klaviyo", "newsletter", True): 1,
        ("hubspot", "newsletter", True): 1,
        ("shopify", "newsletter", True): 1,
        # The first run tagged Jan for re-permission (promotions flagged without evidence); once he has
        # withdrawn he is no longer asked: the tag comes off in this run, its echo not needed first, also
        # in Mailchimp, whose webhook says nothing about tags (its tag push still awaits a read).
        ("mailchimp", "tags", True): 1,
        ("klaviyo", "tags", True): 1,
        ("hubspot", "tags", True): 1,
    }
    assert REPERMISSION_TAG not in world.mailchimp.contacts[JAN].tags

    # The vendor retries its delivery, and the scheduled run reads the same state: nothing new.
    events = dict(world.ledger.events)
    again = await world.run((fact,))
    assert (again.counts["mailchimp"].events, again.planned) == (0, 0)
    await world.run()
    assert world.ledger.events == events


async def test_echo_webhook_of_our_own_push_records_nothing(world: World) -> None:
    await world.run((unsubscribe(world, "mailchimp"),))
    events = dict(world.ledger.events)
    klaviyo = world.by_name["klaviyo"]
    # Klaviyo tells us about the unsubscribe we just pushed there.
    echo = WebhookFact(
        "klaviyo",
        "Unsubscribed from Email Marketing",
        JAN,
        world.external_id("klaviyo", JAN),
        "evt-2",
        klaviyo.contacts[JAN].purpose_times["newsletter"],
        status=Status.UNSUBSCRIBED,
    )

    report = await world.run((echo,))

    assert world.ledger.events == events  # never the person's act in Klaviyo (R8 side: echoes are ours)
    assert report.counts["klaviyo"].echoes >= 1
    assert report.planned == 0


async def test_id_only_webhook_is_resolved_through_the_snapshot(world: World) -> None:
    world.by_name["hubspot"].set_global(JAN, GlobalState.UNSUBSCRIBED_ALL)
    fact = WebhookFact(
        "hubspot",
        "contact.propertyChange:hs_email_optout",
        None,
        world.external_id("hubspot", JAN),
        "evt-3",
        world.by_name["hubspot"].clock,
        global_state=GlobalState.UNSUBSCRIBED_ALL,
    )

    before = set(world.ledger.events)

    await world.run((fact,))

    new = [world.ledger.events[key] for key in set(world.ledger.events) - before]
    assert [(e.email, e.source, e.kind, e.rule) for e in new] == [(JAN, "hubspot", EventKind.OBJECT, "R17")]
    assert world.by_name["mailchimp"].status(JAN, "newsletter") == Status.UNSUBSCRIBED


async def test_webhook_for_unknown_vendor_id_records_nothing_and_leaves_it_to_the_schedule(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    events = dict(world.ledger.events)
    fact = WebhookFact(
        "hubspot",
        "contact.privacyDeletion",
        None,
        "hubspot-unknown",
        "evt-4",
        T0,
        global_state=GlobalState.ERASED,
    )

    report = await world.run((fact,))

    assert report.status == "success"
    assert world.ledger.events == events
    assert report.planned == 0
    assert "webhook_person_unknown" in capsys.readouterr().out  # said, with the vendor id, not dropped


async def test_unsubscribe_webhook_for_a_person_never_seen_is_still_a_withdrawal(world: World) -> None:
    fact = WebhookFact(
        "klaviyo", "unsubscribe", "new@example.nl", "k-9", "evt-5", T0, status=Status.UNSUBSCRIBED
    )

    await world.run((fact,))

    recorded = {(e.email, e.purpose, e.kind, e.rule) for e in world.ledger.events.values() if e.email != JAN}
    assert recorded == {
        ("new@example.nl", "newsletter", EventKind.WITHDRAW, "R20"),
        ("new@example.nl", "promotions", EventKind.WITHDRAW, "R20"),
    }


async def test_subscribe_webhook_is_no_grant_and_is_left_to_the_scheduled_read(world: World) -> None:
    events = dict(world.ledger.events)
    fact = WebhookFact("klaviyo", "subscribe", "new@example.nl", "k-9", "evt-6", T0, status=Status.SUBSCRIBED)

    report = await world.run((fact,))

    assert world.ledger.events == events  # R8: a flag without evidence never becomes a grant
    assert report.planned == 0
