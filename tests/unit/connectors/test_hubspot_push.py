"""The HubSpot connector's push against mocked HTTP (respx): legal basis, partial batches, R17, rounds, erasure."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from connectors.base import Action, Basis, Change, Outcome
from connectors.hubspot.connector import HubSpotConnector
from tests.unit.connectors.hubspot_mocks import (
    GDPR,
    WRITE,
    batch,
    connector_fixture,  # noqa: F401 - a fixture
    hubspot_error,
    item_error,
    mock_fixture,  # noqa: F401 - a fixture
    on,
    push,
    rate_limited,
    sleeps_fixture,  # noqa: F401 - a fixture (the connector fixture uses it)
    status,
)


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


STATUS_OF = ("GET", "/communication-preferences/v4/statuses/out@example.com")


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        (hubspot_error(404, "OBJECT_NOT_FOUND", "No subscriber found for out@example.com"), Outcome.GONE),
        (httpx.Response(200, json={"status": "SUCCESS", "results": []}), Outcome.REJECTED),
        (hubspot_error(400, "VALIDATION_ERROR", "bad request"), Outcome.REJECTED),
    ],
)
def test_an_unsubscribe_refused_as_invalid_is_gone_only_when_hubspot_holds_no_subscriber_of_the_address(
    mock: respx.MockRouter, connector: HubSpotConnector, read: httpx.Response, expected: Outcome
) -> None:
    """A GDPR-blocked address is told by the refusal's category and a read of the address, not by words."""
    refusal = item_error("out@example.com", 101, "out@example.com cannot be used")
    on(mock, WRITE).mock(return_value=batch([], [refusal]))
    reads = on(mock, STATUS_OF).mock(return_value=read)
    changes = [Change("k", "hubspot", "out@example.com", Action.UNSUBSCRIBE, "newsletter")]

    results = push(connector, changes)

    assert results["k"].outcome is expected
    assert "cannot be used" in (results["k"].reason or "")
    assert reads.call_count == 1


def test_a_refusal_of_another_category_is_not_checked_for_a_blocked_address(
    mock: respx.MockRouter, connector: HubSpotConnector
) -> None:
    refusal = {**item_error("out@example.com", 101, "try later"), "category": "RATE_LIMITS"}
    on(mock, WRITE).mock(return_value=batch([], [refusal]))
    changes = [Change("k", "hubspot", "out@example.com", Action.UNSUBSCRIBE, "newsletter")]

    # No route for a read of the address: one would fail the test.
    assert push(connector, changes)["k"].outcome is Outcome.REJECTED
