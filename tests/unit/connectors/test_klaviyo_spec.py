"""The Klaviyo sandbox and the connector checked against Klaviyo's official OpenAPI spec and SDK."""

from __future__ import annotations

from datetime import timedelta

import httpx

from connectors.base import Action, Change, Outcome, Status
from connectors.klaviyo.connector import KlaviyoConnector
from connectors.klaviyo.sandbox import API_KEY
from connectors.sandbox import served
from tests.unit.connectors.klaviyo_support import (
    START,
    Sleeps,
    closing,
    connector,
    get,
    people,
    pull_all,
    request_schema,
    response_schema,
    retry_policy,
    run,
    sandbox,
    send,
    settings_for,
    spec,
)


def test_sandbox_responses_match_the_official_spec() -> None:
    box = sandbox()
    box.add_contact("a@example.com", {"newsletter": Status.SUBSCRIBED, "promotions": Status.SUBSCRIBED})
    box.add_contact("b@example.com", {"newsletter": Status.UNSUBSCRIBED, "events": Status.UNSUBSCRIBED})
    profiles = get(box, "/api/profiles", **{"additional-fields[profile]": "subscriptions", "page[size]": "1"})
    assert profiles.status_code == 200
    assert "next" in profiles.json()["links"]
    response_schema("/api/profiles", "get", "200").validate(profiles.json())
    members = get(box, "/api/lists/PrOm01/profiles")
    assert [m["attributes"]["email"] for m in members.json()["data"]] == ["a@example.com"]
    response_schema("/api/lists/{id}/profiles", "get", "200").validate(members.json())
    missing = get(box, "/api/lists/nope/profiles")
    assert missing.status_code == 404
    response_schema("/api/lists/{id}/profiles", "get", "4XX").validate(missing.json())
    box.faults.rate_5xx = 1.0
    failed = get(box, "/api/profiles")
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


def test_create_profile_answers_match_the_official_spec() -> None:
    box = sandbox()
    body = {"data": {"type": "profile", "attributes": {"email": "a@example.com"}}}
    request_schema("/api/profiles", "post").validate(body)
    created = send(box, "POST", "/api/profiles", json=body)
    assert created.status_code == 201
    response_schema("/api/profiles", "post", "201").validate(created.json())
    duplicate = send(box, "POST", "/api/profiles", json=body)
    assert duplicate.status_code == 409
    assert duplicate.json()["errors"][0]["meta"] == {"duplicate_profile_id": created.json()["data"]["id"]}
    response_schema("/api/profiles", "post", "4XX").validate(duplicate.json())


class _Recording(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return await self.inner.handle_async_request(request)


def test_connector_query_parameters_are_ones_the_spec_allows() -> None:
    box = sandbox()
    people(box, 3)
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
    templates = {"/api/profiles": "/api/profiles"}
    templates.update(
        {f"/api/lists/{lid}/profiles": "/api/lists/{id}/profiles" for lid in box.purposes.lists.values()}
    )
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
