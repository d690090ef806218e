"""The HubSpot connector against its sandbox in process: the contract properties, for HubSpot."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from config.hubspot import HubSpotSettings
from connectors.base import Action, Basis, Change, ContactRecord, GlobalState, Outcome, Page, Status
from connectors.http import RetryPolicy
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.sandbox import Clock
from tests.unit.connectors.hubspot_shapes import problems

START = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
RUN = datetime(2024, 6, 1, 0, 0, tzinfo=UTC)  # the worker's "now": after everything the sandbox stamps


async def no_sleep(_: float) -> None:
    return None


class Recording(httpx.AsyncBaseTransport):
    """The sandbox's ASGI transport, keeping each request and calling ``after`` once per answered request."""

    def __init__(self, sandbox: HubSpotSandbox, after: Callable[[httpx.Request], None] | None = None) -> None:
        self.inner = httpx.ASGITransport(app=sandbox.app)
        self.sent: list[httpx.Request] = []
        self.after = after

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        response = await self.inner.handle_async_request(request)
        if self.after is not None:
            self.after(request)
        return response


@pytest.fixture
def sandbox() -> HubSpotSandbox:
    # Rate limits have their own tests (sandbox 429s, connector Retry-After); here they would only make
    # the connector's budget wait in real time, so both sides get room.
    built = HubSpotSandbox(Clock(START), monotonic=lambda: 0.0)
    built.ten_secondly.limit = built.search_limit.limit = 100_000
    return built


def connect(
    sandbox: HubSpotSandbox, transport: httpx.AsyncBaseTransport | None = None, **options: Any
) -> HubSpotConnector:
    env = sandbox.settings_env("http://hubspot.sandbox")
    settings = HubSpotSettings(
        access_token=env["SYNC_HUBSPOT__ACCESS_TOKEN"],
        base_url=env["SYNC_HUBSPOT__BASE_URL"],
        subscriptions=json.loads(env["SYNC_HUBSPOT__SUBSCRIPTIONS"]),
        **{"requests_per_10s": 100_000, "searches_per_second": 100_000, **options},
    )
    retry = RetryPolicy(max_attempts=12, max_total_wait=1e6, sleep=no_sleep, rng=random.Random(3))
    return HubSpotConnector(
        settings, transport=transport or httpx.ASGITransport(app=sandbox.app), retry=retry, clock=lambda: RUN
    )


def pull(connector: HubSpotConnector, since: str | None = None, pages: int | None = None) -> list[Page]:
    async def collect() -> list[Page]:
        out = []
        async for page in connector.pull("contacts", since):
            out.append(page)
            if pages is not None and len(out) == pages:
                break
        return out

    return asyncio.run(collect())


def records(pages: list[Page]) -> list[ContactRecord]:
    return [r for page in pages for r in page.records if isinstance(r, ContactRecord)]


def emails(pages: list[Page]) -> list[str]:
    return [r.email for r in records(pages)]


def seed(sandbox: HubSpotSandbox, count: int, step: float = 1.0) -> list[str]:
    added = []
    for index in range(count):
        email = f"person{index:02d}@example.com"
        sandbox.add_contact(email, {"newsletter": Status.SUBSCRIBED if index % 2 else Status.UNSUBSCRIBED})
        sandbox.clock.advance(step)
        added.append(email)
    return added


def test_full_pull_over_tiny_pages_yields_each_contact_once(sandbox: HubSpotSandbox) -> None:
    added = seed(sandbox, 7)
    pages = pull(connect(sandbox, list_page_size=2))

    assert sorted(emails(pages)) == added
    assert [p.checkpoint is not None for p in pages] == [False, False, False, True]
    assert pages[-1].final
    assert records(pages)[1].status_of("newsletter") is Status.SUBSCRIBED


def test_incremental_pull_loses_nothing_at_an_equal_timestamp_boundary(sandbox: HubSpotSandbox) -> None:
    seed(sandbox, 3, step=0)  # three contacts in one millisecond
    first = pull(connect(sandbox))
    sandbox.add_contact(
        "late@example.com", {"newsletter": Status.SUBSCRIBED}
    )  # same millisecond, after we read

    second = pull(connect(sandbox), first[-1].checkpoint)

    assert emails(second) == ["late@example.com"]


def test_incremental_pull_restarts_the_search_window_past_the_result_cap(sandbox: HubSpotSandbox) -> None:
    added = seed(sandbox, 11)
    sandbox.search_cap = 4
    since = json.dumps({"at": START.isoformat(), "keys": []})

    pages = pull(connect(sandbox, search_page_size=3), since)

    assert emails(pages) == added
    assert all(p.checkpoint for p in pages)


