"""Vendor webhooks: one module per vendor with ``sign_<vendor>``, ``verify_<vendor>`` and ``parse_<vendor>``.

``build_receivers`` binds each vendor to its configured secret; a vendor without a secret still gets a
receiver that refuses everything (401 ``not_configured``), so a misconfiguration is visible in metrics.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import SecretStr

from config import Settings
from sync_worker.web.webhooks.delivery import Delivery, Parsed, Receiver, Refusal, WebhookRefused
from sync_worker.web.webhooks.hubspot import parse_hubspot, verify_hubspot
from sync_worker.web.webhooks.klaviyo import Construction, parse_klaviyo, verify_klaviyo
from sync_worker.web.webhooks.mailchimp import parse_mailchimp, verify_mailchimp
from sync_worker.web.webhooks.shopify import parse_shopify, verify_shopify


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None and value.get_secret_value() else None


def _refuse_all(vendor: str) -> Receiver:
    def verify(_delivery: Delivery, _now: datetime) -> None:
        raise WebhookRefused(Refusal.NOT_CONFIGURED, f"no webhook secret is set for {vendor}")

    def parse(_delivery: Delivery) -> Parsed:  # pragma: no cover - verify always refuses first
        return Parsed()

    return Receiver(vendor, verify, parse, answers_get=vendor == "mailchimp")


def build_receivers(settings: Settings) -> dict[str, Receiver]:
    window = timedelta(seconds=settings.http.webhook_max_age_seconds)
    receivers: dict[str, Receiver] = {}

    shopify = _secret(settings.shopify.webhook_secret)
    if shopify:
        receivers["shopify"] = Receiver("shopify", lambda d, _now: verify_shopify(d, shopify), parse_shopify)
    hubspot = _secret(settings.hubspot.client_secret)
    if hubspot:
        receivers["hubspot"] = Receiver(
            "hubspot", lambda d, now: verify_hubspot(d, now, hubspot, window), parse_hubspot
        )
    mailchimp = _secret(settings.mailchimp.webhook_secret)
    if mailchimp:
        receivers["mailchimp"] = Receiver(
            "mailchimp", lambda d, _now: verify_mailchimp(d, mailchimp), parse_mailchimp, answers_get=True
        )
    klaviyo = _secret(settings.klaviyo.webhook_secret)
    if klaviyo:
        construction = Construction(
            settings.klaviyo.webhook_signed_content, settings.klaviyo.webhook_signature_encoding
        )
        receivers["klaviyo"] = Receiver(
            "klaviyo", lambda d, now: verify_klaviyo(d, now, klaviyo, construction, window), parse_klaviyo
        )
    for vendor in settings.vendors():
        receivers.setdefault(vendor, _refuse_all(vendor))
    return receivers
