"""The HubSpot sandbox over real HTTP: the connector end to end, and HubSpot's official Python SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import (
    PublicGdprDeleteInput,
    PublicObjectSearchRequest,
    SimplePublicObjectInputForCreate,
)

from config.settings import Settings
from connectors.base import Action, Basis, Change, ContactRecord, GlobalState, Outcome, Status
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.sandbox import Clock, served

pytestmark = pytest.mark.slow


@pytest.fixture
def sandbox() -> HubSpotSandbox:
    built = HubSpotSandbox(Clock(datetime(2024, 5, 1, 10, 0, tzinfo=UTC)))
    built.seed_demo()
    return built


@pytest.fixture
def base_url(sandbox: HubSpotSandbox) -> Iterator[str]:
    with served(sandbox.app) as url:
        yield url


def test_connector_pulls_and_pushes_over_real_http(
    sandbox: HubSpotSandbox, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sandbox.settings_env(base_url).items():
        monkeypatch.setenv(name, value)
    connector = HubSpotConnector.from_settings(Settings(), clock=lambda: datetime(2024, 6, 1, tzinfo=UTC))

    async def run() -> tuple[list[ContactRecord], list[Outcome], list[ContactRecord]]:
        full = [r async for page in connector.pull("contacts") for r in page.records]  # type: ignore[misc]
        cursor = None
        async for page in connector.pull("contacts"):
            cursor = page.checkpoint
        sandbox.clock.advance(60)
        pushed = await connector.push(
            [
                Change("w", "hubspot", "anna@example.com", Action.UNSUBSCRIBE, "newsletter"),
                Change(
                    "g", "hubspot", "cor@example.com", Action.SUBSCRIBE, "newsletter", basis=Basis.CONSENT
                ),
            ]
        )
        changed = [r async for page in connector.pull("contacts", cursor) for r in page.records]  # type: ignore[misc]
        await connector.aclose()
        return full, [r.outcome for r in pushed], changed

    full, outcomes, changed = asyncio.run(run())

    by_email = {r.email: r for r in full}
    assert set(by_email) == {
        "anna@example.com",
        "bram@example.com",
        "cor@example.com",
        "dina@example.com",
        "eva@example.com",
    }
    assert by_email["dina@example.com"].global_state is GlobalState.UNSUBSCRIBED_ALL
    assert outcomes == [Outcome.ACCEPTED, Outcome.ACCEPTED]
    assert {r.email: r.status_of("newsletter") for r in changed} == {
        "anna@example.com": Status.UNSUBSCRIBED,
        "cor@example.com": Status.SUBSCRIBED,
    }
    assert sandbox.requests.count(("POST", "/communication-preferences/v4/statuses/batch/write")) == 1


def test_official_sdk_lists_searches_creates_and_erases(sandbox: HubSpotSandbox, base_url: str) -> None:
    """hubspot-api-client pointed at the sandbox parses its answers into its own models."""
    client = HubSpot(access_token=sandbox.token, host=base_url)
    contacts = client.crm.contacts

    first = contacts.basic_api.get_page(limit=2, properties=["email", "hs_email_optout"])
    second = contacts.basic_api.get_page(limit=2, after=first.paging.next.after, properties=["email"])
    found = contacts.search_api.do_search(
        PublicObjectSearchRequest(
            filter_groups=[
                {"filters": [{"propertyName": "email", "operator": "EQ", "value": "dina@example.com"}]}
            ],
            sorts=["lastmodifieddate"],
            properties=["email", "hs_email_optout"],
            limit=10,
            after="0",
        )
    )
    created = contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": "sdk@example.com"}, associations=[])
    )
    contacts.basic_api.purge(PublicGdprDeleteInput(object_id="sdk@example.com", id_property="email"))

    assert [c.properties["email"] for c in first.results] == ["anna@example.com", "bram@example.com"]
    assert first.results[0].updated_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert [c.properties["email"] for c in second.results] == ["cor@example.com", "dina@example.com"]
    assert found.total == 1
    assert found.results[0].properties["hs_email_optout"] == "true"
    assert created.id == "1006"
    assert created.properties["email"] == "sdk@example.com"
    assert sandbox.state.find("sdk@example.com") is None


def test_official_sdk_sees_hubspots_401_for_a_bad_token(base_url: str) -> None:
    from hubspot.crm.contacts.exceptions import ApiException

    client = HubSpot(access_token="wrong", host=base_url)

    with pytest.raises(ApiException) as raised:
        client.crm.contacts.basic_api.get_page(limit=1)

    assert raised.value.status == 401
    assert '"category":"INVALID_AUTHENTICATION"' in raised.value.body
