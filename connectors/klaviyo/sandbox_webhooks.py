"""The Klaviyo sandbox's outgoing system webhooks (VENDOR-APIS 2.6), signed with the worker's ``sign_klaviyo``.

The body is ``{"data": [{"external_id", "topic", "payload"}], "meta": {"klaviyo_webhook_id"}}`` with the
payload shaped like Get Event. Klaviyo's consent topic ids are UNCONFIRMED; the sandbox uses the metric
names (``event:klaviyo.unsubscribed_from_email_marketing`` and so on), which the worker reads by their words.
The signature uses the worker's default construction (body + timestamp, hex), itself UNCONFIRMED.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from connectors.base import Status
from connectors.klaviyo.sandbox_data import Profile, stamp
from connectors.webhook_sender import Build, Subscription, Webhook
from sync_worker.web.webhooks.klaviyo import WEBHOOK_ID_HEADER, sign_klaviyo

TOPICS = {
    (True, Status.SUBSCRIBED): "event:klaviyo.subscribed_to_email_marketing",
    (True, Status.UNSUBSCRIBED): "event:klaviyo.unsubscribed_from_email_marketing",
    (False, Status.SUBSCRIBED): "event:klaviyo.subscribed_to_list",
    (False, Status.UNSUBSCRIBED): "event:klaviyo.unsubscribed_from_list",
}


def topic(consent_purpose: bool, status: Status) -> str | None:
    """The topic a person's change fires; None for changes Klaviyo records no event for."""
    return TOPICS.get((consent_purpose, status))


def item(event_topic: str, profile: Profile, now: datetime, list_id: str | None) -> dict[str, Any]:
    event_id = uuid.uuid4().hex
    properties: dict[str, Any] = {"$email": profile.email}
    if list_id is not None:
        properties["List"] = list_id
    return {
        "external_id": event_id,
        "topic": event_topic,
        "payload": {
            "type": "event",
            "id": event_id,
            "attributes": {
                "timestamp": int(now.timestamp()),
                "datetime": stamp(now),
                "uuid": str(uuid.uuid4()),
                "event_properties": properties,
            },
            "relationships": {"profile": {"data": {"type": "profile", "id": profile.id}}},
        },
    }


def build(entry: dict[str, Any], now: datetime) -> Build:
    def signed(subscription: Subscription) -> Webhook:
        # One webhook id per subscription; Klaviyo repeats it in the header and in meta.
        webhook_id = uuid.uuid5(uuid.NAMESPACE_URL, subscription.url).hex
        body = json.dumps({"data": [entry], "meta": {"klaviyo_webhook_id": webhook_id}}).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            WEBHOOK_ID_HEADER: webhook_id,
            **sign_klaviyo(subscription.secret, body, now),
        }
        return Webhook(entry["topic"], "POST", f"{subscription.url}/webhooks/klaviyo", headers, body)

    return signed
