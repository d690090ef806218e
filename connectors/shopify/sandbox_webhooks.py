"""The Shopify sandbox's outgoing webhooks (VENDOR-APIS 3.6), signed with the worker's own ``sign_shopify``.

A consent change fires ``customers_email_marketing_consent/update`` with Shopify's REST payload
(``customer_id``, ``email_address``, ``email_marketing_consent`` in lower case); a change of a tag purpose
fires ``customers/update`` with the customer as REST renders it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from connectors.shopify.sandbox_data import Customer
from connectors.webhook_sender import Build, Subscription, Webhook
from sync_worker.web.webhooks.shopify import sign_shopify

CONSENT_TOPIC = "customers_email_marketing_consent/update"  # REST form of the GraphQL enum
UPDATE_TOPIC = "customers/update"


def _consent(customer: Customer) -> dict[str, Any]:
    return {
        "state": customer.marketing_state.lower(),
        "opt_in_level": customer.opt_in_level.lower() if customer.opt_in_level else None,
        "consent_updated_at": customer.consent_updated_at,
    }


def payload(topic: str, customer: Customer) -> dict[str, Any]:
    if topic == CONSENT_TOPIC:
        return {
            "customer_id": customer.id,
            "email_address": customer.email,
            "email_marketing_consent": _consent(customer),
        }
    return {
        "id": customer.id,
        "email": customer.email,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "tags": ", ".join(customer.tags),
        "email_marketing_consent": _consent(customer),
    }


def build(topic: str, customer: Customer, shop: str, api_version: str) -> Build:
    # The body is rendered now, so a later change cannot leak into this delivery.
    body = json.dumps(payload(topic, customer)).encode("utf-8")

    def signed(subscription: Subscription) -> Webhook:
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": shop,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-API-Version": api_version,
            **sign_shopify(subscription.secret, body),
        }
        return Webhook(topic, "POST", f"{subscription.url}/webhooks/shopify", headers, body)

    return signed
