"""The Mailchimp connector against mocked HTTP (respx): retries, errors, paging edges, batch results."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from config.mailchimp import MailchimpSettings
from connectors.base import Action, Basis, Change, ContactRecord, Outcome, Page, Status
from connectors.errors import AuthError, PaginationError, TransientError
from connectors.http import RetryPolicy
from connectors.mailchimp.connector import MailchimpConnector
from connectors.mailchimp.mapping import subscriber_hash
from connectors.mailchimp.sandbox import MailchimpSandbox
from connectors.sandbox import Clock
from tests.unit.connectors.mailchimp_spec import response_schema, validate
from tests.unit.connectors.test_http import Sleeps

BASE = "https://us21.api.mailchimp.com/3.0"
LIST = "b1f2e3d4c5"
MEMBERS_URL = f"{BASE}/lists/{LIST}/members"
BATCH_URL = f"{BASE}/lists/{LIST}"
SEGMENTS_URL = f"{BASE}/lists/{LIST}/segments"
PURPOSES = {"newsletter": "status", "promotions": "interest:9143cf3bd1", "events": "tag:events"}


def connector(sleeps: Sleeps, **policy: Any) -> MailchimpConnector:
    settings = MailchimpSettings(
        api_key=SecretStr("0123456789abcdef0123456789abcdef-us21"), list_id=LIST, purposes=PURPOSES
    )
    return MailchimpConnector.from_settings(settings, retry=RetryPolicy(sleep=sleeps, **policy))


def member(
    email: str, status: str = "subscribed", changed: str = "2026-03-01T09:00:00+00:00"
) -> dict[str, Any]:
    """A member with the fields and types of the spec's ListMembers2 (checked in a test below)."""
    return {
        "id": subscriber_hash(email),
        "email_address": email,
        "unique_email_id": "aa11bb22cc",
        "status": status,
        "merge_fields": {"FNAME": ""},
        "interests": {"9143cf3bd1": False},
        "ip_signup": "",
        "timestamp_signup": "",
        "ip_opt": "192.0.2.7",
        "timestamp_opt": "2026-02-01T10:00:00+00:00",
        "last_changed": changed,
        "source": "API - Generic",
        "marketing_permissions": [],
        "tags_count": 0,
        "tags": [],
        "list_id": LIST,
    }


def page(*members: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"members": list(members), "list_id": LIST, "total_items": len(members)})


def problem(status: int, title: str, detail: str = "") -> httpx.Response:
    body = {
        "type": "https://mailchimp.com/developer/marketing/docs/errors/",
        "title": title,
        "status": status,
    }
    return httpx.Response(status, json={**body, "detail": detail, "instance": "x"})


async def pull_all(conn: MailchimpConnector, since: str | None = None) -> list[Page]:
    return [p async for p in conn.pull("contacts", since=since)]


def test_fixture_member_matches_the_spec() -> None:
    validate({"members": [member("a@example.nl")]}, response_schema("/lists/{list_id}/members", "get"))


async def test_429_then_200_honours_retry_after(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(MEMBERS_URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "4"}, json={"title": "Too Many Requests"}),
            page(member("a@example.nl")),
        ]
    )
    sleeps = Sleeps()
    pages = await pull_all(connector(sleeps))
    assert sleeps.waits == [4.0]
    assert route.call_count == 2
    assert [r.email for r in pages[0].records] == ["a@example.nl"]
    assert pages[-1].final


