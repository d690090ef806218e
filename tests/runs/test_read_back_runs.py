"""Webhook facts that name a change without its state: the run reads those people from the vendor and
takes the answer like a pulled page, without pulling any stream."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from sqlalchemy import Engine

from connectors.base import Page, Status
from sync_worker.ledger_port import EventKind
from sync_worker.trigger import WebhookFact
from tests.runs.fakes import T0, FakeConnector, FakeVendor
from tests.runs.test_runner import PURPOSES
from tests.runs.test_webhook_runs import JAN, World, unsubscribe, withdrawals


class ReadingVendor(FakeVendor):
    """A vendor whose connector can read a few known people (as HubSpot's statuses endpoint does)."""

    def __init__(self, name: str) -> None:
        super().__init__(name, PURPOSES, tags=False)  # HubSpot has no tags
        self.reads: list[dict[str, str]] = []
        self.broken_read: Exception | None = None

    def connector(self) -> FakeConnector:
        return ReadingConnector(self)


class ReadingConnector(FakeConnector):
    vendor: ReadingVendor

    async def read_people(self, people: Mapping[str, str]) -> Page:
        self.vendor.reads.append(dict(people))
        if self.vendor.broken_read is not None:
            raise self.vendor.broken_read
        return Page("contacts", tuple(self.vendor.record(self.vendor.contacts[e]) for e in sorted(people)))


@pytest.fixture
async def world(engine: Engine) -> World:
    world = World(engine)
    world.hubspot = ReadingVendor("hubspot")
    world.vendors = [world.mailchimp, world.klaviyo, world.hubspot, world.shopify]
    world.by_name = {v.name: v for v in world.vendors}
    world.ledger.grant(JAN, "newsletter")
    for vendor in world.vendors:
        vendor.add(JAN, Status.SUBSCRIBED)
    await world.run()
    return world


def subscription_changed(world: World, vendor_id: str | None = None) -> WebhookFact:
    """HubSpot's event for one subscription's opt-out property: a contact id and no state."""
    return WebhookFact(
        "hubspot",
        "contact.propertyChange:hs_email_optout_101",
        None,
        vendor_id or world.external_id("hubspot", JAN),
        "evt-r1",
        T0,
        reason="hs_email_optout_101=true",
        read_back=True,
    )


def reads(world: World) -> list[dict[str, str]]:
    vendor = world.hubspot
    assert isinstance(vendor, ReadingVendor)
    return vendor.reads


async def test_opt_out_named_without_its_state_is_read_back_recorded_and_pushed(world: World) -> None:
    pulls = world.pulls()
    world.hubspot.set_status(JAN, "newsletter", Status.UNSUBSCRIBED)

    report = await world.run((subscription_changed(world),))

    assert reads(world) == [{JAN: world.external_id("hubspot", JAN)}]
    assert world.pulls() == pulls  # one person read, no stream pulled
    assert withdrawals(world) == [("newsletter", "hubspot")]
    assert report.counts["hubspot"].events == 1
    assert all(world.by_name[name].status(JAN, "newsletter") == Status.UNSUBSCRIBED for name in world.by_name)
    assert report.status == "success"


async def test_read_back_of_our_own_push_is_an_echo(world: World) -> None:
    await world.run((unsubscribe(world, "mailchimp"),))
    events = dict(world.ledger.events)
    assert world.hubspot.status(JAN, "newsletter") == Status.UNSUBSCRIBED  # our push

    report = await world.run((subscription_changed(world),))

    assert world.ledger.events == events  # never the person's act in HubSpot (R8)
    assert report.counts["hubspot"].echoes >= 1
    assert report.planned == 0


async def test_unknown_contact_id_is_not_read_and_left_to_the_schedule(world: World) -> None:
    events = dict(world.ledger.events)

    report = await world.run((subscription_changed(world, "hubspot-unknown"),))

    assert reads(world) == []
    assert world.ledger.events == events
    assert report.status == "success"


async def test_failed_read_back_makes_the_run_partial_and_the_other_facts_go_on(world: World) -> None:
    vendor = world.hubspot
    assert isinstance(vendor, ReadingVendor)
    vendor.broken_read = ConnectionError("HubSpot unreachable")
    world.hubspot.set_status(JAN, "promotions", Status.UNSUBSCRIBED)

    report = await world.run((subscription_changed(world), unsubscribe(world, "mailchimp")))

    assert report.status == "partial"
    assert report.counts["hubspot"].error == "read back: ConnectionError: HubSpot unreachable"
    kinds = {(e.source, e.kind) for e in world.ledger.events.values() if e.email == JAN}
    assert ("mailchimp", EventKind.WITHDRAW) in kinds
    assert ("hubspot", EventKind.WITHDRAW) not in kinds
    assert world.by_name["klaviyo"].status(JAN, "newsletter") == Status.UNSUBSCRIBED


async def test_fact_with_an_address_only_is_read_by_the_vendor_id_the_snapshot_holds(world: World) -> None:
    world.hubspot.set_status(JAN, "newsletter", Status.UNSUBSCRIBED)
    fact = WebhookFact("hubspot", "subscription", JAN, None, "evt-r2", T0, read_back=True)

    await world.run((fact,))

    assert reads(world) == [{JAN: world.external_id("hubspot", JAN)}]
    assert withdrawals(world) == [("newsletter", "hubspot")]
