"""Every vendor's webhook is verified its own way: valid ones start a targeted run, the rest get 401."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from sync_worker.trigger import Trigger
from sync_worker.web.webhooks.delivery import Delivery, Refusal, WebhookRefused
from sync_worker.web.webhooks.hubspot import sign_hubspot
from sync_worker.web.webhooks.klaviyo import Construction, sign_klaviyo, verify_klaviyo
from sync_worker.web.webhooks.mailchimp import sign_mailchimp
from sync_worker.web.webhooks.shopify import sign_shopify
from tests.web.worker_app import NOW, SECRETS, Worker

BASE = "http://worker.test"
SHOPIFY_BODY = json.dumps(
    {"id": 7, "email": "Jan@Example.com", "email_marketing_consent": {"state": "unsubscribed"}}
).encode()
HUBSPOT_BODY = json.dumps(
    [
        {
            "eventId": 1,
            "objectId": 501,
            "subscriptionType": "contact.propertyChange",
            "propertyName": "hs_email_optout",
            "propertyValue": "true",
            "occurredAt": 1777636800000,
        }
    ]
).encode()
KLAVIYO_BODY = json.dumps(
    {
        "data": [
            {
                "external_id": "evt-1",
                "topic": "event:klaviyo.unsubscribed_from_email_marketing",
                "payload": {
                    "type": "event",
                    "id": "evt-1",
                    "attributes": {"event_properties": {"$email": "piet@example.com"}},
                    "relationships": {"profile": {"data": {"type": "profile", "id": "P1"}}},
                },
            }
        ],
        "meta": {"klaviyo_webhook_id": "wh-1"},
    }
).encode()
MAILCHIMP_FIELDS = {
    "type": "unsubscribe",
    "fired_at": "2026-05-01 11:59:00",
    "data[action]": "unsub",
    "data[reason]": "manual",
    "data[id]": "abc",
    "data[email]": "kees@example.com",
    "data[list_id]": "L1",
}

Request = tuple[str, bytes, dict[str, str]]  # url, body, headers


def shopify_request(secret: str, when: Any = NOW) -> Request:
    headers = {**sign_shopify(secret, SHOPIFY_BODY), "X-Shopify-Topic": "customers/update"}
    return f"{BASE}/webhooks/shopify", SHOPIFY_BODY, headers


def hubspot_request(secret: str, when: Any = NOW) -> Request:
    url = f"{BASE}/webhooks/hubspot"
    return url, HUBSPOT_BODY, sign_hubspot(secret, "POST", url, HUBSPOT_BODY, when)


def klaviyo_request(secret: str, when: Any = NOW) -> Request:
    headers = {**sign_klaviyo(secret, KLAVIYO_BODY, when), "Klaviyo-Webhook-Id": "wh-1"}
    return f"{BASE}/webhooks/klaviyo", KLAVIYO_BODY, headers


def mailchimp_request(secret: str, when: Any = NOW) -> Request:
    url, body = sign_mailchimp(secret, BASE, MAILCHIMP_FIELDS)
    return url, body, {"Content-Type": "application/x-www-form-urlencoded"}


BUILDERS: dict[str, Callable[..., Request]] = {
    "shopify": shopify_request,
    "hubspot": hubspot_request,
    "klaviyo": klaviyo_request,
    "mailchimp": mailchimp_request,
}
SECRET_OF = {
    "shopify": SECRETS["SYNC_SHOPIFY__WEBHOOK_SECRET"],
    "hubspot": SECRETS["SYNC_HUBSPOT__CLIENT_SECRET"],
    "klaviyo": SECRETS["SYNC_KLAVIYO__WEBHOOK_SECRET"],
    "mailchimp": SECRETS["SYNC_MAILCHIMP__WEBHOOK_SECRET"],
}
SIGNATURE_HEADERS = {
    "shopify": ["X-Shopify-Hmac-Sha256"],
    "hubspot": ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"],
    "klaviyo": ["Klaviyo-Signature", "Klaviyo-Timestamp"],
}
EXPECTED_TARGET = {
    "shopify": {"emails": {"jan@example.com"}},
    "hubspot": {"external_ids": {("hubspot", "501")}},
    "klaviyo": {"emails": {"piet@example.com"}},
    "mailchimp": {"emails": {"kees@example.com"}},
}


@pytest.mark.parametrize("vendor", sorted(BUILDERS))
def test_signed_webhook_starts_a_targeted_run_for_the_person(vendor: str, with_worker: Any) -> None:
    async def scenario(w: Worker) -> None:
        url, body, headers = BUILDERS[vendor](SECRET_OF[vendor])
        response = await w.client.post(url, content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["facts"] >= 1
        (request,) = await w.settle()
        assert request.trigger is Trigger.WEBHOOK
        expected = EXPECTED_TARGET[vendor]
        assert set(request.emails) == expected.get("emails", set())
        assert set(request.external_ids) == expected.get("external_ids", set())
        assert all(fact.system == vendor for fact in request.facts)
        assert w.count("sync_webhooks_total", vendor=vendor, outcome="accepted") == 1

    with_worker(scenario)


@pytest.mark.parametrize("vendor", sorted(BUILDERS))
def test_wrongly_signed_webhook_is_refused_counted_and_starts_no_run(vendor: str, with_worker: Any) -> None:
    async def scenario(w: Worker) -> None:
        url, body, headers = BUILDERS[vendor]("not-the-secret")
        response = await w.client.post(url, content=body, headers=headers)
        assert response.status_code == 401
        assert await w.settle() == []
        assert w.count("sync_webhooks_total", vendor=vendor, outcome="bad_signature") == 1
        assert w.count("sync_webhooks_total", vendor=vendor, outcome="accepted") == 0

    with_worker(scenario)


@pytest.mark.parametrize("vendor", sorted(SIGNATURE_HEADERS))
def test_unsigned_webhook_is_refused_and_counted(vendor: str, with_worker: Any) -> None:
    async def scenario(w: Worker) -> None:
        url, body, headers = BUILDERS[vendor](SECRET_OF[vendor])
        for name in SIGNATURE_HEADERS[vendor]:
            del headers[name]
        response = await w.client.post(url, content=body, headers=headers)
        assert response.status_code == 401
        assert await w.settle() == []
        assert w.count("sync_webhooks_total", vendor=vendor, outcome="unsigned") == 1

    with_worker(scenario)


def test_mailchimp_url_without_secret_is_refused_as_unsigned(with_worker: Any) -> None:
    async def scenario(w: Worker) -> None:
        _, body, headers = mailchimp_request(SECRET_OF["mailchimp"])
        response = await w.client.post(f"{BASE}/webhooks/mailchimp", content=body, headers=headers)
        assert response.status_code == 401
        assert await w.settle() == []
        assert w.count("sync_webhooks_total", vendor="mailchimp", outcome="unsigned") == 1

    with_worker(scenario)


@pytest.mark.parametrize("vendor", ["hubspot", "klaviyo"])
@pytest.mark.parametrize("age", [timedelta(minutes=6), -timedelta(minutes=6)])
def test_webhook_signed_outside_the_five_minute_window_is_refused_as_stale(
    vendor: str, age: timedelta, with_worker: Any
) -> None:
    async def scenario(w: Worker) -> None:
        url, body, headers = BUILDERS[vendor](SECRET_OF[vendor], NOW - age)
        response = await w.client.post(url, content=body, headers=headers)
        assert response.status_code == 401
        assert await w.settle() == []
        assert w.count("sync_webhooks_total", vendor=vendor, outcome="stale") == 1

    with_worker(scenario)


def test_hubspot_signature_within_the_window_is_accepted(with_worker: Any) -> None:
    async def scenario(w: Worker) -> None:
        url, body, headers = hubspot_request(SECRET_OF["hubspot"], NOW - timedelta(minutes=4))
        assert (await w.client.post(url, content=body, headers=headers)).status_code == 200

    with_worker(scenario)


def test_hubspot_signature_covers_the_uri(with_worker: Any) -> None:
    """A signature made for another path is not valid here (v3 signs method + uri + body + timestamp)."""

    async def scenario(w: Worker) -> None:
        headers = sign_hubspot(SECRET_OF["hubspot"], "POST", f"{BASE}/elsewhere", HUBSPOT_BODY, NOW)
        response = await w.client.post(f"{BASE}/webhooks/hubspot", content=HUBSPOT_BODY, headers=headers)
        assert response.status_code == 401

    with_worker(scenario)


def test_hubspot_signs_the_uri_with_reserved_escapes_decoded(with_worker: Any) -> None:
    async def scenario(w: Worker) -> None:
        called = f"{BASE}/webhooks/hubspot?portal=a%3Ab%40c"
        headers = sign_hubspot(
            SECRET_OF["hubspot"], "POST", f"{BASE}/webhooks/hubspot?portal=a:b@c", HUBSPOT_BODY, NOW
        )
        assert (await w.client.post(called, content=HUBSPOT_BODY, headers=headers)).status_code == 200

    with_worker(scenario)


def test_mailchimp_get_validation_answers_200_only_with_the_secret(with_worker: Any) -> None:
    async def scenario(w: Worker) -> None:
        secret = SECRET_OF["mailchimp"]
        assert (await w.client.get(f"{BASE}/webhooks/mailchimp/{secret}")).status_code == 200
        assert (await w.client.get(f"{BASE}/webhooks/mailchimp?secret={secret}")).status_code == 200
        assert (await w.client.get(f"{BASE}/webhooks/mailchimp?secret=guess")).status_code == 401
        assert (await w.client.get(f"{BASE}/webhooks/shopify")).status_code == 405
        assert await w.settle() == []

    with_worker(scenario)


def test_mailchimp_secret_in_the_path_is_accepted(with_worker: Any) -> None:
    async def scenario(w: Worker) -> None:
        _, body, headers = mailchimp_request(SECRET_OF["mailchimp"])
        url = f"{BASE}/webhooks/mailchimp/{SECRET_OF['mailchimp']}"
        assert (await w.client.post(url, content=body, headers=headers)).status_code == 200
        (request,) = await w.settle()
        assert request.emails == {"kees@example.com"}

    with_worker(scenario)


def test_klaviyo_signature_construction_is_configurable(with_worker: Any) -> None:
    construction = Construction("timestamp_body", "base64")

    async def scenario(w: Worker) -> None:
        secret = SECRET_OF["klaviyo"]
        url = f"{BASE}/webhooks/klaviyo"
        webhook_id = {"Klaviyo-Webhook-Id": "wh-1"}
        default_signed = {**sign_klaviyo(secret, KLAVIYO_BODY, NOW), **webhook_id}
        assert (await w.client.post(url, content=KLAVIYO_BODY, headers=default_signed)).status_code == 401
        configured = {**sign_klaviyo(secret, KLAVIYO_BODY, NOW, construction), **webhook_id}
        assert (await w.client.post(url, content=KLAVIYO_BODY, headers=configured)).status_code == 200

    with_worker(
        scenario,
        klaviyo={
            "webhook_secret": SECRET_OF["klaviyo"],
            "webhook_signed_content": "timestamp_body",
            "webhook_signature_encoding": "base64",
        },
    )


@pytest.mark.parametrize(
    ("body", "header", "outcome"),
    [
        (KLAVIYO_BODY, "wh-other", "webhook_id_mismatch"),
        (
            KLAVIYO_BODY.replace(b'"meta": {"klaviyo_webhook_id": "wh-1"}', b'"meta": {}'),
            "wh-1",
            "webhook_id_mismatch",
        ),
        (KLAVIYO_BODY, None, "unsigned"),
    ],
    ids=["differs", "not-in-body", "no-header"],
)
def test_klaviyo_webhook_id_must_be_sent_and_match_the_body(
    body: bytes, header: str | None, outcome: str, with_worker: Any
) -> None:
    """Klaviyo: meta.klaviyo_webhook_id must match the Klaviyo-Webhook-Id header, else do not process."""

    async def scenario(w: Worker) -> None:
        headers = sign_klaviyo(SECRET_OF["klaviyo"], body, NOW)  # correctly signed: only the id is wrong
        if header is not None:
            headers["Klaviyo-Webhook-Id"] = header
        assert (
            await w.client.post(f"{BASE}/webhooks/klaviyo", content=body, headers=headers)
        ).status_code == 401
        assert await w.settle() == []
        assert w.count("sync_webhooks_total", vendor="klaviyo", outcome=outcome) == 1

    with_worker(scenario)


@pytest.mark.parametrize(
    "timestamp",
    ["Fri, 01 May 2026 11:59:30 GMT", "2026-05-01T11:59:30Z", "1777636770", "1777636770000"],
    ids=["http-date", "iso-8601", "epoch-seconds", "epoch-millis"],
)
def test_klaviyo_signature_is_hmac_sha256_hex_of_body_then_timestamp(timestamp: str) -> None:
    """The assumed construction, computed here independently of ``sign_klaviyo``."""
    secret = SECRET_OF["klaviyo"]
    signature = hmac.new(secret.encode(), KLAVIYO_BODY + timestamp.encode(), hashlib.sha256).hexdigest()
    headers = {"klaviyo-signature": signature, "klaviyo-timestamp": timestamp, "klaviyo-webhook-id": "wh-1"}
    delivery = Delivery("POST", f"{BASE}/webhooks/klaviyo", headers, KLAVIYO_BODY)

    verify_klaviyo(delivery, NOW, secret)  # NOW is 12:00:00, 30 s later: no refusal
    with pytest.raises(WebhookRefused) as refused:
        verify_klaviyo(replace(delivery, body=KLAVIYO_BODY + b" "), NOW, secret)
    assert refused.value.reason is Refusal.BAD_SIGNATURE


def test_vendor_without_a_secret_refuses_everything_as_not_configured(
    with_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYNC_SHOPIFY__WEBHOOK_SECRET")

    async def scenario(w: Worker) -> None:
        url, body, headers = shopify_request("")
        assert (await w.client.post(url, content=body, headers=headers)).status_code == 401
        assert w.count("sync_webhooks_total", vendor="shopify", outcome="not_configured") == 1
        assert await w.settle() == []

    with_worker(scenario)


def test_unknown_vendor_is_not_found(with_worker: Any) -> None:
    async def scenario(w: Worker) -> None:
        assert (await w.client.post(f"{BASE}/webhooks/brevo", content=b"{}")).status_code == 404

    with_worker(scenario)


def test_bad_record_in_a_batch_is_reported_and_the_rest_still_runs(with_worker: Any) -> None:
    async def scenario(w: Worker) -> None:
        events = [*json.loads(HUBSPOT_BODY), {"eventId": 2, "subscriptionType": "contact.creation"}]
        body = json.dumps(events).encode()
        url = f"{BASE}/webhooks/hubspot"
        headers = sign_hubspot(SECRET_OF["hubspot"], "POST", url, body, NOW)
        response = await w.client.post(url, content=body, headers=headers)
        assert response.status_code == 200
        assert response.json() == {"facts": 1, "bad_records": 1, "run_started": True}
        (request,) = await w.settle()
        assert request.external_ids == {("hubspot", "501")}

    with_worker(scenario)


def test_verified_but_unreadable_body_gets_400_and_no_run(with_worker: Any) -> None:
    async def scenario(w: Worker) -> None:
        body = b"not json"
        headers = sign_shopify(SECRET_OF["shopify"], body)
        response = await w.client.post(f"{BASE}/webhooks/shopify", content=body, headers=headers)
        assert response.status_code == 400
        assert "not JSON" in response.json()["error"]
        assert await w.settle() == []

    with_worker(scenario)


def test_webhook_during_shutdown_gets_503_so_the_vendor_delivers_again(with_worker: Any) -> None:
    async def scenario(w: Worker) -> None:
        await w.dispatcher.drain(grace_seconds=0)
        url, body, headers = shopify_request(SECRET_OF["shopify"])
        assert (await w.client.post(url, content=body, headers=headers)).status_code == 503
        assert w.run.requests == []

    with_worker(scenario)
