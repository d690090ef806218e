"""Klaviyo system webhooks (VENDOR-APIS 2.6): ``Klaviyo-Signature`` with ``Klaviyo-Timestamp``.

How the signed string is built is UNCONFIRMED (only a third party describes it: HMAC-SHA256 over the raw
body followed by the timestamp, hex digest). So the order and the encoding are settings
(``SYNC_KLAVIYO__WEBHOOK_SIGNED_CONTENT``, ``SYNC_KLAVIYO__WEBHOOK_SIGNATURE_ENCODING``), defaulting to
that description. Klaviyo's guide also says ``meta.klaviyo_webhook_id`` must equal ``Klaviyo-Webhook-Id``.
Consent topic ids are UNCONFIRMED too: a topic is read by the words in it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    """Headers that make ``body`` a correctly signed Klaviyo delivery sent at ``now``."""
    timestamp = now.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {
        SIGNATURE_HEADER: (construction or Construction()).sign(secret, body, timestamp),
        TIMESTAMP_HEADER: timestamp,
    }


def _sent_at(raw: str) -> datetime:
    """Klaviyo-Timestamp: ISO 8601 or epoch seconds/milliseconds (the format is not documented)."""
    if raw.isdigit():
        seconds = int(raw) / 1000 if len(raw) > 11 else int(raw)
        return datetime.fromtimestamp(seconds, tz=UTC)
    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
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
    try:
        sent_at = _sent_at(timestamp)
    except (ValueError, OverflowError) as error:
        raise WebhookRefused(Refusal.UNSIGNED, f"{TIMESTAMP_HEADER} is not a time") from error
    check_signature(
        (construction or Construction()).sign(secret, delivery.body, timestamp), given, SIGNATURE_HEADER
    )
    check_fresh(sent_at, now, window, TIMESTAMP_HEADER)
    webhook_id = delivery.header(WEBHOOK_ID_HEADER)
    if webhook_id is not None:
        try:
            meta_id = json.loads(delivery.body).get("meta", {}).get("klaviyo_webhook_id")
        except (ValueError, AttributeError):
            meta_id = None
        if meta_id is not None and meta_id != webhook_id:
            raise WebhookRefused(Refusal.BAD_SIGNATURE, "meta.klaviyo_webhook_id differs from the header")


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
