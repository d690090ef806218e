"""The HubSpot sandbox answers like HubSpot: paths, auth, limits, validation, batches, and the spec's shapes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from connectors.base import Status
from connectors.hubspot.sandbox import TOKEN, HubSpotSandbox
from connectors.sandbox import Clock
from tests.unit.connectors.hubspot_shapes import problems

CONTACTS = "contacts_v3"
PREFS = "communication_preferences_v4"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Api:
    """A synchronous face on the sandbox app in process (each call its own httpx client over ASGI)."""

    def __init__(self, sandbox: HubSpotSandbox) -> None:
        self.sandbox = sandbox

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.sandbox.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://hubspot.sandbox", headers=AUTH
            ) as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(send())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)


class Ticks:
    """A monotonic clock the test moves by hand (the sandbox's rate windows read it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def sandbox(ticks: Ticks) -> HubSpotSandbox:
    built = HubSpotSandbox(Clock(datetime(2024, 5, 1, 10, 0, tzinfo=UTC)), monotonic=ticks)
    built.seed_demo()
    return built


@pytest.fixture
def api(sandbox: HubSpotSandbox) -> Api:
    return Api(sandbox)


def test_listing_contacts_pages_by_after_and_matches_the_spec(api: Api) -> None:
    first = api.get("/crm/v3/objects/contacts", params={"limit": 2, "properties": "email,hs_email_optout"})
    after = first.json()["paging"]["next"]["after"]
    second = api.get("/crm/v3/objects/contacts", params={"limit": 2, "after": after, "properties": "email"})

    assert first.status_code == 200
    assert [c["properties"]["email"] for c in first.json()["results"]] == [
        "anna@example.com",
        "bram@example.com",
    ]
    assert [c["properties"]["email"] for c in second.json()["results"]] == [
        "cor@example.com",
        "dina@example.com",
    ]
    assert first.json()["results"][0]["properties"]["lastmodifieddate"] == "2024-05-01T10:00:00.000Z"
    for page in (first, second):
        assert (
            problems(
                CONTACTS, "CollectionResponseSimplePublicObjectWithAssociationsForwardPaging", page.json()
            )
            == []
        )


def test_bad_token_gets_hubspots_401_body(api: Api) -> None:
    response = api.get("/crm/v3/objects/contacts", headers={"Authorization": "Bearer wrong"})

    assert response.status_code == 401
    assert response.json()["category"] == "INVALID_AUTHENTICATION"
    assert response.json()["status"] == "error"
    # HubSpot's error bodies carry "status": "error", which the spec's Error schema does not list.
    assert problems(CONTACTS, "Error", response.json(), strict=False) == []


def test_list_limit_above_100_is_a_validation_error_naming_the_parameter(api: Api) -> None:
    response = api.get("/crm/v3/objects/contacts", params={"limit": 101})

    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert response.json()["errors"][0]["in"] == "limit"
    assert problems(CONTACTS, "Error", response.json(), strict=False) == []


def test_ten_secondly_limit_answers_429_with_retry_after_until_the_window_rolls(
    api: Api, sandbox: HubSpotSandbox, ticks: Ticks
) -> None:
    sandbox.ten_secondly.limit = 2
    answers = [api.get("/crm/v3/objects/contacts").status_code for _ in range(3)]
    limited = api.get("/crm/v3/objects/contacts")
    ticks.now = 10.5

    assert answers == [200, 200, 429]
    assert limited.headers["Retry-After"] == "10"
    assert limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert limited.json()["errorType"] == "RATE_LIMIT"
    assert api.get("/crm/v3/objects/contacts").status_code == 200


def test_search_has_its_own_per_second_limit(api: Api, sandbox: HubSpotSandbox, ticks: Ticks) -> None:
    sandbox.ten_secondly.limit = 1
    body = {"filterGroups": [], "sorts": [], "properties": ["email"], "limit": 10, "after": "0"}

    statuses = [api.post("/crm/v3/objects/contacts/search", json=body).status_code for _ in range(6)]
    ticks.now = 1.0

    assert statuses == [200] * 5 + [429]
    assert api.post("/crm/v3/objects/contacts/search", json=body).status_code == 200


def test_search_filters_sorts_and_pages_and_matches_the_spec(api: Api, sandbox: HubSpotSandbox) -> None:
    sandbox.clock.advance(60)
    sandbox.set_status("anna@example.com", "promotions", Status.SUBSCRIBED)  # anna is now the newest
    since = str(int(datetime(2024, 5, 1, 10, 0, 30, tzinfo=UTC).timestamp() * 1000))
    changed = {
        "filterGroups": [
            {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": since}]}
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["email"],
        "limit": 10,
        "after": "0",
    }
    everyone = {**changed, "filterGroups": [], "limit": 2}

    recent = api.post("/crm/v3/objects/contacts/search", json=changed).json()
    first = api.post("/crm/v3/objects/contacts/search", json=everyone).json()

    assert [c["properties"]["email"] for c in recent["results"]] == ["anna@example.com"]
    assert recent["total"] == 1
    assert "paging" not in recent
    assert first["total"] == 5
    assert first["paging"]["next"]["after"] == "2"
    assert first["results"][-1]["properties"]["email"] == "cor@example.com"  # anna, changed last, sorts last
    assert problems(CONTACTS, "CollectionResponseWithTotalSimplePublicObject", first) == []


def test_search_stops_at_the_result_cap(api: Api, sandbox: HubSpotSandbox) -> None:
    sandbox.search_cap = 4
    body = {"filterGroups": [], "sorts": [], "properties": [], "limit": 3, "after": "3"}

    last = api.post("/crm/v3/objects/contacts/search", json=body).json()
    beyond = api.post("/crm/v3/objects/contacts/search", json={**body, "after": "4"})

    assert len(last["results"]) == 1
    assert last["total"] == 5
    assert "paging" not in last
    assert beyond.status_code == 400


def test_search_refuses_more_than_five_filter_groups(api: Api) -> None:
    group = {"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}
    body = {"filterGroups": [group] * 6, "sorts": [], "properties": [], "limit": 10, "after": "0"}

    response = api.post("/crm/v3/objects/contacts/search", json=body)

    assert response.status_code == 400
    assert response.json()["errors"][0]["in"] == "filterGroups"


def test_batch_read_answers_207_for_unknown_addresses_and_matches_the_spec(api: Api) -> None:
    response = api.post(
        "/communication-preferences/v4/statuses/batch/read",
        params={"channel": "EMAIL"},
        json={"inputs": ["anna@example.com", "nobody@example.com"]},
    )
    body = response.json()

    assert response.status_code == 207
    assert body["numErrors"] == 1
    assert body["errors"][0]["context"] == {"subscriberIdString": ["nobody@example.com"]}
    anna = body["results"][0]
    newsletter = next(s for s in anna["statuses"] if s["subscriptionId"] == 101)
    assert (newsletter["status"], newsletter["legalBasis"]) == ("SUBSCRIBED", "CONSENT_WITH_NOTICE")
    assert problems(PREFS, "BatchResponsePublicStatusBulkResponseWithErrors", body) == []


def test_batch_read_needs_the_channel(api: Api) -> None:
    response = api.post(
        "/communication-preferences/v4/statuses/batch/read", json={"inputs": ["anna@example.com"]}
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["in"] == "channel"


def test_batch_write_reports_each_failing_item_and_applies_the_rest(
    api: Api, sandbox: HubSpotSandbox
) -> None:
    item = {"channel": "EMAIL", "statusState": "SUBSCRIBED", "legalBasis": "CONSENT_WITH_NOTICE"}
    inputs = [
        {**item, "subscriberIdString": "cor@example.com", "subscriptionId": 101},
        {**item, "subscriberIdString": "cor@example.com", "subscriptionId": 999},
        {
            "channel": "EMAIL",
            "statusState": "SUBSCRIBED",
            "subscriberIdString": "anna@example.com",
            "subscriptionId": 102,
        },
    ]

    response = api.post("/communication-preferences/v4/statuses/batch/write", json={"inputs": inputs})
    body = response.json()

    assert response.status_code == 207
    assert [r["setStatusSuccessReason"] for r in body["results"]] == ["RESUBSCRIBE_OCCURRED"]
    assert [e["context"]["subscriptionId"] for e in body["errors"]] == [["999"], ["102"]]
    assert "legalBasis is required" in body["errors"][1]["message"]
    assert sandbox.status("cor@example.com", "newsletter") is Status.SUBSCRIBED
    assert sandbox.status("anna@example.com", "promotions") is Status.NOT_SUBSCRIBED
    assert problems(PREFS, "BatchResponsePublicStatus", body) == []


def test_batch_write_refuses_a_malformed_item_whole(api: Api, sandbox: HubSpotSandbox) -> None:
    inputs = [
        {
            "channel": "EMAIL",
            "statusState": "UNSUBSCRIBED",
            "subscriberIdString": "anna@example.com",
            "subscriptionId": 101,
        },
        {
            "channel": "EMAIL",
            "statusState": "OPTED_OUT",
            "subscriberIdString": "bram@example.com",
            "subscriptionId": 101,
        },
    ]

    response = api.post("/communication-preferences/v4/statuses/batch/write", json={"inputs": inputs})

    assert response.status_code == 400
    assert response.json()["errors"][0]["in"] == "inputs[1].statusState"
    assert sandbox.status("anna@example.com", "newsletter") is Status.SUBSCRIBED


def test_opted_out_of_all_contact_stays_unsubscribed_when_subscribed(
    api: Api, sandbox: HubSpotSandbox
) -> None:
    item = {
        "channel": "EMAIL",
        "statusState": "SUBSCRIBED",
        "legalBasis": "CONSENT_WITH_NOTICE",
        "subscriberIdString": "dina@example.com",
        "subscriptionId": 101,
    }

    body = api.post("/communication-preferences/v4/statuses/batch/write", json={"inputs": [item]}).json()

    assert body["results"][0]["status"] == "UNSUBSCRIBED"
    assert body["results"][0]["setStatusSuccessReason"] == "UNSUBSCRIBE_FROM_ALL_OCCURRED"
    assert sandbox.status("dina@example.com", "newsletter") is Status.UNSUBSCRIBED


def test_unsubscribe_all_sets_the_optout_property_and_bumps_lastmodifieddate(
    api: Api, sandbox: HubSpotSandbox
) -> None:
    sandbox.clock.advance(5)

    response = api.post(
        "/communication-preferences/v4/statuses/batch/unsubscribe-all",
        params={"channel": "EMAIL", "verbose": "true"},
        json={"inputs": ["bram@example.com"]},
    )
    contact = sandbox.state.find("bram@example.com")

    assert response.status_code == 200
    assert problems(PREFS, "BatchResponsePublicBulkOptOutFromAllResponse", response.json()) == []
    assert contact is not None
    assert contact.properties["hs_email_optout"] == "true"
    assert contact.updated == datetime(2024, 5, 1, 10, 0, 5, tzinfo=UTC)
    assert {sandbox.status("bram@example.com", p) for p in ("newsletter", "promotions", "events")} == {
        Status.UNSUBSCRIBED
    }


def test_gdpr_delete_removes_the_contact_and_blocks_the_address(api: Api, sandbox: HubSpotSandbox) -> None:
    response = api.post(
        "/crm/v3/objects/contacts/gdpr-delete", json={"objectId": "anna@example.com", "idProperty": "email"}
    )
    item = {
        "channel": "EMAIL",
        "statusState": "SUBSCRIBED",
        "legalBasis": "CONSENT_WITH_NOTICE",
        "subscriberIdString": "anna@example.com",
        "subscriptionId": 101,
    }
    again = api.post("/communication-preferences/v4/statuses/batch/write", json={"inputs": [item]})

    assert response.status_code == 204
    assert sandbox.status("anna@example.com", "newsletter") is None
    assert again.status_code == 207


def test_single_status_read_and_definitions_match_the_spec(api: Api) -> None:
    one = api.get("/communication-preferences/v4/statuses/anna@example.com", params={"channel": "EMAIL"})
    missing = api.get(
        "/communication-preferences/v4/statuses/nobody@example.com", params={"channel": "EMAIL"}
    )
    definitions = api.get("/communication-preferences/v4/definitions")

    assert problems(PREFS, "ActionResponseWithResultsPublicStatus", one.json()) == []
    assert problems(PREFS, "ActionResponseWithResultsSubscriptionDefinition", definitions.json()) == []
    assert missing.status_code == 404
    assert problems(PREFS, "Error", missing.json(), strict=False) == []


def test_creating_a_contact_twice_is_a_conflict(api: Api) -> None:
    created = api.post(
        "/crm/v3/objects/contacts", json={"properties": {"email": "new@example.com"}, "associations": []}
    )
    again = api.post(
        "/crm/v3/objects/contacts", json={"properties": {"email": "new@example.com"}, "associations": []}
    )

    assert created.status_code == 201
    assert problems(CONTACTS, "SimplePublicObject", created.json()) == []
    assert again.status_code == 409
    assert again.json()["category"] == "CONFLICT"


def test_shape_check_catches_a_field_the_spec_does_not_have() -> None:
    """The validator is strict: were the sandbox to invent a field, the spec tests above would fail."""
    invented: dict[str, Any] = {"results": [], "total": 0, "nextCursor": "abc"}

    assert problems(CONTACTS, "CollectionResponseWithTotalSimplePublicObject", invented) != []


def test_portal_without_batch_scopes_gets_403_and_the_per_contact_endpoints(
    api: Api, sandbox: HubSpotSandbox
) -> None:
    sandbox.batch_enabled = False
    item = {"channel": "EMAIL", "statusState": "UNSUBSCRIBED", "subscriptionId": 101}

    refused = api.post("/communication-preferences/v4/statuses/batch/write", json={"inputs": [item]})
    written = api.post("/communication-preferences/v4/statuses/anna@example.com", json=item)
    unknown = api.post(
        "/communication-preferences/v4/statuses/anna@example.com", json={**item, "subscriptionId": 9}
    )
    opted_out = api.post(
        "/communication-preferences/v4/statuses/bram@example.com/unsubscribe-all", params={"channel": "EMAIL"}
    )

    assert refused.status_code == 403
    assert refused.json()["category"] == "MISSING_SCOPES"
    assert problems(PREFS, "Error", refused.json(), strict=False) == []
    assert written.json()["results"][0]["status"] == "UNSUBSCRIBED"
    assert problems(PREFS, "ActionResponseWithResultsPublicStatus", written.json()) == []
    assert unknown.status_code == 404
    assert problems(PREFS, "ActionResponseWithResultsPublicStatus", opted_out.json()) == []
    assert sandbox.status("bram@example.com", "promotions") is Status.UNSUBSCRIBED


def test_opted_out_of_all_reads_back_with_its_own_time(api: Api, sandbox: HubSpotSandbox) -> None:
    sandbox.clock.advance(3600)
    sandbox.state.touch("dina@example.com")

    batch = api.post(
        "/communication-preferences/v4/statuses/batch/unsubscribe-all/read",
        params={"channel": "EMAIL"},
        json={"inputs": ["dina@example.com", "anna@example.com"]},
    )
    one = api.get(
        "/communication-preferences/v4/statuses/dina@example.com/unsubscribe-all", params={"channel": "EMAIL"}
    )
    none = api.get(
        "/communication-preferences/v4/statuses/anna@example.com/unsubscribe-all", params={"channel": "EMAIL"}
    )

    dina, anna = batch.json()["results"]
    assert [(w["wideStatusType"], w["status"], w["timestamp"]) for w in dina["wideStatuses"]] == [
        ("PORTAL_WIDE", "UNSUBSCRIBED", "2024-05-01T10:00:00.000Z")
    ]
    assert anna["wideStatuses"] == []
    assert none.json()["results"] == []
    assert problems(PREFS, "BatchResponsePublicWideStatusBulkResponse", batch.json()) == []
    assert problems(PREFS, "ActionResponseWithResultsPublicWideStatus", one.json()) == []
