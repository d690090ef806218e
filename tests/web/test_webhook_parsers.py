"""Pure parsers: a vendor's webhook body becomes canonical facts about people, bad items are named."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

from connectors.base import GlobalState, Status
from sync_worker.web.webhooks.delivery import Delivery
from sync_worker.web.webhooks.hubspot import parse_hubspot
from sync_worker.web.webhooks.klaviyo import parse_klaviyo
from sync_worker.web.webhooks.mailchimp import parse_mailchimp
from sync_worker.web.webhooks.shopify import parse_shopify


def delivery(body: bytes, **headers: str) -> Delivery:
    return Delivery("POST", "http://w/webhooks/x", {k.lower(): v for k, v in headers.items()}, body)


def mailchimp(fields: dict[str, str]) -> Delivery:
    return delivery(urlencode(fields).encode())


def test_mailchimp_unsubscribe_is_a_withdrawal_with_the_vendor_time_and_reason() -> None:
    parsed = parse_mailchimp(
        mailchimp(
            {
                "type": "unsubscribe",
                "fired_at": "2026-04-30 08:15:00",
                "data[reason]": "manual",
                "data[id]": "m1",
                "data[email]": " Anna@Example.COM ",
            }
        )
    )
    (fact,) = parsed.facts
    assert fact.email == "anna@example.com"
    assert fact.status is Status.UNSUBSCRIBED
    assert fact.global_state is None
    assert fact.reason == "manual"
    assert fact.occurred_at == datetime(2026, 4, 30, 8, 15, tzinfo=UTC)


def test_mailchimp_abuse_unsubscribe_is_a_complaint() -> None:
    parsed = parse_mailchimp(
        mailchimp({"type": "unsubscribe", "data[reason]": "abuse", "data[email]": "a@example.com"})
    )
    assert parsed.facts[0].global_state is GlobalState.COMPLAINED


def test_mailchimp_cleaned_hard_bounce_is_undeliverable_not_a_withdrawal() -> None:
    parsed = parse_mailchimp(
        mailchimp({"type": "cleaned", "data[reason]": "hard", "data[email]": "a@example.com"})
    )
    (fact,) = parsed.facts
    assert fact.status is None
    assert fact.global_state is GlobalState.BOUNCED


def test_mailchimp_address_change_concerns_both_addresses() -> None:
    parsed = parse_mailchimp(
        mailchimp(
            {"type": "upemail", "data[old_email]": "old@example.com", "data[new_email]": "new@example.com"}
        )
    )
    assert [f.email for f in parsed.facts] == ["old@example.com", "new@example.com"]


def test_mailchimp_invalid_address_names_the_record_and_field() -> None:
    parsed = parse_mailchimp(
        mailchimp({"type": "unsubscribe", "data[id]": "m9", "data[email]": "no-at-sign"})
    )
    assert parsed.facts == ()
    (error,) = parsed.errors
    assert (error.system, error.record_id, error.field) == ("mailchimp", "m9", "data[email]")


def test_shopify_consent_update_carries_state_and_time() -> None:
    body = {
        "customer_id": 42,
        "email_address": "b@example.com",
        "email_marketing_consent": {"state": "unsubscribed", "consent_updated_at": "2026-04-30T10:00:00Z"},
    }
    parsed = parse_shopify(
        delivery(
            json.dumps(body).encode(),
            **{"X-Shopify-Topic": "customers_email_marketing_consent/update", "X-Shopify-Webhook-Id": "w-1"},
        )
    )
    (fact,) = parsed.facts
    assert (fact.email, fact.external_id, fact.event_id) == ("b@example.com", "42", "w-1")
    assert fact.status is Status.UNSUBSCRIBED
    assert fact.occurred_at == datetime(2026, 4, 30, 10, tzinfo=UTC)


def test_shopify_redact_is_an_erasure() -> None:
    body = {"shop_id": 1, "customer": {"id": 9, "email": "c@example.com"}, "orders_to_redact": []}
    parsed = parse_shopify(delivery(json.dumps(body).encode(), **{"X-Shopify-Topic": "customers/redact"}))
    assert parsed.facts[0].global_state is GlobalState.ERASED


def test_shopify_unknown_consent_state_is_reported_with_its_field() -> None:
    body = {"id": 3, "email": "d@example.com", "email_marketing_consent": {"state": "maybe"}}
    parsed = parse_shopify(delivery(json.dumps(body).encode(), **{"X-Shopify-Topic": "customers/update"}))
    assert parsed.errors[0].field == "email_marketing_consent.state"
    assert parsed.facts[0].status is None  # the person is still re-read by the targeted run


def test_hubspot_opt_out_of_all_email_is_an_objection() -> None:
    events = [
        {"eventId": 5, "objectId": 77, "subscriptionType": "contact.propertyChange",
         "propertyName": "hs_email_optout", "propertyValue": "true", "occurredAt": 1777636800000},
        {"eventId": 6, "objectId": 78, "subscriptionType": "contact.privacyDeletion"},
    ]  # fmt: skip
    parsed = parse_hubspot(delivery(json.dumps(events).encode()))
    optout, deletion = parsed.facts
    assert optout.global_state is GlobalState.UNSUBSCRIBED_ALL
    assert (optout.external_id, optout.email, optout.event_id) == ("77", None, "5")
    assert optout.occurred_at == datetime.fromtimestamp(1777636800, tz=UTC)
    assert deletion.global_state is GlobalState.ERASED


def test_hubspot_subscription_optout_change_asks_for_a_read_back() -> None:
    """The property names a subscription but the status, its time and legal basis live elsewhere."""
    events = [
        {"eventId": 7, "objectId": 77, "subscriptionType": "contact.propertyChange",
         "propertyName": "hs_email_optout_101", "propertyValue": "true", "occurredAt": 1777636800000},
        {"eventId": 8, "objectId": 77, "subscriptionType": "contact.propertyChange",
         "propertyName": "hs_email_optout", "propertyValue": "true", "occurredAt": 1777636800000},
    ]  # fmt: skip
    subscription, everything = parse_hubspot(delivery(json.dumps(events).encode())).facts
    assert subscription.read_back is True
    assert (subscription.status, subscription.global_state) == (None, None)
    assert subscription.reason == "hs_email_optout_101=true"
    assert everything.read_back is False  # its state is in the event itself


def test_klaviyo_unsubscribe_topic_and_spam_topic() -> None:
    def item(topic: str, email: str) -> dict[str, object]:
        return {
            "external_id": f"e-{email}",
            "topic": topic,
            "payload": {
                "attributes": {
                    "event_properties": {"$email": email},
                    "datetime": "2026-04-30T09:00:00+00:00",
                },
                "relationships": {"profile": {"data": {"id": "P" + email[0]}}},
            },
        }

    body = {"data": [item("event:klaviyo.unsubscribed_from_email_marketing", "u@example.com"),
                     item("event:klaviyo.marked_email_as_spam", "s@example.com")]}  # fmt: skip
    unsub, spam = parse_klaviyo(delivery(json.dumps(body).encode())).facts
    assert (unsub.status, unsub.global_state, unsub.external_id) == (Status.UNSUBSCRIBED, None, "Pu")
    assert spam.global_state is GlobalState.COMPLAINED
    assert unsub.occurred_at == datetime(2026, 4, 30, 9, tzinfo=UTC)
