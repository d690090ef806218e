"""Klaviyo system webhooks (VENDOR-APIS 2.6).

Documented by Klaviyo ("Working with system webhooks"; the API spec's ``secret_key``, "used for webhook
request signing"): every request carries ``Klaviyo-Webhook-Id``, ``Klaviyo-Signature`` (an HMAC-SHA256
keyed with the webhook's secret key) and ``Klaviyo-Timestamp`` (when it was sent), and
``meta.klaviyo_webhook_id`` in the body must equal the ``Klaviyo-Webhook-Id`` header, else the request
is not to be processed. All of that is required here: a request missing any of it is refused.

Assumed (UNCONFIRMED, only third parties describe it): the signed bytes are the raw body followed by the
``Klaviyo-Timestamp`` value, as a hex digest; both parts are settings (``SYNC_KLAVIYO__WEBHOOK_SIGNED_
CONTENT``, ``SYNC_KLAVIYO__WEBHOOK_SIGNATURE_ENCODING``) defaulting to that description. The timestamp's
format (third parties show an HTTP date; ISO 8601 and epoch seconds or milliseconds are read too) and
the 5-minute replay window (Klaviyo documents none; the same window as HubSpot's) are ours as well.
Consent topic ids are UNCONFIRMED too: a topic is read by the words in it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, Literal

from connectors.base import GlobalState, RecordError, Status
from sync_worker.trigger import WebhookFact
from sync_worker.web.webhooks.delivery import (
    Delivery,
    Parsed,
    PayloadError,
    Refusal,
    WebhookRefused,
    b64,
    check_fresh,
    check_signature,
    email_or_error,
    hmac_sha256,
    json_body,
    parse_items,
    require_header,
)

SYSTEM = "klaviyo"
SIGNATURE_HEADER = "Klaviyo-Signature"
TIMESTAMP_HEADER = "Klaviyo-Timestamp"
WEBHOOK_ID_HEADER = "Klaviyo-Webhook-Id"
WINDOW = timedelta(minutes=5)

SignedContent = Literal["body_timestamp", "timestamp_body"]
Encoding = Literal["hex", "base64"]


@dataclass(frozen=True, slots=True)
class Construction:
    content: SignedContent = "body_timestamp"
    encoding: Encoding = "hex"

    def sign(self, secret: str, body: bytes, timestamp: str) -> str:
        stamp = timestamp.encode("utf-8")
        digest = hmac_sha256(secret, body + stamp if self.content == "body_timestamp" else stamp + body)
        return digest.hex() if self.encoding == "hex" else b64(digest)


def sign_klaviyo(
    secret: str, body: bytes, now: datetime, construction: Construction | None = None
) -> dict[str, str]:
    """Headers that make ``body`` a correctly signed Klaviyo delivery sent at ``now``.

    The caller adds ``Klaviyo-Webhook-Id``, which must equal the body's ``meta.klaviyo_webhook_id``.
    """
    timestamp = format_datetime(now.astimezone(UTC).replace(microsecond=0), usegmt=True)
    return {
        SIGNATURE_HEADER: (construction or Construction()).sign(secret, body, timestamp),
        TIMESTAMP_HEADER: timestamp,
    }


def _sent_at(raw: str) -> datetime:
    """Klaviyo-Timestamp: an HTTP date, ISO 8601 or epoch seconds/milliseconds (the format is not documented)."""
    if raw.isdigit():
        seconds = int(raw) / 1000 if len(raw) > 11 else int(raw)
        return datetime.fromtimestamp(seconds, tz=UTC)
    http_date = "," in raw  # "Tue, 14 Apr 2026 03:50:12 GMT"
    parsed = parsedate_to_datetime(raw) if http_date else datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def verify_klaviyo(
    delivery: Delivery,
    now: datetime,
    secret: str,
    construction: Construction | None = None,
    window: timedelta = WINDOW,
) -> None:
    given = require_header(delivery, SIGNATURE_HEADER)
    timestamp = require_header(delivery, TIMESTAMP_HEADER)
    webhook_id = require_header(delivery, WEBHOOK_ID_HEADER)
    try:
        sent_at = _sent_at(timestamp)
    except (ValueError, OverflowError, TypeError) as error:
        raise WebhookRefused(Refusal.UNSIGNED, f"{TIMESTAMP_HEADER} is not a time") from error
    check_signature(
        (construction or Construction()).sign(secret, delivery.body, timestamp), given, SIGNATURE_HEADER
    )
    check_fresh(sent_at, now, window, TIMESTAMP_HEADER)
    # After the signature: the body is Klaviyo's, so a differing id means a delivery meant for another
    # webhook (Klaviyo: "you should not process the webhook").
    if _meta_webhook_id(delivery.body) != webhook_id:
        raise WebhookRefused(
            Refusal.WEBHOOK_ID_MISMATCH,
            f"meta.klaviyo_webhook_id is missing or differs from {WEBHOOK_ID_HEADER}",
        )


def _meta_webhook_id(body: bytes) -> object:
    try:
        meta = json.loads(body).get("meta")
    except (ValueError, AttributeError):
        return None
    return meta.get("klaviyo_webhook_id") if isinstance(meta, dict) else None


def _meaning(topic: str) -> tuple[Status | None, GlobalState | None]:
    words = topic.lower()
    if "spam" in words:
        return Status.UNSUBSCRIBED, GlobalState.COMPLAINED
    if "unsubscribe" in words:
        return Status.UNSUBSCRIBED, None
    if "bounce" in words:
        return None, GlobalState.BOUNCED
    if "subscribe" in words:
        return Status.SUBSCRIBED, None
    return None, None


def _fact(item: dict[str, Any], index: int) -> tuple[WebhookFact | None, RecordError | None]:
    topic = str(item.get("topic", "unknown"))
    payload = item.get("payload") or {}
    event = payload.get("data", payload) if isinstance(payload, dict) else {}
    attributes = event.get("attributes") or {}
    properties = attributes.get("event_properties") or {}
    profile = ((event.get("relationships") or {}).get("profile") or {}).get("data") or {}
    profile_id = profile.get("id")
    record_id = str(profile_id) if profile_id else str(item.get("external_id") or f"data[{index}]")
    raw_email = properties.get("$email", properties.get("email"))
    email, error = email_or_error(SYSTEM, record_id, "payload.attributes.event_properties.$email", raw_email)
    if email is None and profile_id is None:
        return None, error or RecordError(SYSTEM, record_id, "payload.relationships.profile", "missing")
    when = attributes.get("datetime")
    try:
        occurred_at = datetime.fromisoformat(when.replace("Z", "+00:00")) if isinstance(when, str) else None
    except ValueError:
        occurred_at = None
    status, global_state = _meaning(topic)
    event_id = item.get("external_id") or event.get("id")
    fact = WebhookFact(
        SYSTEM,
        topic,
        email,
        str(profile_id) if profile_id else None,
        str(event_id) if event_id else None,
        occurred_at,
        status,
        global_state,
    )
    return fact, error


def parse_klaviyo(delivery: Delivery) -> Parsed:
    body = json_body(SYSTEM, delivery)
    items = body.get("data") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise PayloadError("klaviyo: body has no 'data' array")
    return parse_items(SYSTEM, items, "data", _fact)
