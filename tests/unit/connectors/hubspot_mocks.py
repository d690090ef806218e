"""Mocked HubSpot HTTP for the connector's unit tests (respx): routes, bodies in HubSpot's shapes, fixtures."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import respx

from config.hubspot import HubSpotSettings
from connectors.base import Change, Page, PushResult
from connectors.http import RetryPolicy
from connectors.hubspot.connector import HubSpotConnector

BASE = "https://hubspot.test"
LIST = ("GET", "/crm/v3/objects/contacts")
SEARCH = ("POST", "/crm/v3/objects/contacts/search")
READ = ("POST", "/communication-preferences/v4/statuses/batch/read")
WRITE = ("POST", "/communication-preferences/v4/statuses/batch/write")
WIDE = ("POST", "/communication-preferences/v4/statuses/batch/unsubscribe-all/read")
GDPR = ("POST", "/crm/v3/objects/contacts/gdpr-delete")
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def rate_limited(retry_after: str | None = None) -> httpx.Response:
    """HubSpot's documented 429 body: errorType and policyName, no category."""
    body = {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24",
        "policyName": "TEN_SECONDLY_ROLLING",
        "requestId": "3d3e35b7-0dae-4b9f-a6e3-9c230cbcf8dd",
    }
    return httpx.Response(429, json=body, headers={"Retry-After": retry_after} if retry_after else None)


def hubspot_error(status: int, category: str, message: str) -> httpx.Response:
    body = {
        "status": "error",
        "message": message,
        "correlationId": "9d1c3f5e-0000-4000-8000-000000000000",
        "category": category,
    }
    return httpx.Response(status, json=body)


def contact(
    contact_id: str, email: str | None, modified: str = "2024-05-01T10:00:00.000Z", optout: str = "false"
) -> dict[str, object]:
    properties = {
        "lastmodifieddate": modified,
        "createdate": "2024-04-01T09:00:00.000Z",
        "hs_email_optout": optout,
    }
    if email is not None:
        properties["email"] = email
    return {
        "id": contact_id,
        "properties": properties,
        "createdAt": "2024-04-01T09:00:00.000Z",
        "updatedAt": modified,
        "archived": False,
    }


def status(email: str, subscription_id: int, state: str, **extra: object) -> dict[str, object]:
    return {
        "subscriberIdString": email,
        "subscriptionId": subscription_id,
        "channel": "EMAIL",
        "status": state,
        "source": "Public status API",
        "timestamp": "2024-04-20T08:30:00.000Z",
        **extra,
    }


def batch(results: list[object], errors: list[object] | None = None) -> httpx.Response:
    body: dict[str, object] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": "2024-05-01T12:00:00.000Z",
        "completedAt": "2024-05-01T12:00:00.100Z",
    }
    if errors:
        body |= {"errors": errors, "numErrors": len(errors)}
    return httpx.Response(207 if errors else 200, json=body)


def item_error(email: str, subscription_id: int | None, message: str) -> dict[str, object]:
    context: dict[str, list[str]] = {"subscriberIdString": [email]}
    if subscription_id is not None:
        context["subscriptionId"] = [str(subscription_id)]
    return {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": message,
        "context": context,
        "errors": [],
        "links": {},
    }


def on(mock: respx.MockRouter, endpoint: tuple[str, str]) -> respx.Route:
    """A route on method and path alone: query parameters are checked where a test cares."""
    return mock.route(method=endpoint[0], host="hubspot.test", path=endpoint[1])


@pytest.fixture(name="mock")
def mock_fixture() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=True) as router:
        yield router


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(name="sleeps")
def sleeps_fixture() -> Sleeps:
    return Sleeps()


@pytest.fixture(name="connector")
def connector_fixture(sleeps: Sleeps) -> Iterator[HubSpotConnector]:
    settings = HubSpotSettings(
        access_token="pat-test", base_url=BASE, subscriptions={"newsletter": "101", "promotions": "102"}
    )
    retry = RetryPolicy(max_attempts=3, sleep=sleeps, rng=random.Random(1))
    built = HubSpotConnector(settings, retry=retry, clock=lambda: NOW)
    yield built
    asyncio.run(built.aclose())


def pull(connector: HubSpotConnector, since: str | None = None) -> list[Page]:
    async def collect() -> list[Page]:
        return [page async for page in connector.pull("contacts", since)]

    return asyncio.run(collect())


def push(connector: HubSpotConnector, changes: list[Change]) -> dict[str, PushResult]:
    return {result.key: result for result in asyncio.run(connector.push(changes))}


def missing_scopes() -> httpx.Response:
    return hubspot_error(
        403, "MISSING_SCOPES", "This app hasn't been granted all required scopes to make this call."
    )
