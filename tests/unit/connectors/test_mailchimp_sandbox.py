"""The Mailchimp sandbox answers like Mailchimp: auth, paging, filters, errors, limits, and the spec's shapes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from connectors.base import Status
from connectors.mailchimp.mapping import subscriber_hash
from connectors.mailchimp.sandbox import MailchimpSandbox
from connectors.mailchimp.sandbox_data import LIST_ID
from connectors.sandbox import Clock
from tests.unit.connectors.mailchimp_spec import request_schema, response_schema, validate

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
MEMBERS = "/lists/{list_id}/members"
BATCH = "/lists/{list_id}"


@pytest.fixture
def sandbox() -> MailchimpSandbox:
    return MailchimpSandbox(Clock(T0))


@pytest.fixture
async def api(sandbox: MailchimpSandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox.app),
        base_url="http://sandbox.test/3.0",
        auth=("anyone", sandbox.api_key),
    ) as client:
        yield client


def _subscribed_jan(sandbox: MailchimpSandbox) -> str:
    """Adds a subscribed member; returns the API path of that member."""
    sandbox.add_contact("jan@example.nl", {"newsletter": Status.SUBSCRIBED})
    return f"/lists/{LIST_ID}/members/{subscriber_hash('jan@example.nl')}"


async def test_bad_api_key_gets_mailchimps_401_problem_body(sandbox: MailchimpSandbox) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox.app), auth=("anyone", "wrong-us21")
    ) as client:
        response = await client.get(f"http://sandbox.test/3.0/lists/{LIST_ID}/members")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["title"] == "API Key Invalid"
    assert set(body) == {"type", "title", "status", "detail", "instance"}
    validate(body, response_schema(MEMBERS, "get", "default"))


async def test_unknown_list_is_404_resource_not_found(api: httpx.AsyncClient) -> None:
    response = await api.get("/lists/nope/members")
    assert response.status_code == 404
    assert response.json()["title"] == "Resource Not Found"


async def test_member_listing_matches_the_official_spec(
    sandbox: MailchimpSandbox, api: httpx.AsyncClient
) -> None:
    sandbox.add_contact(
        "jan@example.nl",
        {"newsletter": Status.SUBSCRIBED, "promotions": Status.SUBSCRIBED, "events": Status.SUBSCRIBED},
        source="Hosted Signup Form",
        ip_opt="192.0.2.1",
    )
    sandbox.add_contact("piet@example.nl", {"newsletter": Status.UNSUBSCRIBED})
    response = await api.get(f"/lists/{LIST_ID}/members", params={"count": 10})
    assert response.status_code == 200
    body = response.json()
    validate(body, response_schema(MEMBERS, "get"))
    assert body["total_items"] == 2
    jan, piet = body["members"]
    assert jan["id"] == subscriber_hash("jan@example.nl")
    assert jan["last_changed"] == "2026-03-01T09:00:00+00:00"
    assert [t["name"] for t in jan["tags"]] == ["events"]
    assert piet["status"] == "unsubscribed"
    assert piet["unsubscribe_reason"]


async def test_count_above_1000_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.get(f"/lists/{LIST_ID}/members", params={"count": 1001})
    assert response.status_code == 400
    assert response.json()["title"] == "Invalid Resource"


async def test_since_last_changed_is_strictly_after_and_sorting_is_by_last_changed(
    sandbox: MailchimpSandbox, api: httpx.AsyncClient
) -> None:
    sandbox.add_contact("a@example.nl", {"newsletter": Status.SUBSCRIBED})
    sandbox.clock.advance(60)
    sandbox.add_contact("b@example.nl", {"newsletter": Status.SUBSCRIBED})
    sandbox.clock.advance(60)
    sandbox.set_status("a@example.nl", "newsletter", Status.UNSUBSCRIBED)
    response = await api.get(
        f"/lists/{LIST_ID}/members",
        params={
            "since_last_changed": "2026-03-01T09:01:00+00:00",
            "sort_field": "last_changed",
            "sort_dir": "ASC",
        },
    )
    assert [m["email_address"] for m in response.json()["members"]] == ["a@example.nl"]
    everything = await api.get(
        f"/lists/{LIST_ID}/members", params={"sort_field": "last_changed", "sort_dir": "ASC"}
    )
    assert [m["email_address"] for m in everything.json()["members"]] == ["b@example.nl", "a@example.nl"]


async def test_batch_reports_partial_failures_in_errors_with_error_count(
    sandbox: MailchimpSandbox, api: httpx.AsyncClient
) -> None:
    sandbox.add_contact("gone@example.nl", {"newsletter": Status.UNSUBSCRIBED})
    sandbox.add_contact("known@example.nl", {"newsletter": Status.SUBSCRIBED})
    body = {
        "members": [
            {"email_address": "new@example.nl", "status": "subscribed"},
            {"email_address": "known@example.nl", "status": "unsubscribed"},
            {"email_address": "gone@example.nl", "status": "subscribed"},
            {"email_address": "not-an-address", "status": "subscribed"},
        ],
        "update_existing": True,
    }
    validate(body, request_schema(BATCH, "post"))
    response = await api.post(f"/lists/{LIST_ID}", json=body)
    assert response.status_code == 200
    result = response.json()
    validate(result, response_schema(BATCH, "post"))
    assert (result["total_created"], result["total_updated"], result["error_count"]) == (1, 1, 2)
    assert "total_errors" not in result
    errors = {e["email_address"]: e for e in result["errors"]}
    assert "compliance state" in errors["gone@example.nl"]["error"]
    assert errors["not-an-address"]["field"] == "email_address"
    assert sandbox.status("gone@example.nl", "newsletter") is Status.UNSUBSCRIBED


async def test_batch_over_500_members_is_refused(api: httpx.AsyncClient) -> None:
    members = [{"email_address": f"p{i}@example.nl", "status": "subscribed"} for i in range(501)]
    response = await api.post(f"/lists/{LIST_ID}", json={"members": members, "update_existing": True})
    assert response.status_code == 400


async def test_put_subscribed_on_unsubscribed_member_is_member_in_compliance_state(
    sandbox: MailchimpSandbox, api: httpx.AsyncClient
) -> None:
    sandbox.add_contact("gone@example.nl", {"newsletter": Status.UNSUBSCRIBED})
    path = f"/lists/{LIST_ID}/members/{subscriber_hash('gone@example.nl')}"
    body = {"email_address": "gone@example.nl", "status_if_new": "subscribed", "status": "subscribed"}
    validate(body, request_schema("/lists/{list_id}/members/{subscriber_hash}", "put"))
    refused = await api.put(path, json=body)
    assert refused.status_code == 400
    assert refused.json()["title"] == "Member In Compliance State"
    pending = await api.put(path, json={**body, "status": "pending"})
    assert pending.status_code == 200
    assert sandbox.status("gone@example.nl", "newsletter") is Status.PENDING


async def test_tags_endpoint_answers_204_and_inactive_removes(
    sandbox: MailchimpSandbox, api: httpx.AsyncClient
) -> None:
    path = f"{_subscribed_jan(sandbox)}/tags"
    body = {"tags": [{"name": "events", "status": "active"}, {"name": "vip", "status": "active"}]}
    validate(body, request_schema("/lists/{list_id}/members/{subscriber_hash}/tags", "post"))
    added = await api.post(path, json=body)
    assert (added.status_code, added.content) == (204, b"")
    await api.post(path, json={"tags": [{"name": "vip", "status": "inactive"}]})
    listed = await api.get(path)
    assert [t["name"] for t in listed.json()["tags"]] == ["events"]
    assert sandbox.status("jan@example.nl", "events") is Status.SUBSCRIBED


async def test_permanently_deleted_address_cannot_be_re_added(
    sandbox: MailchimpSandbox, api: httpx.AsyncClient
) -> None:
    member = _subscribed_jan(sandbox)
    deleted = await api.post(f"{member}/actions/delete-permanent")
    assert deleted.status_code == 204
    assert (await api.get(member)).status_code == 404
    again = await api.post(
        f"/lists/{LIST_ID}/members", json={"email_address": "jan@example.nl", "status": "subscribed"}
    )
    assert again.json()["title"] == "Forgotten Email Not Subscribed"


async def test_eleventh_simultaneous_connection_gets_429(
    sandbox: MailchimpSandbox, api: httpx.AsyncClient
) -> None:
    sandbox.faults.rate_slow, sandbox.faults.slow_seconds = 1.0, 0.05  # keep requests in flight
    responses = await asyncio.gather(*(api.get("/ping") for _ in range(14)))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) == 10
    assert codes.count(429) == 4
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.json()["title"] == "Too Many Requests"
    assert "10 simultaneous connections" in limited.json()["detail"]


async def test_injected_429_carries_retry_after_and_problem_body(
    sandbox: MailchimpSandbox, api: httpx.AsyncClient
) -> None:
    sandbox.faults.rate_429, sandbox.faults.retry_after = 1.0, 3
    response = await api.get("/ping")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    validate(response.json(), response_schema(MEMBERS, "get", "default"))


async def test_fields_and_exclude_fields_shape_the_listing(
    sandbox: MailchimpSandbox, api: httpx.AsyncClient
) -> None:
    sandbox.add_contact("jan@example.nl", {"newsletter": Status.SUBSCRIBED})
    picked = await api.get(
        f"/lists/{LIST_ID}/members", params={"fields": "members.email_address,members.status,total_items"}
    )
    assert picked.json() == {
        "members": [{"email_address": "jan@example.nl", "status": "subscribed"}],
        "total_items": 1,
    }
    dropped = await api.get(f"/lists/{LIST_ID}/members", params={"exclude_fields": "members.tags,_links"})
    body = dropped.json()
    assert "_links" not in body
    assert "tags" not in body["members"][0]
    assert "email_address" in body["members"][0]


async def test_request_without_credentials_is_401_api_key_missing(sandbox: MailchimpSandbox) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app)) as client:
        response = await client.get("http://sandbox.test/3.0/ping")
    assert (response.status_code, response.json()["title"]) == (401, "API Key Missing")


async def test_batch_without_update_existing_reports_contact_exists(
    sandbox: MailchimpSandbox, api: httpx.AsyncClient
) -> None:
    sandbox.add_contact("jan@example.nl", {"newsletter": Status.SUBSCRIBED})
    members = [{"email_address": "jan@example.nl", "status": "unsubscribed"}]
    result = (await api.post(f"/lists/{LIST_ID}", json={"members": members, "update_existing": False})).json()
    assert [e["error_code"] for e in result["errors"]] == ["ERROR_CONTACT_EXISTS"]
    assert sandbox.status("jan@example.nl", "newsletter") is Status.SUBSCRIBED


SEGMENTS = "/lists/{list_id}/segments"
SEGMENT = "/lists/{list_id}/segments/{segment_id}"


async def test_tags_are_static_segments_listed_created_and_batch_edited_in_the_specs_shapes(
    sandbox: MailchimpSandbox, api: httpx.AsyncClient
) -> None:
    _subscribed_jan(sandbox)
    sandbox.add_contact("piet@example.nl", {"newsletter": Status.UNSUBSCRIBED}, tags=["events"])
    listed = (await api.get(f"/lists/{LIST_ID}/segments", params={"type": "static", "count": 1000})).json()
    validate(listed, response_schema(SEGMENTS, "get"))
    assert [(s["name"], s["member_count"], s["type"]) for s in listed["segments"]] == [
        ("events", 1, "static")
    ]

    create = {"name": "re-permission", "static_segment": []}
    validate(create, request_schema(SEGMENTS, "post"))
    created = await api.post(f"/lists/{LIST_ID}/segments", json=create)
    validate(created.json(), response_schema(SEGMENTS, "post"))
    again = await api.post(f"/lists/{LIST_ID}/segments", json=create)
    assert again.status_code == 400, "a tag name is unique in an audience"

    edit = {"members_to_add": ["jan@example.nl", "piet@example.nl", "nobody@example.nl"]}
    validate(edit, request_schema(SEGMENT, "post"))
    answer = await api.post(f"/lists/{LIST_ID}/segments/{created.json()['id']}", json=edit)
    result = answer.json()
    validate(result, response_schema(SEGMENT, "post"))
    assert (result["total_added"], result["error_count"]) == (2, 1)
    assert result["errors"][0]["email_addresses"] == ["nobody@example.nl"]
    # The member tags endpoint sees the same state: a segment's members carry its tag.
    tags = (await api.get(f"/lists/{LIST_ID}/members/{subscriber_hash('piet@example.nl')}/tags")).json()
    assert sorted(t["name"] for t in tags["tags"]) == ["events", "re-permission"]

    removed = await api.post(
        f"/lists/{LIST_ID}/segments/{created.json()['id']}", json={"members_to_remove": ["jan@example.nl"]}
    )
    assert removed.json()["total_removed"] == 1
    assert [t["name"] for t in sandbox.audience.find("jan@example.nl")["tags"]] == []


async def test_segment_edit_over_500_addresses_or_of_an_unknown_segment_is_refused(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post(f"/lists/{LIST_ID}/segments", json={"name": "vip", "static_segment": []})
    many = [f"p{i}@example.nl" for i in range(501)]
    too_many = await api.post(
        f"/lists/{LIST_ID}/segments/{created.json()['id']}", json={"members_to_add": many}
    )
    assert too_many.status_code == 400
    unknown = await api.post(f"/lists/{LIST_ID}/segments/999999", json={"members_to_add": []})
    assert unknown.status_code == 404
    assert unknown.json()["title"] == "Resource Not Found"