async def test_401_is_not_retried_and_names_mailchimps_title(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(MEMBERS_URL).mock(return_value=problem(401, "API Key Invalid", "wrong datacenter"))
    sleeps = Sleeps()
    with pytest.raises(AuthError, match="API Key Invalid: wrong datacenter"):
        await pull_all(connector(sleeps))
    assert route.call_count == 1
    assert sleeps.waits == []


async def test_5xx_is_retried_until_attempts_are_exhausted(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(MEMBERS_URL).mock(return_value=problem(503, "Service Unavailable"))
    with pytest.raises(TransientError):
        await pull_all(connector(Sleeps(), max_attempts=3))
    assert route.call_count == 3


async def test_pull_asks_sorted_by_last_changed_and_resumes_one_second_back(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.get(MEMBERS_URL).mock(return_value=page())
    since = json.dumps({"at": "2026-03-01T09:00:00+00:00", "keys": []})
    await pull_all(connector(Sleeps()), since=since)
    params = route.calls.last.request.url.params
    assert params["sort_field"] == "last_changed"
    assert params["sort_dir"] == "ASC"
    assert params["count"] == "1000"
    assert params["since_last_changed"] == "2026-03-01T08:59:59+00:00"


async def test_malformed_member_is_reported_and_the_page_goes_on(respx_mock: respx.MockRouter) -> None:
    bad_email = {**member("x@example.nl"), "email_address": "no-at-sign", "id": "badid"}
    bad_time = {**member("y@example.nl"), "last_changed": "yesterday"}
    respx_mock.get(MEMBERS_URL).mock(return_value=page(member("a@example.nl"), bad_email, bad_time))
    pages = await pull_all(connector(Sleeps()))
    assert [r.email for r in pages[0].records if isinstance(r, ContactRecord)] == ["a@example.nl"]
    errors = {(e.record_id, e.field) for e in pages[0].errors}
    assert errors == {("badid", "email_address"), (subscriber_hash("y@example.nl"), "last_changed")}
    assert all(e.system == "mailchimp" for e in pages[0].errors)


async def test_vendor_repeating_a_page_stops_the_pull(respx_mock: respx.MockRouter) -> None:
    # Five members in one second fill a page of five; Mailchimp then ignores the offset.
    same = [member(f"p{i}@example.nl") for i in range(5)]
    respx_mock.get(MEMBERS_URL).mock(return_value=page(*same))
    conn = connector(Sleeps())
    conn.page_size = 5
    with pytest.raises(PaginationError, match="repeated"):
        await pull_all(conn)


def _subscribe(email: str, purpose: str = "newsletter") -> Change:
    return Change(f"s-{email}-{purpose}", "mailchimp", email, Action.SUBSCRIBE, purpose, basis=Basis.CONSENT)


def _batch_result(errors: list[dict[str, Any]]) -> httpx.Response:
    body = {
        "new_members": [],
        "updated_members": [],
        "errors": errors,
        "total_created": 0,
        "total_updated": 0,
        "error_count": len(errors),
    }
    return httpx.Response(200, json=body)


def _segment_result(errors: list[dict[str, Any]]) -> httpx.Response:
    body = {
        "members_added": [],
        "members_removed": [],
        "errors": errors,
        "total_added": 0,
        "total_removed": 0,
        "error_count": sum(len(e["email_addresses"]) for e in errors),
    }
    validate(body, response_schema("/lists/{list_id}/segments/{segment_id}", "post"))
    return httpx.Response(200, json=body)


async def test_partial_batch_failure_gives_per_item_results(respx_mock: respx.MockRouter) -> None:
    error = {
        "email_address": "bad@example.nl",
        "error": "looks fake",
        "error_code": "ERROR_GENERIC",
        "field": "email_address",
    }
    respx_mock.post(BATCH_URL).mock(return_value=_batch_result([error]))
    results = await connector(Sleeps()).push([_subscribe("ok@example.nl"), _subscribe("bad@example.nl")])
    outcome = {r.key: (r.outcome, r.reason) for r in results}
    assert outcome["s-ok@example.nl-newsletter"] == (Outcome.ACCEPTED, None)
    assert outcome["s-bad@example.nl-newsletter"] == (Outcome.REJECTED, "looks fake (field email_address)")


async def test_compliance_state_is_pushed_again_as_pending(respx_mock: respx.MockRouter) -> None:
    refusal = {
        "email_address": "gone@example.nl",
        "error": "gone@example.nl is in a compliance state due to unsubscribe, bounce, or compliance review and cannot be subscribed.",
        "error_code": "ERROR_GENERIC",
    }
    route = respx_mock.post(BATCH_URL).mock(side_effect=[_batch_result([refusal]), _batch_result([])])
    results = await connector(Sleeps()).push([_subscribe("gone@example.nl"), _subscribe("new@example.nl")])
    by_key = {r.key: r for r in results}
    gone = by_key["s-gone@example.nl-newsletter"]
    assert (gone.outcome, gone.vendor_state) == (Outcome.ACCEPTED, "pending")
    assert by_key["s-new@example.nl-newsletter"].vendor_state is None
    second = json.loads(route.calls[1].request.content)
    assert second["members"] == [{"email_address": "gone@example.nl", "status": "pending"}]
    assert route.call_count == 2, "a compliance state is a fact, not a retry loop"


async def test_whole_batch_5xx_leaves_items_for_a_later_run(respx_mock: respx.MockRouter) -> None:
    respx_mock.post(BATCH_URL).mock(return_value=problem(500, "Internal Server Error"))
    results = await connector(Sleeps(), max_attempts=2).push([_subscribe("a@example.nl")])
    assert [r.outcome for r in results] == [Outcome.RETRY_LATER]


async def test_interest_goes_in_the_member_body_and_tag_to_its_static_segment(
    respx_mock: respx.MockRouter,
) -> None:
    batch = respx_mock.post(BATCH_URL).mock(return_value=_batch_result([]))
    listing = respx_mock.get(SEGMENTS_URL).mock(
        return_value=httpx.Response(200, json={"segments": [{"id": 1001, "name": "events"}]})
    )
    segment = respx_mock.post(f"{SEGMENTS_URL}/1001").mock(return_value=_segment_result([]))
    changes = [
        _subscribe("a@example.nl", "promotions"),
        Change("u-events", "mailchimp", "a@example.nl", Action.UNSUBSCRIBE, "events"),
    ]
    results = await connector(Sleeps()).push(changes)
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    body = json.loads(batch.calls.last.request.content)
    assert body == {
        "members": [
            {"email_address": "a@example.nl", "status": "subscribed", "interests": {"9143cf3bd1": True}}
        ],
        "update_existing": True,
    }
    assert listing.calls.last.request.url.params["type"] == "static"
    assert json.loads(segment.calls.last.request.content) == {"members_to_remove": ["a@example.nl"]}


async def test_tags_of_many_members_go_in_one_segment_call_per_500_and_a_missing_segment_is_created(
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.post(BATCH_URL).mock(return_value=_batch_result([]))
    listing = respx_mock.get(SEGMENTS_URL).mock(return_value=httpx.Response(200, json={"segments": []}))
    created = respx_mock.post(SEGMENTS_URL).mock(return_value=httpx.Response(200, json={"id": 77}))
    segment = respx_mock.post(f"{SEGMENTS_URL}/77").mock(return_value=_segment_result([]))
    emails = [f"p{i:04d}@example.nl" for i in range(1001)]
    conn = connector(Sleeps())
    changes = [Change(f"t{i}", "mailchimp", e, Action.TAG, tag="re-permission") for i, e in enumerate(emails)]
    results = await conn.push(changes)
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    assert json.loads(created.calls.last.request.content) == {"name": "re-permission", "static_segment": []}
    sizes = sorted(len(json.loads(c.request.content)["members_to_add"]) for c in segment.calls)
    assert sizes == [1, 500, 500]
    await conn.push([Change("again", "mailchimp", emails[0], Action.UNTAG, tag="re-permission")])
    assert (listing.call_count, created.call_count) == (1, 1), "the segment is looked up once"


async def test_a_tag_change_for_an_address_not_in_the_audience_is_gone_another_refusal_is_not(
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.get(SEGMENTS_URL).mock(
        return_value=httpx.Response(200, json={"segments": [{"id": 5, "name": "re-permission"}]})
    )
    refused = [
        {"email_addresses": ["in@example.nl", "out@example.nl"], "error": "not a member of this list"},
        {"email_addresses": ["odd@example.nl"], "error": "Invalid Resource"},
    ]
    respx_mock.post(f"{SEGMENTS_URL}/5").mock(return_value=_segment_result(refused))
    changes = [
        Change("add", "mailchimp", "in@example.nl", Action.TAG, tag="re-permission"),
        Change("remove", "mailchimp", "out@example.nl", Action.UNTAG, tag="re-permission"),
        Change("odd", "mailchimp", "odd@example.nl", Action.TAG, tag="re-permission"),
    ]
    results = {r.key: r for r in await connector(Sleeps()).push(changes)}
    assert results["add"].outcome is Outcome.GONE
    assert "not a member" in (results["add"].reason or "")
    assert results["remove"].outcome is Outcome.GONE
    assert results["odd"].outcome is Outcome.REJECTED


async def test_tags_of_a_member_whose_upsert_failed_are_not_sent_and_share_its_outcome(
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.post(BATCH_URL).mock(return_value=problem(500, "Internal Server Error"))
    segments = respx_mock.get(SEGMENTS_URL).mock(return_value=httpx.Response(200, json={"segments": []}))
    changes = [
        _subscribe("a@example.nl"),
        Change("tag", "mailchimp", "a@example.nl", Action.TAG, tag="re-permission"),
    ]
    results = await connector(Sleeps(), max_attempts=2).push(changes)
    assert [r.outcome for r in results] == [Outcome.RETRY_LATER, Outcome.RETRY_LATER]
    assert not segments.called


async def test_unmapped_purpose_is_rejected_without_a_call(respx_mock: respx.MockRouter) -> None:
    results = await connector(Sleeps()).push([_subscribe("a@example.nl", "lead_magnet")])
    assert results[0].outcome is Outcome.REJECTED
    assert "not mapped" in (results[0].reason or "")
    assert not respx_mock.calls


async def test_erase_uses_delete_permanent_and_a_missing_member_is_gone(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.post(f"{MEMBERS_URL}/{subscriber_hash('a@example.nl')}/actions/delete-permanent").mock(
        return_value=problem(404, "Resource Not Found")
    )
    respx_mock.get(BATCH_URL).mock(return_value=httpx.Response(200, json={"id": LIST}))
    results = await connector(Sleeps()).push([Change("e-1", "mailchimp", "A@Example.nl", Action.ERASE)])
    assert route.called
    assert results[0].outcome is Outcome.GONE


async def test_a_members_404_is_not_gone_when_the_audience_itself_is_missing(
    respx_mock: respx.MockRouter,
) -> None:
    """A wrong list id answers 404 on every member path: nobody may be settled as gone for it."""
    respx_mock.post(f"{MEMBERS_URL}/{subscriber_hash('a@example.nl')}/actions/delete-permanent").mock(
        return_value=problem(404, "Resource Not Found")
    )
    audience = respx_mock.get(BATCH_URL).mock(return_value=problem(404, "Resource Not Found"))
    results = await connector(Sleeps()).push([Change("e-1", "mailchimp", "a@example.nl", Action.ERASE)])
    assert audience.called
    assert results[0].outcome is Outcome.REJECTED


async def test_member_changing_during_a_paged_pull_skips_no_one() -> None:
    """Offset paging would shift every later member down one place; keyset paging by last_changed does not."""
    box = MailchimpSandbox(Clock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC)))
    emails = [f"p{i:02d}@example.nl" for i in range(12)]
    for email in emails:
        box.add_contact(email, {"newsletter": Status.SUBSCRIBED})
        box.clock.advance(1)
    settings = MailchimpSettings(api_key=SecretStr(box.api_key), list_id=LIST, base_url="http://sb/3.0")
    conn = MailchimpConnector.from_settings(settings, transport=httpx.ASGITransport(app=box.app))
    conn.page_size = 4
    seen: list[str] = []
    async for pulled in conn.pull("contacts"):
        seen.extend(r.email for r in pulled.records if isinstance(r, ContactRecord))
        if len(seen) == 4:
            box.set_status(emails[0], "newsletter", Status.UNSUBSCRIBED)  # moves to the end of the order
    assert set(seen) == set(emails)
    assert seen.count(emails[0]) == 2, "the changed member is read again with its new state"
    await conn.aclose()


async def test_subscribe_and_unsubscribe_of_one_address_in_one_push_ends_unsubscribed_r30(
    respx_mock: respx.MockRouter,
) -> None:
    batch = respx_mock.post(BATCH_URL).mock(return_value=_batch_result([]))
    changes = [
        Change("u", "mailchimp", "a@example.nl", Action.UNSUBSCRIBE, "newsletter"),
        _subscribe("a@example.nl", "promotions"),
    ]
    results = {r.key: r for r in await connector(Sleeps()).push(changes)}
    members = json.loads(batch.calls.last.request.content)["members"]
    assert members == [{"email_address": "a@example.nl", "status": "unsubscribed"}]
    assert results["u"].outcome is Outcome.ACCEPTED
    assert results["s-a@example.nl-promotions"].outcome is Outcome.REJECTED
    assert "R30" in (results["s-a@example.nl-promotions"].reason or "")


async def test_more_than_500_members_go_out_in_batches_of_500(respx_mock: respx.MockRouter) -> None:
    batch = respx_mock.post(BATCH_URL).mock(return_value=_batch_result([]))
    changes = [_subscribe(f"p{i:04d}@example.nl") for i in range(1201)]
    results = await connector(Sleeps()).push(changes)
    assert len(results) == 1201
    sizes = sorted(len(json.loads(call.request.content)["members"]) for call in batch.calls)
    assert sizes == [201, 500, 500]
