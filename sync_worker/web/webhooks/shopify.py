"""Shopify webhooks: ``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of the raw body (VENDOR-APIS 3.6).

Shopify's signature carries no timestamp, so a Shopify delivery cannot be "stale"; replays are harmless
because the targeted run re-reads the customer and the ledger is idempotent on the webhook id.
"""

from __future__ import annotations

from datetime import datetime

from connectors.base import GlobalState, RecordError, Status
from sync_worker.trigger import WebhookFact
from sync_worker.web.webhooks.delivery import (
    Delivery,
    Parsed,
    PayloadError,
    b64,
    check_signature,
    email_or_error,
    hmac_sha256,
    json_body,
    require_header,
)

SYSTEM = "shopify"
SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"

# email_marketing_consent.state (REST, lower case) → our status; "redacted" is handled as erasure.
STATES = {
    "subscribed": Status.SUBSCRIBED,
    "unsubscribed": Status.UNSUBSCRIBED,
    "pending": Status.PENDING,
    "not_subscribed": Status.NOT_SUBSCRIBED,
}


def sign_shopify(secret: str, body: bytes) -> dict[str, str]:
    """Headers that make ``body`` a correctly signed Shopify delivery (for sandboxes and tests)."""
    return {SIGNATURE_HEADER: b64(hmac_sha256(secret, body))}


def verify_shopify(delivery: Delivery, secret: str) -> None:
    given = require_header(delivery, SIGNATURE_HEADER)
    check_signature(b64(hmac_sha256(secret, delivery.body)), given, SIGNATURE_HEADER)


def _when(raw: object) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_shopify(delivery: Delivery) -> Parsed:
    body = json_body(SYSTEM, delivery)
    if not isinstance(body, dict):
        raise PayloadError("shopify: body is not a JSON object")
    topic = delivery.header("X-Shopify-Topic") or "unknown"
    event_id = delivery.header("X-Shopify-Webhook-Id")
    if topic == "customers/data_request":
        return Parsed()  # an access request, not a consent fact: answered by `sync-worker export`
    if topic == "customers/redact":
        customer = body.get("customer") or {}
        customer_id = str(customer["id"]) if customer.get("id") is not None else None
        email, error = email_or_error(SYSTEM, customer_id, "customer.email", customer.get("email"))
        fact = WebhookFact(SYSTEM, topic, email, customer_id, event_id, global_state=GlobalState.ERASED)
        return Parsed((fact,) if email or customer_id else (), (error,) if error else ())
    # customers/create|update carry the customer; customers_email_marketing_consent/update carries
    # customer_id + email_address + the consent object.
    customer_id_raw = body.get("id", body.get("customer_id"))
    customer_id = str(customer_id_raw) if customer_id_raw is not None else None
    email_field = "email" if "email" in body else "email_address"
    email, error = email_or_error(SYSTEM, customer_id, email_field, body.get(email_field))
    errors: list[RecordError] = [error] if error else []
    consent = body.get("email_marketing_consent") or {}
    state = consent.get("state") if isinstance(consent, dict) else None
    status = STATES.get(state) if isinstance(state, str) else None
    global_state = GlobalState.ERASED if state == "redacted" else None
    if state is not None and status is None and global_state is None:
        errors.append(
            RecordError(SYSTEM, customer_id, "email_marketing_consent.state", f"unknown state {state!r}")
        )
    if email is None and customer_id is None:
        return Parsed((), tuple(errors))
    fact = WebhookFact(
        SYSTEM,
        topic,
        email,
        customer_id,
        event_id,
        occurred_at=_when(consent.get("consent_updated_at") if isinstance(consent, dict) else None),
        status=status,
        global_state=global_state,
    )
    return Parsed((fact,), tuple(errors))