def test_contacts_sharing_one_stamp_beyond_a_page_are_paged_by_offset(sandbox: HubSpotSandbox) -> None:
    added = seed(sandbox, 7, step=0)
    since = json.dumps({"at": START.isoformat(), "keys": []})

    pages = pull(connect(sandbox, search_page_size=3), since)

    assert sorted(emails(pages)) == added


def test_contact_changed_mid_pull_does_not_push_another_out_of_reach(sandbox: HubSpotSandbox) -> None:
    """Offset paging over a live result would skip a contact when an earlier one moves to the end."""
    added = seed(sandbox, 6)
    since = json.dumps({"at": START.isoformat(), "keys": []})
    searches = 0

    def change_first_contact(request: httpx.Request) -> None:
        nonlocal searches
        if request.url.path.endswith("/search"):
            searches += 1
            if searches == 1:
                sandbox.clock.advance(60)
                sandbox.set_status(added[0], "promotions", Status.SUBSCRIBED)

    pages = pull(connect(sandbox, Recording(sandbox, change_first_contact), search_page_size=2), since)

    assert set(emails(pages)) == set(added)


def test_interrupted_pull_resumes_to_the_same_result(sandbox: HubSpotSandbox) -> None:
    added = seed(sandbox, 9)
    since = json.dumps({"at": START.isoformat(), "keys": []})

    head = pull(connect(sandbox, search_page_size=2), since, pages=2)
    rest = pull(connect(sandbox, search_page_size=2), head[-1].checkpoint)

    assert emails(head) + emails(rest) == added


def test_repeated_pull_and_push_create_no_duplicates(sandbox: HubSpotSandbox) -> None:
    seed(sandbox, 2)
    change = Change(
        "k1", "hubspot", "person00@example.com", Action.SUBSCRIBE, "newsletter", basis=Basis.CONSENT
    )
    connector = connect(sandbox)

    first = asyncio.run(connector.push([change]))
    again = asyncio.run(connector.push([change]))
    full = pull(connector)

    assert [r.outcome for r in first + again] == [Outcome.ACCEPTED, Outcome.ACCEPTED]
    assert sorted(emails(full)) == ["person00@example.com", "person01@example.com"]
    assert len(sandbox.state.contacts) == 2
    assert sandbox.status("person00@example.com", "newsletter") is Status.SUBSCRIBED


def test_pull_and_push_converge_with_a_fifth_of_requests_failing(sandbox: HubSpotSandbox) -> None:
    added = seed(sandbox, 12)
    sandbox.faults.set_all(0.2)
    connector = connect(sandbox, list_page_size=3, batch_size=4)
    changes = [
        Change(f"k{i}", "hubspot", email, Action.SUBSCRIBE, "promotions", basis=Basis.SOFT_OPT_IN)
        for i, email in enumerate(added)
    ]

    pulled = pull(connector)
    pending = list(changes)
    for _ in range(5):
        results = {r.key: r for r in asyncio.run(connector.push(pending))}
        pending = [c for c in pending if results[c.key].outcome is Outcome.RETRY_LATER]

    assert sorted(emails(pulled)) == added
    assert pending == []
    assert all(sandbox.status(e, "promotions") is Status.SUBSCRIBED for e in added)
    assert sum(sandbox.faults.injected.values()) > 0


def test_opt_out_of_all_reads_back_as_objection_and_blocks_resubscribe(sandbox: HubSpotSandbox) -> None:
    """R17 end to end: the account-wide unsubscribe is pulled as UNSUBSCRIBED_ALL; a later subscribe is refused."""
    sandbox.add_contact("o@example.com", {"newsletter": Status.SUBSCRIBED})
    connector = connect(sandbox)
    optout = Change("all", "hubspot", "o@example.com", Action.UNSUBSCRIBE)
    regrant = Change("again", "hubspot", "o@example.com", Action.SUBSCRIBE, "newsletter", basis=Basis.CONSENT)

    (done,) = asyncio.run(connector.push([optout]))
    sandbox.clock.advance(3600)
    sandbox.state.touch("o@example.com")  # a later, unrelated edit of the contact
    (record,) = records(pull(connector))
    (refused,) = asyncio.run(connector.push([regrant]))

    assert done.outcome is Outcome.ACCEPTED
    assert record.global_state is GlobalState.UNSUBSCRIBED_ALL
    assert record.updated_at == datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
    assert record.global_changed_at == START  # when the objection was made, not the last edit
    assert record.status_of("newsletter") is Status.UNSUBSCRIBED
    assert (refused.outcome, refused.vendor_state) == (Outcome.REJECTED, "unsubscribed_all")


