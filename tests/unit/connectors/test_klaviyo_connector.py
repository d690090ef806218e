"""The Klaviyo connector's edges, with Klaviyo's HTTP answers faked by respx."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from config.klaviyo import KlaviyoSettings
from connectors.base import Action, Change, Outcome
from connectors.errors import AuthError, PaginationError, TransientError
from connectors.klaviyo.connector import KlaviyoConnector
from connectors.pagination import Watermark
from tests.unit.connectors.klaviyo_support import (
    Sleeps,
    closing,
    error_body,
    profiles_page,
    pull_all,
    response_schema,
    retry_policy,
    run,
    spec_profile,
)

BASE = "https://a.klaviyo.com"
NO_LISTS: dict[str, str] = {}


def _connector(sleeps: Sleeps, attempts: int = 4, lists: dict[str, str] = NO_LISTS) -> KlaviyoConnector:
    settings = KlaviyoSettings(api_key="pk_test", lists=lists)  # type: ignore[arg-type]
    return KlaviyoConnector.from_settings(settings, retry=retry_policy(sleeps, attempts))


def test_spec_profile_fixture_matches_the_official_spec() -> None:
    response_schema("/api/profiles", "get", "200").validate(profiles_page(spec_profile()))
    response_schema("/api/profiles", "get", "4XX").validate(error_body("invalid", "bad", "/data"))


@respx.mock
def test_rate_limited_request_waits_retry_after_then_succeeds() -> None:
    route = respx.get(f"{BASE}/api/profiles").mock(
        side_effect=[
            httpx.Response(
                429, headers={"Retry-After": "3"}, json=error_body("throttled", "Request was throttled.")
            ),
            httpx.Response(200, json=profiles_page(spec_profile())),
        ]
    )
    sleeps = Sleeps()
    conn = _connector(sleeps)
    pages = run(closing(conn, pull_all(conn)))
    assert route.call_count == 2
    assert sleeps.waits == [3.0]
    assert [r.email for r in pages[0].records] == ["sarah.mason@klaviyo-demo.com"]


@respx.mock
def test_pull_sends_revision_key_consent_fields_and_a_closed_updated_boundary() -> None:
    route = respx.get(f"{BASE}/api/profiles").mock(return_value=httpx.Response(200, json=profiles_page()))
    conn = _connector(Sleeps())
    mark = Watermark.decode(json.dumps({"at": "2024-05-01T08:00:00+00:00", "keys": ["a"]}))
    run(closing(conn, pull_all(conn, mark.encode())))
    request = route.calls.last.request
    assert request.headers["revision"] == "2026-07-15"
    assert request.headers["Authorization"] == "Klaviyo-API-Key pk_test"
    query = parse_qs(urlsplit(str(request.url)).query)
    assert query["additional-fields[profile]"] == ["subscriptions"]
    assert query["sort"] == ["updated"]
    assert query["page[size]"] == ["100"]
    assert query["filter"] == ["greater-than(updated,2024-05-01T07:59:59Z)"]  # a second early: closed


@respx.mock
def test_bad_key_is_not_retried() -> None:
    route = respx.get(f"{BASE}/api/profiles").mock(
        return_value=httpx.Response(
            401, json=error_body("not_authenticated", "Incorrect authentication credentials.")
        )
    )
    sleeps = Sleeps()
    conn = _connector(sleeps)
    with pytest.raises(AuthError, match="not_authenticated"):
        run(closing(conn, pull_all(conn)))
    assert route.call_count == 1
    assert sleeps.waits == []


@respx.mock
def test_server_errors_exhaust_retries_on_pull_and_leave_pushes_for_later() -> None:
    respx.get(f"{BASE}/api/profiles").mock(return_value=httpx.Response(503, json=error_body("error", "down")))
    jobs = respx.post(f"{BASE}/api/profile-subscription-bulk-delete-jobs").mock(
        return_value=httpx.Response(503, json=error_body("error", "down"))
    )
    sleeps = Sleeps()
    conn = _connector(sleeps, attempts=3)
    with pytest.raises(TransientError):
        run(pull_all(conn))
    results = run(
        closing(conn, conn.push([Change("k", "klaviyo", "a@example.com", Action.UNSUBSCRIBE, "newsletter")]))
    )
    assert jobs.call_count == 3
    assert results[0].outcome is Outcome.RETRY_LATER
    assert "503" in (results[0].reason or "")


@respx.mock
def test_job_refused_for_one_profile_is_resent_without_it() -> None:
    route = respx.post(f"{BASE}/api/profile-subscription-bulk-create-jobs").mock(
        side_effect=[
            httpx.Response(
                400,
                json=error_body(
                    "invalid", "Invalid email.", "/data/attributes/profiles/data/1/attributes/email"
                ),
            ),
            httpx.Response(202),
        ]
    )
    conn = _connector(Sleeps())
    changes = [
        Change(f"k{i}", "klaviyo", email, Action.SUBSCRIBE, "newsletter")
        for i, email in enumerate(["a@example.com", "b@example.org", "c@example.com"])
    ]
    results = {r.key: r for r in run(closing(conn, conn.push(changes)))}
    assert results["k1"].outcome is Outcome.REJECTED
    assert "Invalid email" in (results["k1"].reason or "")
    assert results["k0"].outcome is Outcome.ACCEPTED
    assert results["k0"].verify_on_pull
    assert results["k2"].outcome is Outcome.ACCEPTED
    resent = json.loads(route.calls.last.request.content)["data"]["attributes"]["profiles"]["data"]
    assert [p["attributes"]["email"] for p in resent] == ["a@example.com", "c@example.com"]


@respx.mock
def test_repeated_page_token_stops_the_pull() -> None:
    again = f"{BASE}/api/profiles?page%5Bcursor%5D=same"
    respx.get(f"{BASE}/api/profiles").mock(
        return_value=httpx.Response(200, json=profiles_page(spec_profile(), next_url=again))
    )
    conn = _connector(Sleeps())
    with pytest.raises(PaginationError, match="repeated"):
        run(closing(conn, pull_all(conn)))


@respx.mock
def test_malformed_profiles_are_reported_with_field_and_the_page_goes_on() -> None:
    respx.get(f"{BASE}/api/profiles").mock(
        return_value=httpx.Response(
            200,
            json=profiles_page(
                spec_profile("good"),
                spec_profile("bad-email", email="not-an-address"),
                spec_profile("no-stamp", email="x@example.com", updated=None),
                spec_profile("odd-consent", email="y@example.com", consent="MAYBE"),
            ),
        )
    )
    conn = _connector(Sleeps())
    (page,) = run(closing(conn, pull_all(conn)))
    assert [r.external_id for r in page.records] == ["good"]
    assert {(e.record_id, e.field) for e in page.errors} == {
        ("bad-email", "attributes.email"),
        ("no-stamp", "attributes.updated"),
        ("odd-consent", "attributes.subscriptions.email.marketing.consent"),
    }
    assert all(e.system == "klaviyo" for e in page.errors)


@respx.mock
def test_list_purposes_are_read_from_list_membership_of_the_page() -> None:
    respx.get(f"{BASE}/api/profiles").mock(
        return_value=httpx.Response(
            200, json=profiles_page(spec_profile("in"), spec_profile("out", email="o@example.com"))
        )
    )
    members = respx.get(f"{BASE}/api/lists/Y6nRLr/profiles").mock(
        return_value=httpx.Response(
            200,
            json={
                "data": [
                    {
                        "type": "profile",
                        "id": "in",
                        "attributes": {
                            "email": "sarah.mason@klaviyo-demo.com",
                            "joined_group_at": "2023-03-01T00:00:00+00:00",
                        },
                        "links": {"self": "x"},
                    }
                ],
                "links": {"self": "x"},
            },
        )
    )
    conn = _connector(Sleeps(), lists={"promotions": "Y6nRLr"})
    (page,) = run(closing(conn, pull_all(conn)))
    status = {r.external_id: r.status_of("promotions") for r in page.records}
    assert status == {"in": "subscribed", "out": "not_subscribed"}
    query = parse_qs(urlsplit(str(members.calls.last.request.url)).query)
    assert query["filter"] == ['any(email,["o@example.com","sarah.mason@klaviyo-demo.com"])']


@respx.mock
def test_list_withdrawal_uses_relationship_delete_with_the_looked_up_profile_id() -> None:
    respx.get(f"{BASE}/api/profiles").mock(
        return_value=httpx.Response(200, json=profiles_page(spec_profile("P1", email="a@example.com")))
    )
    delete = respx.delete(f"{BASE}/api/lists/Y6nRLr/relationships/profiles").mock(
        return_value=httpx.Response(204)
    )
    unsubscribe = respx.post(f"{BASE}/api/profile-subscription-bulk-delete-jobs")
    conn = _connector(Sleeps(), lists={"promotions": "Y6nRLr"})
    results = run(
        closing(conn, conn.push([Change("k", "klaviyo", "A@Example.com", Action.UNSUBSCRIBE, "promotions")]))
    )
    assert results[0].outcome is Outcome.ACCEPTED
    assert results[0].verify_on_pull
    assert json.loads(delete.calls.last.request.content) == {"data": [{"type": "profile", "id": "P1"}]}
    assert unsubscribe.call_count == 0  # the global-unsubscribe trap is never touched


@respx.mock
def test_tags_and_unmapped_purposes_are_rejected_without_a_call() -> None:
    conn = _connector(Sleeps())
    results = run(
        closing(
            conn,
            conn.push(
                [
                    Change("t", "klaviyo", "a@example.com", Action.TAG, tag="re-permission"),
                    Change("p", "klaviyo", "a@example.com", Action.SUBSCRIBE, "webinars"),
                ]
            ),
        )
    )
    assert {r.key: r.outcome for r in results} == {"t": Outcome.REJECTED, "p": Outcome.REJECTED}


@respx.mock
def test_bad_key_on_push_fails_the_push_before_any_grant_is_sent() -> None:
    respx.post(f"{BASE}/api/profile-subscription-bulk-delete-jobs").mock(
        return_value=httpx.Response(
            401, json=error_body("not_authenticated", "Incorrect authentication credentials.")
        )
    )
    grants = respx.post(f"{BASE}/api/profile-subscription-bulk-create-jobs")
    conn = _connector(Sleeps())
    changes = [
        Change("w", "klaviyo", "a@example.com", Action.UNSUBSCRIBE, "newsletter"),
        Change("g", "klaviyo", "b@example.com", Action.SUBSCRIBE, "newsletter"),
    ]
    with pytest.raises(AuthError):
        run(closing(conn, conn.push(changes)))
    assert grants.call_count == 0
