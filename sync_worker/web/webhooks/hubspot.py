"""HubSpot webhooks, signature v3 (VENDOR-APIS 4.7).

``X-HubSpot-Signature-v3`` = base64(HMAC-SHA256(client secret, method + uri + body + timestamp)) over
UTF-8, with ``X-HubSpot-Request-Timestamp`` in milliseconds; deliveries older than 5 minutes are refused.
The payload names contacts by ``objectId`` only: the targeted run resolves the address. A change of one
subscription's opt-out property carries no usable state, so its fact asks the run to read the contact's
statuses from HubSpot (``read_back``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import GlobalState, RecordError
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

SYSTEM = "hubspot"
SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
WINDOW = timedelta(minutes=5)
# hs_email_optout_<subscription id>: one subscription's opt-out property (VENDOR-APIS 4.2)
SUBSCRIPTION_OPTOUT = "hs_email_optout_"


# HubSpot signs the URI with these escapes decoded (developers.hubspot.com, "Validating requests", v3);
# every other escape stays as it is.
DECODED_ESCAPES = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
ESCAPE = re.compile("|".join(DECODED_ESCAPES), re.IGNORECASE)


def _signed_string(method: str, uri: str, body: bytes, timestamp: str) -> bytes:
    uri = ESCAPE.sub(lambda m: DECODED_ESCAPES[m.group(0).upper()], uri)
    return method.upper().encode("utf-8") + uri.encode("utf-8") + body + timestamp.encode("utf-8")


def sign_hubspot(secret: str, method: str, uri: str, body: bytes, now: datetime) -> dict[str, str]:
    """Headers that make this request a correctly signed HubSpot v3 delivery sent at ``now``."""
    timestamp = str(int(now.timestamp() * 1000))
    return {
        SIGNATURE_HEADER: b64(hmac_sha256(secret, _signed_string(method, uri, body, timestamp))),
        TIMESTAMP_HEADER: timestamp,
    }


def verify_hubspot(delivery: Delivery, now: datetime, secret: str, window: timedelta = WINDOW) -> None:
    given = require_header(delivery, SIGNATURE_HEADER)
    timestamp = require_header(delivery, TIMESTAMP_HEADER)
    try:
        sent_at = datetime.fromtimestamp(int(timestamp) / 1000, tz=UTC)
    except (ValueError, OverflowError) as error:
        raise WebhookRefused(Refusal.UNSIGNED, f"{TIMESTAMP_HEADER} is not milliseconds") from error
    # Signature first: a forged request learns nothing about our clock.
    expected = b64(
        hmac_sha256(secret, _signed_string(delivery.method, delivery.url, delivery.body, timestamp))
    )
    check_signature(expected, given, SIGNATURE_HEADER)
    check_fresh(sent_at, now, window, TIMESTAMP_HEADER)


def _fact(event: dict[str, Any], index: int) -> tuple[WebhookFact | None, RecordError | None]:
    object_id = event.get("objectId")
    record_id = str(object_id) if object_id is not None else None
    if record_id is None:
        return None, RecordError(SYSTEM, f"event[{index}]", "objectId", "missing")
    kind = str(event.get("subscriptionType", "unknown"))
    prop, value = event.get("propertyName"), event.get("propertyValue")
    occurred = event.get("occurredAt")
    occurred_at = datetime.fromtimestamp(occurred / 1000, tz=UTC) if isinstance(occurred, int) else None
    event_id = str(event["eventId"]) if event.get("eventId") is not None else None
    email, error = (None, None)
    global_state = None
    reason = None
    read_back = False
    if kind == "contact.privacyDeletion":
        global_state = GlobalState.ERASED
    elif kind == "contact.propertyChange" and prop == "hs_email_optout":
        # "Unsubscribed from all email" is an objection to all direct marketing (R17).
        global_state = GlobalState.UNSUBSCRIBED_ALL if str(value).lower() == "true" else GlobalState.ACTIVE
        reason = f"hs_email_optout={value}"
    elif kind == "contact.propertyChange" and str(prop).startswith(SUBSCRIPTION_OPTOUT):
        # One subscription's opt-out changed; which purpose that is, and its status with the time and the
        # legal basis, come from the statuses endpoint (a targeted read), not from this string.
        read_back = True
        reason = f"{prop}={value}"
    elif kind == "contact.propertyChange" and prop == "email":
        email, error = email_or_error(SYSTEM, record_id, "propertyValue", value)
    topic = f"{kind}:{prop}" if prop else kind
    fact = WebhookFact(
        SYSTEM,
        topic,
        email,
        record_id,
        event_id,
        occurred_at,
        global_state=global_state,
        reason=reason,
        read_back=read_back,
    )
    return fact, error


def parse_hubspot(delivery: Delivery) -> Parsed:
    body = json_body(SYSTEM, delivery)
    if not isinstance(body, list):
        raise PayloadError("hubspot: body is not a JSON array of events")
    return parse_items(SYSTEM, body, "event", _fact)
