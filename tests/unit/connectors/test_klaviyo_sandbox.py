"""The Klaviyo sandbox and connector together: over real HTTP, against the official spec and SDK."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from connectors.base import Action, Change, ContactRecord, GlobalState, Outcome, Status
from connectors.klaviyo.connector import KlaviyoConnector
from connectors.klaviyo.sandbox import API_KEY, KlaviyoSandbox
from connectors.sandbox import served
from tests.unit.connectors.klaviyo_support import (
    START,
    Sleeps,
    closing,
    connector,
    pull_all,
    request_schema,
    response_schema,
    retry_policy,
    run,
    sandbox,
    settings_for,
    spec,
)

HEADERS = {"Authorization": f"Klaviyo-API-Key {API_KEY}", "revision": "2026-07-15"}


def _people(box: KlaviyoSandbox, count: int) -> list[str]:
    emails = [f"person{i}@example.com" for i in range(count)]
    for i, email in enumerate(emails):
        box.add_contact(
            email,
            {
                "newsletter": Status.SUBSCRIBED,
                "promotions": Status.SUBSCRIBED if i % 2 else Status.NOT_SUBSCRIBED,
            },
        )
    return emails


def _records(pages: list) -> list[ContactRecord]:  # type: ignore[type-arg]
    return [r for page in pages for r in page.records]


def test_pull_and_push_over_real_http_round_trip() -> None:
    box = sandbox()
    emails = _people(box, 5)
    with served(box.app) as url:
        conn = KlaviyoConnector.from_settings(
            settings_for(box, url, page_size=2), retry=retry_policy(Sleeps()), clock=box.clock.now
        )

        async def scenario() -> tuple[list, list, list]:  # type: ignore[type-arg]
            first = await pull_all(conn)
            box.clock.advance(60)
            results = await conn.push(
                [
                    Change("w1", "klaviyo", emails[0], Action.UNSUBSCRIBE, "newsletter"),
                    Change("w2", "klaviyo", emails[1], Action.UNSUBSCRIBE, "promotions"),
                    Change(
                        "g1", "klaviyo", "new@example.com", Action.SUBSCRIBE, "newsletter", consent_at=START
                    ),
                ]
            )
            second = await pull_all(conn, first[-1].checkpoint)
            return first, results, second

        first, results, second = run(closing(conn, scenario()))
    assert sorted(r.email for r in _records(first)) == emails
    assert len(first) == 3
    assert first[-1].final
    assert {r.key: (r.outcome, r.verify_on_pull) for r in results} == {
        "w1": (Outcome.ACCEPTED, True),
        "w2": (Outcome.ACCEPTED, True),
        "g1": (Outcome.ACCEPTED, True),
    }
    seen = {r.email: r for r in _records(second)}
    assert set(seen) == {emails[0], emails[1], "new@example.com"}  # only what changed
    assert seen[emails[0]].status_of("newsletter") is Status.UNSUBSCRIBED
    assert seen[emails[1]].status_of("promotions") is Status.NOT_SUBSCRIBED
    assert seen[emails[1]].status_of("newsletter") is Status.SUBSCRIBED  # the list exit was not global
    assert seen["new@example.com"].status_of("newsletter") is Status.SUBSCRIBED
    assert seen["new@example.com"].evidence is not None
    assert seen["new@example.com"].evidence.consent_at == START


def test_withdrawing_a_list_purpose_leaves_the_list_and_never_unsubscribes_globally() -> None:
    box = sandbox()
    box.add_contact("outsider@example.com", {"newsletter": Status.SUBSCRIBED})  # not in the promotions list
    conn = connector(box)
    results = run(
        closing(
            conn,
            conn.push([Change("k", "klaviyo", "outsider@example.com", Action.UNSUBSCRIBE, "promotions")]),
        )
    )
    assert results[0].outcome is Outcome.ACCEPTED
    assert box.status("outsider@example.com", "newsletter") is Status.SUBSCRIBED
    assert not any(path.endswith("bulk-delete-jobs") for _, path in box.requests)


def test_sandbox_unsubscribe_job_with_a_list_unsubscribes_globally_a_profile_not_in_that_list() -> None:
    box = sandbox()
    box.add_contact("outsider@example.com", {"newsletter": Status.SUBSCRIBED})
    body = {
        "data": {
            "type": "profile-subscription-bulk-delete-job",
            "attributes": {
                "profiles": {
                    "data": [
                        {
                            "type": "profile",
                            "attributes": {
                                "email": "outsider@example.com",
                                "subscriptions": {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}},
                            },
                        }
                    ]
                }
            },
            "relationships": {"list": {"data": {"type": "list", "id": "PrOm01"}}},
        }
    }
    response = _send(box, "POST", "/api/profile-subscription-bulk-delete-jobs", json=body)
    assert response.status_code == 202
    assert box.status("outsider@example.com", "newsletter") is Status.UNSUBSCRIBED


def _send(
    box: KlaviyoSandbox, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
) -> httpx.Response:
    async def call() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=box.app), base_url="http://k"
        ) as client:
            return await client.request(
                method, path, headers=HEADERS if headers is None else headers, **kwargs
            )

    return run(call())


def _get(
    box: KlaviyoSandbox, path: str, headers: dict[str, str] | None = None, **params: str
) -> httpx.Response:
    return _send(box, "GET", path, headers, params=params)


def test_missing_revision_header_gets_klaviyos_400_error_document() -> None:
    response = _get(sandbox(), "/api/profiles", headers={"Authorization": HEADERS["Authorization"]})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["source"] == {"parameter": "revision"}
    response_schema("/api/profiles", "get", "4XX").validate(response.json())


def test_bad_api_key_gets_401_error_document() -> None:
    response = _get(
        sandbox(), "/api/profiles", headers={**HEADERS, "Authorization": "Klaviyo-API-Key pk_wrong"}
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "not_authenticated"
    response_schema("/api/profiles", "get", "4XX").validate(response.json())


def test_page_size_above_100_is_refused() -> None:
    response = _get(sandbox(), "/api/profiles", **{"page[size]": "101"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"parameter": "page[size]"}


def test_filter_on_a_field_klaviyo_does_not_allow_is_refused() -> None:
    response = _get(sandbox(), "/api/profiles", filter="equals(first_name,'Jan')")
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"parameter": "filter"}


def test_sandbox_responses_match_the_official_spec() -> None:
    box = sandbox()
    box.add_contact("a@example.com", {"newsletter": Status.SUBSCRIBED, "promotions": Status.SUBSCRIBED})
    box.add_contact("b@example.com", {"newsletter": Status.UNSUBSCRIBED, "events": Status.UNSUBSCRIBED})
    profiles = _get(
        box, "/api/profiles", **{"additional-fields[profile]": "subscriptions", "page[size]": "1"}
    )
    assert profiles.status_code == 200
    assert "next" in profiles.json()["links"]
    response_schema("/api/profiles", "get", "200").validate(profiles.json())
    members = _get(box, "/api/lists/PrOm01/profiles")
    assert [m["attributes"]["email"] for m in members.json()["data"]] == ["a@example.com"]
    response_schema("/api/lists/{id}/profiles", "get", "200").validate(members.json())
    missing = _get(box, "/api/lists/nope/profiles")
    assert missing.status_code == 404
    response_schema("/api/lists/{id}/profiles", "get", "4XX").validate(missing.json())
    box.faults.rate_5xx = 1.0
    failed = _get(box, "/api/profiles")
    assert failed.status_code == 503
    response_schema("/api/profiles", "get", "5XX").validate(failed.json())


def test_connector_request_bodies_match_the_official_spec() -> None:
    box = sandbox()
    box.add_contact("member@example.com", {"newsletter": Status.SUBSCRIBED, "promotions": Status.SUBSCRIBED})
    conn = connector(box)
    changes = [
        Change(
            "s",
            "klaviyo",
            "new@example.com",
            Action.SUBSCRIBE,
            "newsletter",
            consent_at=START - timedelta(days=1),
        ),
        Change("u", "klaviyo", "member@example.com", Action.UNSUBSCRIBE, "newsletter"),
        Change("l", "klaviyo", "member@example.com", Action.UNSUBSCRIBE, "promotions"),
        Change("a", "klaviyo", "member@example.com", Action.SUBSCRIBE, "events"),
        Change("e", "klaviyo", "new@example.com", Action.ERASE),
    ]
    results = run(closing(conn, conn.push(changes)))
    assert {r.key: r.outcome for r in results} == dict.fromkeys("sulae", Outcome.ACCEPTED)
    kinds = {
        "profile-subscription-bulk-create-job": request_schema(
            "/api/profile-subscription-bulk-create-jobs", "post"
        ),
        "profile-subscription-bulk-delete-job": request_schema(
            "/api/profile-subscription-bulk-delete-jobs", "post"
        ),
        "data-privacy-deletion-job": request_schema("/api/data-privacy-deletion-jobs", "post"),
    }
    relationships = request_schema("/api/lists/{id}/relationships/profiles", "post")
    for job in box.jobs:
        if "method" in job:
            relationships.validate({"data": job["data"]})
        else:
            kinds[job["data"]["type"]].validate(job)
    assert len(box.jobs) == 5
    assert box.status("new@example.com", "newsletter") is None  # erased


def test_repeated_push_creates_no_duplicate_profiles() -> None:
    box = sandbox()
    conn = connector(box)
    change = Change("k", "klaviyo", "Twice@Example.com", Action.SUBSCRIBE, "newsletter", consent_at=START)

    async def scenario() -> list:  # type: ignore[type-arg]
        await conn.push([change])
        await conn.push([change])
        return _records(await pull_all(conn))

    records = run(closing(conn, scenario()))
    assert [r.email for r in records] == ["twice@example.com"]
    assert len(box.profiles) == 1


def test_burst_limit_answers_429_with_retry_after_and_other_answers_carry_ratelimit_headers() -> None:
    box = sandbox()
    box.limits.enabled = True
    box.limits.ticks = lambda: 1000.25  # every request inside one burst window
    ok = _get(box, "/api/profiles")
    assert ok.status_code == 200
    assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(ok.headers)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=box.app), base_url="http://k"
        ) as client:
            return [await client.get("/api/profiles", headers=HEADERS) for _ in range(80)]

    responses = run(burst())
    limited = [r for r in responses if r.status_code == 429]
    assert len(limited) == 80 - 74  # 75 per second, one already spent above
    assert "retry-after" in limited[0].headers
    assert "ratelimit-limit" not in limited[0].headers
    assert limited[0].json()["errors"][0]["code"] == "throttled"


def test_spam_complaint_and_hard_bounce_arrive_as_account_wide_facts() -> None:
    box = sandbox()
    box.add_contact(
        "complainer@example.com", {"newsletter": Status.SUBSCRIBED}, suppression={"SPAM_COMPLAINT": START}
    )
    box.add_contact(
        "bouncer@example.com", {"newsletter": Status.SUBSCRIBED}, suppression={"HARD_BOUNCE": START}
    )
    conn = connector(box)
    records = {r.email: r for r in _records(run(closing(conn, pull_all(conn))))}
    assert records["complainer@example.com"].global_state is GlobalState.COMPLAINED  # R18
    assert records["bouncer@example.com"].global_state is GlobalState.BOUNCED


def test_official_sdk_lists_profiles_and_subscribes_against_the_sandbox() -> None:
    from klaviyo_api import KlaviyoAPI

    box = sandbox()
    box.add_contact("a@example.com", {"newsletter": Status.SUBSCRIBED, "promotions": Status.SUBSCRIBED})
    with served(box.app) as url:
        api = KlaviyoAPI(API_KEY, test_host=url, max_retries=0)
        listing = api.Profiles.get_profiles(additional_fields_profile=["subscriptions"], page_size=10)
        members = api.Lists.get_profiles_for_list("PrOm01")
        api.Profiles.bulk_subscribe_profiles(
            {
                "data": {
                    "type": "profile-subscription-bulk-create-job",
                    "attributes": {
                        "profiles": {
                            "data": [
                                {
                                    "type": "profile",
                                    "attributes": {
                                        "email": "b@example.com",
                                        "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}},
                                    },
                                }
                            ]
                        }
                    },
                }
            }
        )
    assert listing.data[0].attributes.email == "a@example.com"
    assert listing.data[0].attributes.subscriptions.email.marketing.consent == "SUBSCRIBED"
    assert [m.attributes.email for m in members.data] == ["a@example.com"]
    assert box.status("b@example.com", "newsletter") is Status.SUBSCRIBED


def test_joining_a_list_creates_a_bare_profile_for_an_unknown_address_without_writing_consent() -> None:
    box = sandbox()
    conn = connector(box)
    results = run(
        closing(
            conn, conn.push([Change("k", "klaviyo", "fresh@example.com", Action.SUBSCRIBE, "promotions")])
        )
    )
    assert results[0].outcome is Outcome.ACCEPTED
    assert box.status("fresh@example.com", "promotions") is Status.SUBSCRIBED
    assert box.status("fresh@example.com", "newsletter") is Status.NOT_SUBSCRIBED  # consent untouched
    assert ("POST", "/api/profiles") in box.requests


def test_create_profile_answers_match_the_official_spec() -> None:
    box = sandbox()
    body = {"data": {"type": "profile", "attributes": {"email": "a@example.com"}}}
    request_schema("/api/profiles", "post").validate(body)
    created = _send(box, "POST", "/api/profiles", json=body)
    assert created.status_code == 201
    response_schema("/api/profiles", "post", "201").validate(created.json())
    duplicate = _send(box, "POST", "/api/profiles", json=body)
    assert duplicate.status_code == 409
    assert duplicate.json()["errors"][0]["meta"] == {"duplicate_profile_id": created.json()["data"]["id"]}
    response_schema("/api/profiles", "post", "4XX").validate(duplicate.json())


def test_withdrawals_reach_klaviyo_before_grants_in_one_push() -> None:
    box = sandbox()
    box.add_contact("member@example.com", {"promotions": Status.SUBSCRIBED})
    conn = connector(box)
    changes = [
        Change("g", "klaviyo", "new@example.com", Action.SUBSCRIBE, "newsletter", consent_at=START),
        Change("w", "klaviyo", "member@example.com", Action.UNSUBSCRIBE, "promotions"),
    ]
    run(closing(conn, conn.push(changes)))
    writes = [path for method, path in box.requests if method != "GET"]
    assert writes == [
        "/api/lists/PrOm01/relationships/profiles",
        "/api/profile-subscription-bulk-create-jobs",
    ]


def test_list_membership_is_read_for_addresses_with_quotes() -> None:
    box = sandbox()
    box.add_contact("o'brien@example.com", {"newsletter": Status.SUBSCRIBED, "promotions": Status.SUBSCRIBED})
    conn = connector(box)
    (record,) = _records(run(closing(conn, pull_all(conn))))
    assert record.email == "o'brien@example.com"
    assert record.status_of("promotions") is Status.SUBSCRIBED


class _Recording(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return await self.inner.handle_async_request(request)


def test_connector_query_parameters_are_ones_the_spec_allows() -> None:
    box = sandbox()
    _people(box, 3)
    transport = _Recording(httpx.ASGITransport(app=box.app))
    conn = KlaviyoConnector.from_settings(
        settings_for(box, page_size=2), transport=transport, retry=retry_policy(Sleeps())
    )

    async def scenario() -> None:
        pages = await pull_all(conn)
        await pull_all(conn, pages[-1].checkpoint)
        await conn.push([Change("l", "klaviyo", "someone@example.com", Action.UNSUBSCRIBE, "promotions")])

    run(closing(conn, scenario()))
    document = spec()
    templates = {
        "/api/profiles": "/api/profiles",
        "/api/lists/PrOm01/profiles": "/api/lists/{id}/profiles",
        "/api/lists/EvNt02/profiles": "/api/lists/{id}/profiles",
    }
    checked = 0
    for request in transport.seen:
        if request.method != "GET":
            continue
        operation = document["paths"][templates[request.url.path]]["get"]
        allowed = {p["name"]: p for p in operation["parameters"]}
        assert allowed["revision"]["required"]
        assert request.headers["revision"] == "2026-07-15"
        for name, value in request.url.params.multi_items():
            assert name in allowed, f"{name} is not a parameter of {request.url.path}"
            schema = allowed[name]["schema"]
            enum = schema.get("enum") or schema.get("items", {}).get("enum")
            if enum:
                assert set(value.split(",")) <= set(enum), f"{name}={value} is outside the spec's enum"
            if "maximum" in schema:
                assert schema["minimum"] <= int(value) <= schema["maximum"]
            checked += 1
    assert checked >= 10


def test_incremental_pull_sees_a_list_join_that_did_not_move_updated() -> None:
    box = sandbox()
    box.audience.list_change_moves_updated = False
    box.add_contact("stays@example.com", {"newsletter": Status.SUBSCRIBED})
    box.add_contact("joins@example.com", {"newsletter": Status.SUBSCRIBED})
    conn = connector(box)

    async def scenario() -> tuple[list[ContactRecord], list[ContactRecord]]:
        first = await pull_all(conn)
        box.clock.advance(30)
        await conn.push([Change("j", "klaviyo", "joins@example.com", Action.SUBSCRIBE, "promotions")])
        second = await pull_all(conn, first[-1].checkpoint)
        third = await pull_all(conn, second[-1].checkpoint)
        return _records(second), _records(third)

    second, third = run(closing(conn, scenario()))
    assert [(r.email, r.status_of("promotions")) for r in second] == [
        ("joins@example.com", Status.SUBSCRIBED)
    ]
    assert third == []  # the join moved the watermark: it is not read again
