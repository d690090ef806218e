"""The HubSpot connector's pull and HTTP handling against mocked HTTP (respx): retries, errors, paging, mapping edges."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx
import pytest
import respx

from config.hubspot import HubSpotSettings
from connectors.base import GlobalState, Status
from connectors.errors import AuthError, ConnectorError, PaginationError, RejectedError, TransientError
from connectors.http import RetryPolicy
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.connector import HubSpotConnector
from tests.unit.connectors.hubspot_mocks import (
    BASE,
    LIST,
    READ,
    SEARCH,
    WIDE,
    Sleeps,
    batch,
    connector_fixture,  # noqa: F401 - a fixture
    contact,
    hubspot_error,
    item_error,
    missing_scopes,
    mock_fixture,  # noqa: F401 - a fixture
    on,
    pull,
    rate_limited,
    sleeps_fixture,  # noqa: F401 - a fixture
    status,
)


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