def test_erasure_deletes_the_contact(sandbox: HubSpotSandbox) -> None:
    sandbox.add_contact("gone@example.com", {"newsletter": Status.SUBSCRIBED})

    (result,) = asyncio.run(connect(sandbox).push([Change("e", "hubspot", "gone@example.com", Action.ERASE)]))

    assert result.outcome is Outcome.ACCEPTED
    assert sandbox.status("gone@example.com", "newsletter") is None


@pytest.mark.parametrize("batch", [True, False])
def test_a_status_write_for_a_deleted_contact_is_gone_one_for_an_unknown_subscription_is_not(
    sandbox: HubSpotSandbox, batch: bool
) -> None:
    """Without batch scopes the 404 of a per-contact write is the address's only if a read says so."""
    sandbox.add_contact("left@example.com", {"newsletter": Status.SUBSCRIBED})
    sandbox.add_contact("kept@example.com", {"newsletter": Status.SUBSCRIBED})
    sandbox.delete_contact("left@example.com")
    sandbox.batch_enabled = batch
    connector = connect(sandbox)
    connector.subscriptions["events"] = "999"  # a subscription type this portal does not have

    results = asyncio.run(
        connector.push(
            [
                Change("left", "hubspot", "left@example.com", Action.UNSUBSCRIBE, "newsletter"),
                Change("kept", "hubspot", "kept@example.com", Action.UNSUBSCRIBE, "events"),
            ]
        )
    )

    outcomes = {r.key: r.outcome for r in results}
    assert outcomes == {"left": Outcome.GONE, "kept": Outcome.REJECTED}


@pytest.mark.parametrize("batch", [True, False])
def test_an_unsubscribe_for_a_gdpr_blocked_address_is_gone_a_subscribe_stays_refused(
    sandbox: HubSpotSandbox, batch: bool
) -> None:
    """After a GDPR delete HubSpot blocks the address (VENDOR-APIS 4.8) and refuses writes for it: nobody
    there to mail meets an opt-out (R25), but a subscribe was not delivered."""
    sandbox.add_contact("erased@example.com", {"newsletter": Status.SUBSCRIBED})
    sandbox.state.erase("erased@example.com", "email")
    sandbox.batch_enabled = batch
    connector = connect(sandbox)

    results = asyncio.run(
        connector.push(
            [
                Change("out", "hubspot", "erased@example.com", Action.UNSUBSCRIBE, "newsletter"),
                Change(
                    "in", "hubspot", "erased@example.com", Action.SUBSCRIBE, "promotions", basis=Basis.CONSENT
                ),
            ]
        )
    )

    by_key = {r.key: r for r in results}
    assert by_key["out"].outcome is Outcome.GONE
    assert by_key["in"].outcome is Outcome.REJECTED
    assert "VALIDATION_ERROR" in (by_key["in"].reason or "")
    assert "permanently deleted" in (by_key["in"].reason or "")
    assert sandbox.status("erased@example.com", "newsletter") is None  # nothing was written


def test_a_404_of_no_hubspot_object_is_never_gone(sandbox: HubSpotSandbox) -> None:
    """A wrong base URL (or a path HubSpot no longer serves) answers every write and read 404 without
    HubSpot's OBJECT_NOT_FOUND: that says nothing of the person, so the opt-out stays refused."""
    sandbox.add_contact("kept@example.com", {"newsletter": Status.SUBSCRIBED})
    sandbox.batch_enabled = False
    env = sandbox.settings_env("http://hubspot.sandbox/wrong-prefix")
    settings = HubSpotSettings(
        access_token=env["SYNC_HUBSPOT__ACCESS_TOKEN"],
        base_url=env["SYNC_HUBSPOT__BASE_URL"],
        subscriptions=json.loads(env["SYNC_HUBSPOT__SUBSCRIPTIONS"]),
        batch_statuses=False,
    )
    retry = RetryPolicy(max_attempts=1, max_total_wait=0, sleep=no_sleep, rng=random.Random(3))
    connector = HubSpotConnector(settings, transport=httpx.ASGITransport(app=sandbox.app), retry=retry)

    [result] = asyncio.run(
        connector.push([Change("kept", "hubspot", "kept@example.com", Action.UNSUBSCRIBE, "newsletter")])
    )

    assert result.outcome == Outcome.REJECTED


