"""The HubSpot connector against mocked HTTP (respx): retries, errors, partial batches, mapping edges."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import respx

from config.hubspot import HubSpotSettings
from connectors.base import Action, Basis, Change, GlobalState, Outcome, Page, PushResult, Status
from connectors.errors import AuthError, ConnectorError, PaginationError, RejectedError, TransientError
from connectors.http import RetryPolicy
from connectors.hubspot.client import HubSpotClient
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


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=True) as router:
        yield router


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def connector(sleeps: Sleeps) -> Iterator[HubSpotConnector]:
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


def test_rate_limited_request_waits_retry_after_then_succeeds(
    mock: respx.MockRouter, connector: HubSpotConnector, sleeps: Sleeps
) -> None:
    on(mock, LIST).mock(side_effect=[rate_limited("7"), httpx.Response(200, json={"results": []})])

    pages = pull(connector)

    assert sleeps.waits == [7.0]
    assert pages[-1].final
    assert pages[-1].records == ()


def test_bad_token_is_not_retried_and_names_hubspots_category(
    mock: respx.MockRouter, connector: HubSpotConnector, sleeps: Sleeps
) -> None:
    calls = on(mock, LIST).mock(
        return_value=hubspot_error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.")
    )

    with pytest.raises(AuthError, match="INVALID_AUTHENTICATION - Authentication credentials not found"):
        pull(connector)
    assert calls.call_count == 1
    assert sleeps.waits == []


def test_server_errors_are_retried_until_attempts_run_out(
    mock: respx.MockRouter, connector: HubSpotConnector, sleeps: Sleeps
) -> None:
    calls = on(mock, LIST).mock(return_value=hubspot_error(502, "INTERNAL_ERROR", "Bad gateway"))

    with pytest.raises(TransientError, match="INTERNAL_ERROR"):
        pull(connector)
    assert calls.call_count == 3
    assert len(sleeps.waits) == 2


def test_repeated_page_token_stops_the_full_pull(mock: respx.MockRouter, connector: HubSpotConnector) -> None:
    page = {"results": [contact("1", "a@example.com")], "paging": {"next": {"after": "2"}}}
    on(mock, LIST).mock(return_value=httpx.Response(200, json=page))
    on(mock, READ).mock(return_value=batch([{"subscriberIdString": "a@example.com", "statuses": []}]))

    with pytest.raises(PaginationError, match="repeated page token '2'"):
        pull(connector)


def test_malformed_contacts_are_reported_with_id_and_field_and_the_page_goes_on(
    mock: respx.MockRouter,
    connector: HubSpotConnector,
) -> None:
    results = [
        contact("1", None),
        contact("2", "not-an-address"),
        contact("3", "c@example.com", modified="yesterday"),
        contact("4", "D@Example.com"),
    ]
    on(mock, LIST).mock(return_value=httpx.Response(200, json={"results": results}))
    read = on(mock, READ).mock(
        return_value=batch(
            [
                {"subscriberIdString": "c@example.com", "statuses": []},
                {
                    "subscriberIdString": "d@example.com",
                    "statuses": [status("d@example.com", 101, "SUBSCRIBED")],
                },
            ]
        )
    )

    (page,) = pull(connector)

    assert [(e.record_id, e.field) for e in page.errors] == [
        ("1", "properties.email"),
        ("2", "properties.email"),
        ("3", "properties.lastmodifieddate"),
    ]
    assert [(r.external_id, r.email, r.status_of("newsletter")) for r in page.records] == [
        ("4", "d@example.com", Status.SUBSCRIBED)
    ]
    assert json.loads(read.calls.last.request.content) == {"inputs": ["c@example.com", "d@example.com"]}


def test_contact_hubspot_cannot_read_statuses_for_is_reported_not_guessed(
    mock: respx.MockRouter,
    connector: HubSpotConnector,
) -> None:
    on(mock, LIST).mock(
        return_value=httpx.Response(200, json={"results": [contact("1", "gone@example.com")]})
    )
    on(mock, READ).mock(return_value=batch([], [item_error("gone@example.com", None, "No subscriber found")]))

    (page,) = pull(connector)

    assert page.records == ()
    assert [(e.record_id, e.field) for e in page.errors] == [("1", "subscriptionStatuses")]
    assert "No subscriber found" in page.errors[0].message


def test_opted_out_of_all_email_is_an_objection_r17(
    mock: respx.MockRouter, connector: HubSpotConnector
) -> None:
    """R17: hs_email_optout=true is an account-wide objection, not a per-purpose flag."""
    on(mock, LIST).mock(
        return_value=httpx.Response(200, json={"results": [contact("1", "o@example.com", optout="true")]})
    )
    on(mock, READ).mock(
        return_value=batch(
            [
                {
                    "subscriberIdString": "o@example.com",
                    "statuses": [
                        status(
                            "o@example.com",
                            101,
                            "UNSUBSCRIBED",
                            setStatusSuccessReason="UNSUBSCRIBE_FROM_ALL_OCCURRED",
                        )
                    ],
                }
            ]
        )
    )
    wide = {
        "subscriberIdString": "o@example.com",
        "wideStatusType": "PORTAL_WIDE",
        "status": "UNSUBSCRIBED",
        "channel": "EMAIL",
        "timestamp": "2024-03-02T07:15:00.000Z",
    }
    wide_read = on(mock, WIDE).mock(
        return_value=batch([{"subscriberIdString": "o@example.com", "wideStatuses": [wide]}])
    )

    (record,) = pull(connector)[0].records

    assert record.global_state is GlobalState.UNSUBSCRIBED_ALL
    # The opt-out's own time, not the later lastmodifieddate: a later re-grant must not look older (R17, R23).
    assert record.global_changed_at == datetime(2024, 3, 2, 7, 15, tzinfo=UTC)
    assert json.loads(wide_read.calls.last.request.content) == {"inputs": ["o@example.com"]}
    assert record.status_of("newsletter") is Status.UNSUBSCRIBED
    assert record.status_of("promotions") is Status.NOT_SUBSCRIBED


def test_subscribed_status_carries_its_legal_basis_as_evidence(
    mock: respx.MockRouter, connector: HubSpotConnector
) -> None:
    on(mock, LIST).mock(return_value=httpx.Response(200, json={"results": [contact("1", "e@example.com")]}))
    granted = status(
        "e@example.com",
        102,
        "SUBSCRIBED",
        legalBasis="CONSENT_WITH_NOTICE",
        legalBasisExplanation="Footer form",
    )
    on(mock, READ).mock(return_value=batch([{"subscriberIdString": "e@example.com", "statuses": [granted]}]))

    (record,) = pull(connector)[0].records

    assert record.evidence is not None
    assert record.evidence.consent_at == datetime(2024, 4, 20, 8, 30, tzinfo=UTC)
    assert record.evidence.detail == "legalBasis=CONSENT_WITH_NOTICE; Footer form"


def test_incremental_pull_searches_from_the_watermark_oldest_first(
    mock: respx.MockRouter, connector: HubSpotConnector
) -> None:
    since = '{"at": "2024-05-01T10:00:00+00:00", "keys": ["1"]}'
    search = on(mock, SEARCH).mock(
        return_value=httpx.Response(
            200, json={"total": 2, "results": [contact("1", "a@example.com"), contact("2", "b@example.com")]}
        )
    )
    on(mock, READ).mock(
        return_value=batch(
            [
                {"subscriberIdString": "a@example.com", "statuses": []},
                {"subscriberIdString": "b@example.com", "statuses": []},
            ]
        )
    )

    (page,) = pull(connector, since)

    sent = json.loads(search.calls.last.request.content)
    assert sent["filterGroups"] == [
        {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "1714557600000"}]}
    ]
    assert sent["sorts"] == [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    assert sent["limit"] == 200
    assert [r.external_id for r in page.records] == ["2"]  # "1" at the boundary was taken last time
    assert page.final
    assert json.loads(page.checkpoint or "") == {"at": "2024-05-01T10:00:00+00:00", "keys": ["1", "2"]}


def test_partial_batch_failure_gives_each_change_its_own_result(
    mock: respx.MockRouter, connector: HubSpotConnector
) -> None:
    on(mock, WRITE).mock(
        return_value=batch(
            [status("ok@example.com", 101, "SUBSCRIBED", setStatusSuccessReason="REQUESTED_CHANGE_OCCURRED")],
            [item_error("bad@example.com", 101, "bad@example.com is not a valid subscriber")],
        )
    )
    changes = [
        Change("k-ok", "hubspot", "ok@example.com", Action.SUBSCRIBE, "newsletter", basis=Basis.CONSENT),
        Change("k-bad", "hubspot", "bad@example.com", Action.SUBSCRIBE, "newsletter", basis=Basis.CONSENT),
    ]

    results = push(connector, changes)

    assert results["k-ok"].outcome is Outcome.ACCEPTED
    assert results["k-bad"].outcome is Outcome.REJECTED
    assert "not a valid subscriber" in (results["k-bad"].reason or "")


def test_legal_basis_follows_the_decision_basis(mock: respx.MockRouter, connector: HubSpotConnector) -> None:
    write = on(mock, WRITE).mock(
        return_value=batch(
            [
                status("a@example.com", 101, "SUBSCRIBED"),
                status("b@example.com", 102, "SUBSCRIBED"),
                status("c@example.com", 101, "UNSUBSCRIBED"),
            ]
        )
    )
    changes = [
        Change("a", "hubspot", "a@example.com", Action.SUBSCRIBE, "newsletter", basis=Basis.CONSENT),
        Change("b", "hubspot", "b@example.com", Action.SUBSCRIBE, "promotions", basis=Basis.SOFT_OPT_IN),
        Change("c", "hubspot", "c@example.com", Action.UNSUBSCRIBE, "newsletter"),
    ]

    results = push(connector, changes)

    inputs = json.loads(write.calls.last.request.content)["inputs"]
    assert [(i["subscriptionId"], i["statusState"], i.get("legalBasis")) for i in inputs] == [
        (101, "SUBSCRIBED", "CONSENT_WITH_NOTICE"),
        (102, "SUBSCRIBED", "LEGITIMATE_INTEREST_CLIENT"),
        (101, "UNSUBSCRIBED", None),
    ]
    assert all(i["channel"] == "EMAIL" for i in inputs)
    assert {r.outcome for r in results.values()} == {Outcome.ACCEPTED}


def test_subscribe_without_basis_or_mapping_is_refused_before_any_request(
    connector: HubSpotConnector,
) -> None:
    with respx.mock(assert_all_mocked=True) as nothing:
        results = push(
            connector,
            [
                Change("none", "hubspot", "a@example.com", Action.SUBSCRIBE, "newsletter"),
                Change(
                    "unmapped", "hubspot", "a@example.com", Action.SUBSCRIBE, "events", basis=Basis.CONSENT
                ),
                Change("tag", "hubspot", "a@example.com", Action.TAG, tag="vip"),
            ],
        )
        assert nothing.calls.call_count == 0
    assert {k: r.outcome for k, r in results.items()} == {
        "none": Outcome.REJECTED,
        "unmapped": Outcome.REJECTED,
        "tag": Outcome.REJECTED,
    }
    assert "legal basis" in (results["none"].reason or "")
    assert "SYNC_HUBSPOT__SUBSCRIPTIONS" in (results["unmapped"].reason or "")


def test_subscribe_of_contact_opted_out_of_all_reports_the_vendor_state_r17(
    mock: respx.MockRouter,
    connector: HubSpotConnector,
) -> None:
    """HubSpot keeps a contact who opted out of all email unsubscribed: a fact (R17), not retried."""
    on(mock, WRITE).mock(
        return_value=batch(
            [
                status(
                    "o@example.com",
                    101,
                    "UNSUBSCRIBED",
                    setStatusSuccessReason="UNSUBSCRIBE_FROM_ALL_OCCURRED",
                )
            ]
        )
    )

    results = push(
        connector,
        [Change("k", "hubspot", "o@example.com", Action.SUBSCRIBE, "newsletter", basis=Basis.CONSENT)],
    )

    result = results["k"]
    assert result.outcome is Outcome.REJECTED
    assert result.vendor_state == "unsubscribed_all"
    assert "R17" in (result.reason or "")


def test_batch_that_stays_rate_limited_is_retried_later_per_item(
    mock: respx.MockRouter, connector: HubSpotConnector
) -> None:
    calls = on(mock, WRITE).mock(return_value=rate_limited())

    results = push(connector, [Change("k", "hubspot", "a@example.com", Action.UNSUBSCRIBE, "newsletter")])

    assert calls.call_count == 3
    assert results["k"].outcome is Outcome.RETRY_LATER
    assert "RATE_LIMIT - You have reached your ten_secondly_rolling limit." in (results["k"].reason or "")


def test_same_subscription_twice_goes_in_separate_batches_in_order(
    mock: respx.MockRouter, connector: HubSpotConnector
) -> None:
    write = on(mock, WRITE).mock(
        side_effect=[
            batch([status("a@example.com", 101, "SUBSCRIBED")]),
            batch([status("a@example.com", 101, "UNSUBSCRIBED")]),
        ]
    )
    changes = [
        Change("first", "hubspot", "a@example.com", Action.SUBSCRIBE, "newsletter", basis=Basis.CONSENT),
        Change("then", "hubspot", "a@example.com", Action.UNSUBSCRIBE, "newsletter"),
    ]

    results = push(connector, changes)

    assert [json.loads(c.request.content)["inputs"][0]["statusState"] for c in write.calls] == [
        "SUBSCRIBED",
        "UNSUBSCRIBED",
    ]
    assert {r.outcome for r in results.values()} == {Outcome.ACCEPTED}


def test_erasure_uses_gdpr_delete_by_email(mock: respx.MockRouter, connector: HubSpotConnector) -> None:
    calls = on(mock, GDPR).mock(return_value=httpx.Response(204))

    results = push(connector, [Change("k", "hubspot", "a@example.com", Action.ERASE)])

    assert json.loads(calls.calls.last.request.content) == {
        "objectId": "a@example.com",
        "idProperty": "email",
    }
    assert results["k"].outcome is Outcome.ACCEPTED


def test_request_budgets_keep_to_ten_secondly_and_search_limits(mock: respx.MockRouter) -> None:
    """Two budgets: 2 requests per 10 s for the API, 1 search per second, on a hand-moved clock."""
    now = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    client = HubSpotClient(
        BASE,
        "pat-test",
        requests_per_10s=2,
        searches_per_second=1,
        budget_clock=lambda: now[0],
        budget_sleep=sleep,
    )
    on(mock, READ).mock(return_value=batch([]))
    on(mock, SEARCH).mock(return_value=httpx.Response(200, json={"total": 0, "results": []}))

    async def run() -> None:
        for _ in range(3):
            await client.read_statuses(["a@example.com"])
        for _ in range(2):
            await client.search_contacts(None, None, 10)
        await client.aclose()

    asyncio.run(run())

    assert waits == [10.0, 1.0]


def missing_scopes() -> httpx.Response:
    return hubspot_error(
        403, "MISSING_SCOPES", "This app hasn't been granted all required scopes to make this call."
    )


def test_batch_read_refused_with_403_falls_back_to_one_get_per_contact(
    mock: respx.MockRouter, connector: HubSpotConnector
) -> None:
    on(mock, LIST).mock(
        return_value=httpx.Response(
            200, json={"results": [contact("1", "a@example.com"), contact("2", "b@example.com")]}
        )
    )
    batch_read = on(mock, READ).mock(return_value=missing_scopes())
    one = mock.get(
        url__regex=r"https://hubspot\.test/communication-preferences/v4/statuses/[^/]+@example\.com"
    ).mock(
        side_effect=[
            httpx.Response(
                200, json={"status": "COMPLETE", "results": [status("a@example.com", 101, "SUBSCRIBED")]}
            ),
            hubspot_error(404, "OBJECT_NOT_FOUND", "No subscriber found"),
        ]
    )

    (page,) = pull(connector)

    assert batch_read.call_count == 1
    assert [c.request.url.params["channel"] for c in one.calls] == ["EMAIL", "EMAIL"]
    assert [(r.email, r.status_of("newsletter")) for r in page.records] == [
        ("a@example.com", Status.SUBSCRIBED)
    ]
    assert [(e.record_id, e.field) for e in page.errors] == [("2", "subscriptionStatuses")]


def test_403_on_batches_is_an_auth_error_when_batches_are_required(mock: respx.MockRouter) -> None:
    settings = HubSpotSettings(
        access_token="pat-test", base_url=BASE, subscriptions={"newsletter": "101"}, batch_statuses=True
    )
    connector = HubSpotConnector(settings, retry=RetryPolicy(max_attempts=1))
    on(mock, LIST).mock(return_value=httpx.Response(200, json={"results": [contact("1", "a@example.com")]}))
    on(mock, READ).mock(return_value=missing_scopes())

    with pytest.raises(AuthError, match="MISSING_SCOPES"):
        pull(connector)
    asyncio.run(connector.aclose())


def test_error_without_hubspot_body_is_described_by_status_and_text(
    mock: respx.MockRouter, connector: HubSpotConnector
) -> None:
    on(mock, LIST).mock(return_value=httpx.Response(400, text="<html>Bad Request</html>"))

    with pytest.raises(RejectedError, match=r"HTTP 400: <html>Bad Request</html>"):
        pull(connector)


def test_success_without_a_json_object_is_an_error_not_an_empty_page(
    mock: respx.MockRouter, connector: HubSpotConnector
) -> None:
    on(mock, LIST).mock(return_value=httpx.Response(200, text="<html>maintenance</html>"))

    with pytest.raises(ConnectorError, match="answered 200 without a JSON object"):
        pull(connector)
