"""The HubSpot sandbox's outgoing webhooks (VENDOR-APIS 4.7), signed with the worker's own ``sign_hubspot``.

HubSpot sends a JSON array of ``contact.propertyChange`` events. A person's opt-out shows on the contact as
``hs_email_optout`` (all email) and ``hs_email_optout_<subscription id>`` (one subscription), so every such
property an action changed becomes one event of the array. Events name the contact by ``objectId`` only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connectors.hubspot.sandbox_data import Contact
from connectors.webhook_sender import Build, Subscription, Webhook
from sync_worker.web.webhooks.hubspot import sign_hubspot

TOPIC = "contact.propertyChange"
WATCHED = "hs_email_optout"  # and every hs_email_optout_<id>
PORTAL_ID = 62515
APP_ID = 20001


def optouts(contact: Contact | None) -> dict[str, str]:
    """The opt-out properties of a contact, to compare before and after a person's action."""
    if contact is None:
        return {}
    return {k: v for k, v in contact.properties.items() if k.startswith(WATCHED)}


def events(contact: Contact, before: Mapping[str, str], now: datetime, source: str) -> list[dict[str, Any]]:
    after = optouts(contact)
    occurred = int(now.timestamp() * 1000)
    return [
        {
            "eventId": uuid.uuid4().int >> 97,  # HubSpot's ids are positive integers, unique per event
            "subscriptionId": 1,
            "portalId": PORTAL_ID,
            "appId": APP_ID,
            "occurredAt": occurred,
            "subscriptionType": TOPIC,
            "attemptNumber": 0,
            "objectId": contact.id,
            "changeSource": source,
            "propertyName": name,
            "propertyValue": value,
        }
        for name, value in sorted(after.items())
        if before.get(name) != value
    ]


def build(batch: list[dict[str, Any]], now: datetime) -> Build:
    body = json.dumps(batch).encode("utf-8")

    def signed(subscription: Subscription) -> Webhook:
        url = f"{subscription.url}/webhooks/hubspot"
        headers = {
            "Content-Type": "application/json",
            **sign_hubspot(subscription.secret, "POST", url, body, now),
        }
        return Webhook(TOPIC, "POST", url, headers, body)

    return signed