def test_portal_without_batch_scopes_is_served_one_contact_at_a_time(sandbox: HubSpotSandbox) -> None:
    """Below Marketing Hub Enterprise the batch status calls answer 403: pull and push go per contact."""
    added = seed(sandbox, 4)
    sandbox.add_contact("o@example.com", {"newsletter": Status.SUBSCRIBED})
    sandbox.batch_enabled = False
    connector = connect(sandbox)

    pulled = pull(connector)
    results = asyncio.run(
        connector.push(
            [
                Change("s", "hubspot", added[0], Action.SUBSCRIBE, "newsletter", basis=Basis.CONSENT),
                Change("bad", "hubspot", added[1], Action.SUBSCRIBE, "newsletter", basis=Basis.CONSENT),
                Change("all", "hubspot", "o@example.com", Action.UNSUBSCRIBE),
            ]
        )
    )

    batch_calls = [path for _, path in sandbox.requests if "/batch/" in path]
    assert batch_calls == [
        "/communication-preferences/v4/statuses/batch/read"
    ]  # tried once, then per contact
    assert {r.email: r.status_of("newsletter") for r in records(pulled)} == {
        added[0]: Status.UNSUBSCRIBED,
        added[1]: Status.SUBSCRIBED,
        added[2]: Status.UNSUBSCRIBED,
        added[3]: Status.SUBSCRIBED,
        "o@example.com": Status.SUBSCRIBED,
    }
    assert {r.key: r.outcome for r in results} == {
        "s": Outcome.ACCEPTED,
        "bad": Outcome.ACCEPTED,
        "all": Outcome.ACCEPTED,
    }
    assert sandbox.status(added[0], "newsletter") is Status.SUBSCRIBED
    assert sandbox.status("o@example.com", "promotions") is Status.UNSUBSCRIBED


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "per-contact"])
def test_connector_requests_match_the_spec(sandbox: HubSpotSandbox, batch: bool) -> None:
    seed(sandbox, 3)
    sandbox.batch_enabled = batch
    transport = Recording(sandbox)
    connector = connect(sandbox, transport)
    since = json.dumps({"at": START.isoformat(), "keys": []})
    pull(connector, since)
    asyncio.run(
        connector.push(
            [
                Change(
                    "s",
                    "hubspot",
                    "person00@example.com",
                    Action.SUBSCRIBE,
                    "newsletter",
                    basis=Basis.CONSENT,
                ),
                Change("u", "hubspot", "person01@example.com", Action.UNSUBSCRIBE),
                Change("e", "hubspot", "person02@example.com", Action.ERASE),
            ]
        )
    )
    schemas = {
        "/crm/v3/objects/contacts/search": ("contacts_v3", "PublicObjectSearchRequest"),
        "/crm/v3/objects/contacts/gdpr-delete": ("contacts_v3", "PublicGdprDeleteInput"),
        "/communication-preferences/v4/statuses/batch/read": (
            "communication_preferences_v4",
            "BatchInputString",
        ),
        "/communication-preferences/v4/statuses/batch/write": (
            "communication_preferences_v4",
            "BatchInputPublicStatusRequest",
        ),
        "/communication-preferences/v4/statuses/batch/unsubscribe-all": (
            "communication_preferences_v4",
            "BatchInputString",
        ),
        "/communication-preferences/v4/statuses/person00@example.com": (
            "communication_preferences_v4",
            "PartialPublicStatusRequest",
        ),
    }
    bodiless = {
        "/communication-preferences/v4/statuses/person00@example.com",  # the GET; its POST has a body
        "/communication-preferences/v4/statuses/person01@example.com",
        "/communication-preferences/v4/statuses/person02@example.com",
        "/communication-preferences/v4/statuses/person01@example.com/unsubscribe-all",
    }

    checked = set()
    for request in transport.sent:
        if not request.content:
            assert request.url.path in bodiless
            continue
        api, schema = schemas[request.url.path]
        # The spec types ``sorts`` as strings; HubSpot's documentation sends {"propertyName", "direction"}
        # objects, which is what the connector does (the sandbox takes both).
        found = problems(api, schema, json.loads(request.content), relax=("PublicObjectSearchRequest.sorts",))
        assert found == [], f"{request.url.path}: {found}"
        checked.add(request.url.path)
    single = "/communication-preferences/v4/statuses/person00@example.com"
    # Without batch scopes the connector tries one batch read, is refused, and goes per contact.
    expected = set(schemas) - {single} if batch else set(list(schemas)[:3]) | {single}
    assert checked == expected
