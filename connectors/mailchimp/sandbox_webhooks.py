"""The Mailchimp sandbox's outgoing webhooks (VENDOR-APIS 1.6), addressed with the worker's ``sign_mailchimp``.

Mailchimp signs nothing: the secret travels in the URL. Saving a webhook makes Mailchimp check the URL with
a GET; events are form-encoded POSTs (``type=unsubscribe|subscribe|profile``, ``fired_at`` as
``YYYY-MM-DD HH:MM:SS``, ``data[...]`` fields). Only changes by the person or an admin fire here (the
``sources`` user/admin); the worker's own API writes (source api) do not.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.webhook_sender import Build, Subscription, Webhook
from sync_worker.web.webhooks.mailchimp import sign_mailchimp

CONTENT_TYPE = "application/x-www-form-urlencoded"


def validation(subscription: Subscription) -> Webhook:
    url, _body = sign_mailchimp(subscription.secret, subscription.url, {})
    return Webhook("validate", "GET", url)


def kind(before: str, after: str) -> str:
    """The event type for a member whose status went from ``before`` to ``after``."""
    if after != before and after in ("unsubscribed", "subscribed"):
        return "unsubscribe" if after == "unsubscribed" else "subscribe"
    return "profile"  # interests, tags or permissions changed


def fields(event: str, member: dict[str, Any], now: datetime) -> dict[str, str]:
    out = {
        "type": event,
        "fired_at": now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "data[id]": str(member["id"]),
        "data[email]": str(member["email_address"]),
        "data[email_type]": str(member.get("email_type", "html")),
        "data[list_id]": str(member["list_id"]),
        "data[web_id]": str(member.get("web_id", "")),
        "data[ip_opt]": str(member.get("ip_opt", "")),
    }
    for name, value in (member.get("merge_fields") or {}).items():
        out[f"data[merges][{name}]"] = str(value)
    if event == "unsubscribe":
        out["data[action]"] = "unsub"
        out["data[reason]"] = "manual"  # the person clicked unsubscribe; "abuse" is a spam complaint
    return out


def build(event: str, member: dict[str, Any], now: datetime) -> Build:
    form = fields(event, member, now)

    def addressed(subscription: Subscription) -> Webhook:
        url, body = sign_mailchimp(subscription.secret, subscription.url, form)
        return Webhook(event, "POST", url, {"Content-Type": CONTENT_TYPE}, body)

    return addressed
