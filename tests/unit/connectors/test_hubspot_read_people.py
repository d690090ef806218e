"""The HubSpot connector's targeted read of a few known contacts, against its sandbox in process."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from connectors.base import ContactRecord, GlobalState, Page, ReadsPeople, Status
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.sandbox import HubSpotSandbox
from tests.unit.connectors.test_hubspot_sync import Recording, connect, pull
from tests.unit.connectors.test_hubspot_sync import sandbox as unseeded  # noqa: F401 - a fixture


@pytest.fixture
def sandbox(unseeded: HubSpotSandbox) -> HubSpotSandbox:  # noqa: F811 - this module's own
    unseeded.seed_demo()
    return unseeded


def read(connector: HubSpotConnector, people: dict[str, str]) -> Page:
    async def go() -> Page:
        try:
            return await connector.read_people(people)
        finally:
            await connector.aclose()

    return asyncio.run(go())


def pulled(sandbox: HubSpotSandbox) -> dict[str, ContactRecord]:
    connector = connect(sandbox)
    records = [r for page in pull(connector) for r in page.records if isinstance(r, ContactRecord)]
    asyncio.run(connector.aclose())
    return {r.email: r for r in records}


def comparable(record: ContactRecord) -> ContactRecord:
    # A pull stamps the contact with lastmodifieddate and names hs_email_optout; the statuses are the same.
    return replace(record, updated_at=None, reason=None)


def test_read_people_gives_the_statuses_a_pull_gives(sandbox: HubSpotSandbox) -> None:
    for email, status in (("anna@example.com", Status.UNSUBSCRIBED), ("bram@example.com", Status.SUBSCRIBED)):
        sandbox.clock.advance(60)
        sandbox.set_status(email, "newsletter", status)
    everyone = pulled(sandbox)
    people = {
        e: everyone[e].external_id for e in ("anna@example.com", "bram@example.com", "dina@example.com")
    }

    page = read(connect(sandbox), people)

    assert page.errors == ()
    assert page.checkpoint is None
    assert {r.email: comparable(r) for r in page.records if isinstance(r, ContactRecord)} == {
        email: comparable(everyone[email]) for email in people
    }
    anna = next(r for r in page.records if isinstance(r, ContactRecord) and r.email == "anna@example.com")
    assert anna.status_of("newsletter") is Status.UNSUBSCRIBED
    assert anna.updated_at == sandbox.clock.now() - timedelta(seconds=60)


def test_read_people_takes_opted_out_of_all_from_the_wide_status(sandbox: HubSpotSandbox) -> None:
    dina = pulled(sandbox)["dina@example.com"]

    (record,) = read(connect(sandbox), {"dina@example.com": dina.external_id}).records

    assert isinstance(record, ContactRecord)
    assert record.global_state is GlobalState.UNSUBSCRIBED_ALL
    assert record.global_changed_at == dina.global_changed_at


def test_read_people_uses_the_per_contact_endpoints_only(sandbox: HubSpotSandbox) -> None:
    """They need no Enterprise scope: a portal without the batch scopes answers them too."""
    sandbox.batch_enabled = False
    transport = Recording(sandbox)
    connector = connect(sandbox, transport)
    assert isinstance(connector, ReadsPeople)

    page = read(connector, {"anna@example.com": "1"})

    assert [r.email for r in page.records if isinstance(r, ContactRecord)] == ["anna@example.com"]
    assert sorted((r.method, r.url.path) for r in transport.sent) == [
        ("GET", "/communication-preferences/v4/statuses/anna@example.com"),
        ("GET", "/communication-preferences/v4/statuses/anna@example.com/unsubscribe-all"),
    ]


def test_read_people_reports_an_address_hubspot_does_not_know(sandbox: HubSpotSandbox) -> None:
    page = read(connect(sandbox), {"gone@example.com": "404"})

    assert page.records == ()
    (error,) = page.errors
    assert (error.system, error.record_id, error.field) == ("hubspot", "404", "subscriptionStatuses")
    assert "No subscriber found" in error.message
