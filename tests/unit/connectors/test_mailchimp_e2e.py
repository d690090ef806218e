"""Over real HTTP: the connector pulls and pushes against the served sandbox; the official SDK talks to it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import mailchimp_marketing
import pytest
from mailchimp_marketing.api_client import ApiClientError

from config import load_settings
from connectors.base import Action, Basis, Change, ContactRecord, Outcome, Status
from connectors.mailchimp.connector import MailchimpConnector
from connectors.mailchimp.sandbox import MailchimpSandbox
from connectors.mailchimp.sandbox_data import LIST_ID
from connectors.sandbox import Clock, served
from tests.unit.connectors.mailchimp_spec import SKIP_REASON, request_schema, spec_path, validate

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.slow


@pytest.fixture
def sandbox() -> MailchimpSandbox:
    return MailchimpSandbox(Clock(T0))


@pytest.fixture
def base_url(sandbox: MailchimpSandbox) -> Iterator[str]:
    with served(sandbox.app) as url:
        yield url


@pytest.fixture
def connector(
    sandbox: MailchimpSandbox, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> MailchimpConnector:
    for name, value in sandbox.settings_env(base_url).items():
        monkeypatch.setenv(name, value)
    return MailchimpConnector.from_settings(load_settings())


async def test_pull_and_push_round_trip_over_http(
    sandbox: MailchimpSandbox, connector: MailchimpConnector
) -> None:
    sandbox.add_contact("fan@example.nl", {"newsletter": Status.SUBSCRIBED, "promotions": Status.SUBSCRIBED})
    sandbox.add_contact("gone@example.nl", {"newsletter": Status.UNSUBSCRIBED})
    sandbox.add_contact("cleaned@example.nl", {"newsletter": Status.SUBSCRIBED}, status="cleaned")
    pages = [page async for page in connector.pull("contacts")]
    records = {r.email: r for p in pages for r in p.records if isinstance(r, ContactRecord)}
    assert records["fan@example.nl"].status_of("promotions") is Status.SUBSCRIBED
    assert records["gone@example.nl"].status_of("newsletter") is Status.UNSUBSCRIBED
    assert records["cleaned@example.nl"].global_state.value == "bounced"

    sandbox.clock.advance(5)
    changes = [
        Change("1", "mailchimp", "gone@example.nl", Action.SUBSCRIBE, "newsletter", basis=Basis.CONSENT),
        Change("2", "mailchimp", "fan@example.nl", Action.UNSUBSCRIBE, "promotions"),
        Change("3", "mailchimp", "fan@example.nl", Action.SUBSCRIBE, "lead_magnet", basis=Basis.CONSENT),
        Change("4", "mailchimp", "new@example.nl", Action.SUBSCRIBE, "events", basis=Basis.CONSENT),
        Change("5", "mailchimp", "cleaned@example.nl", Action.ERASE),
    ]
    results = {r.key: r for r in await connector.push(changes)}
    assert {r.outcome for r in results.values()} == {Outcome.ACCEPTED}
    assert results["1"].vendor_state == "pending"  # compliance state: Mailchimp sends its own confirmation
    assert sandbox.status("gone@example.nl", "newsletter") is Status.PENDING
    assert sandbox.status("fan@example.nl", "promotions") is Status.NOT_SUBSCRIBED
    assert sandbox.status("fan@example.nl", "lead_magnet") is Status.SUBSCRIBED
    assert sandbox.status("new@example.nl", "events") is Status.SUBSCRIBED
    assert sandbox.status("cleaned@example.nl", "newsletter") is None
    if spec_path() is not None:
        check_requests_against_spec(sandbox)
    else:
        print(SKIP_REASON)  # the round trip itself still counts

    since = pages[-1].checkpoint
    later = [r async for p in connector.pull("contacts", since=since) for r in p.records]
    assert {r.email for r in later if isinstance(r, ContactRecord)} == {
        "gone@example.nl",
        "fan@example.nl",
        "new@example.nl",
    }
    await connector.aclose()


async def test_push_of_many_tags_is_one_segment_call_within_ten_connections(
    sandbox: MailchimpSandbox, connector: MailchimpConnector
) -> None:
    sandbox.faults.rate_slow, sandbox.faults.slow_seconds = 1.0, 0.02  # every call stays in flight a while
    emails = [f"p{i:02d}@example.nl" for i in range(30)]
    for email in emails:
        sandbox.add_contact(email, {"newsletter": Status.SUBSCRIBED})
    changes = [Change(e, "mailchimp", e, Action.TAG, tag="re-permission") for e in emails]
    results = await connector.push(changes)
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    assert sandbox.limit.refused == 0
    assert [r for r in sandbox.requests if "/tags" in r[1] or "/segments" in r[1]] == [
        ("GET", f"/3.0/lists/{LIST_ID}/segments"),
        ("POST", f"/3.0/lists/{LIST_ID}/segments"),
        ("POST", f"/3.0/lists/{LIST_ID}/segments/1000"),
    ]
    assert all(sandbox.status(e, "events") is Status.NOT_SUBSCRIBED for e in emails)
    assert sandbox.audience.find(emails[0])["tags"] == [{"id": 1000, "name": "re-permission"}]
    await connector.aclose()


def check_requests_against_spec(sandbox: MailchimpSandbox) -> None:
    """Every write body the connector sent is valid for its operation in the official spec."""
    templates = {
        ("POST", f"/3.0/lists/{LIST_ID}"): "/lists/{list_id}",
        ("PATCH", "member"): "/lists/{list_id}/members/{subscriber_hash}",
        ("POST", f"/3.0/lists/{LIST_ID}/segments"): "/lists/{list_id}/segments",
        ("POST", "segment"): "/lists/{list_id}/segments/{segment_id}",
    }
    kinds = set()
    for method, path, body in sandbox.bodies:
        kind = "segment" if "/segments/" in path else "member" if "/members/" in path else path
        validate(body, request_schema(templates[(method, kind)], method.lower()))
        kinds.add(kind)
    assert kinds == {f"/3.0/lists/{LIST_ID}", "member", f"/3.0/lists/{LIST_ID}/segments", "segment"}


def _sdk(sandbox: MailchimpSandbox, base_url: str, api_key: str | None = None) -> mailchimp_marketing.Client:
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": api_key or sandbox.api_key, "server": "us21"})
    client.api_client.host = f"{base_url}/3.0"  # instead of https://us21.api.mailchimp.com/3.0
    return client


def test_official_sdk_lists_members_and_batch_subscribes(sandbox: MailchimpSandbox, base_url: str) -> None:
    sandbox.add_contact("jan@example.nl", {"newsletter": Status.SUBSCRIBED})
    sdk = _sdk(sandbox, base_url)
    assert sdk.ping.get()["health_status"] == "Everything's Chimpy!"
    listed = sdk.lists.get_list_members_info(LIST_ID, count=10, sort_field="last_changed", sort_dir="ASC")
    assert [m["email_address"] for m in listed["members"]] == ["jan@example.nl"]
    result = sdk.lists.batch_list_members(
        LIST_ID,
        {
            "members": [
                {"email_address": "piet@example.nl", "status": "subscribed"},
                {"email_address": "broken", "status": "subscribed"},
            ],
            "update_existing": True,
        },
    )
    assert (result["total_created"], result["error_count"]) == (1, 1)
    assert sandbox.status("piet@example.nl", "newsletter") is Status.SUBSCRIBED


def test_official_sdk_sees_the_401_body_for_a_bad_key(sandbox: MailchimpSandbox, base_url: str) -> None:
    sdk = _sdk(sandbox, base_url, api_key="00000000000000000000000000000000-us21")
    with pytest.raises(ApiClientError) as raised:
        sdk.lists.get_list_members_info(LIST_ID)
    assert raised.value.status_code == 401
    assert "API Key Invalid" in raised.value.text
