"""Mailchimp webhooks (VENDOR-APIS 1.6): nothing is signed, so the URL carries a secret.

The secret may sit in the path (``/webhooks/mailchimp/<secret>``) or the query (``?secret=<secret>``).
Mailchimp validates the URL with a GET that must answer 200; events arrive as form-encoded POSTs with
``fired_at`` as ``YYYY-MM-DD HH:MM:SS`` (UTC, not ISO).
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

from connectors.base import GlobalState, RecordError, Status
from sync_worker.trigger import WebhookFact
from sync_worker.web.webhooks.delivery import (
    Delivery,
    Parsed,
    PayloadError,
    Refusal,
    WebhookRefused,
    check_signature,
    email_or_error,
)

SYSTEM = "mailchimp"
QUERY_KEY = "secret"


def sign_mailchimp(secret: str, base_url: str, fields: dict[str, str]) -> tuple[str, bytes]:
    """The URL (with the secret) and form body of a Mailchimp delivery, for sandboxes and tests."""
    return f"{base_url.rstrip('/')}/webhooks/mailchimp?{urlencode({QUERY_KEY: secret})}", urlencode(
        fields
    ).encode("ascii")


def verify_mailchimp(delivery: Delivery, secret: str) -> None:
    given = delivery.path_secret or delivery.query.get(QUERY_KEY)
    if not given:
        raise WebhookRefused(Refusal.UNSIGNED, "the URL carries no secret")
    check_signature(secret, given, "URL secret")


def _fired_at(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.strptime(raw, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _meaning(kind: str, fields: dict[str, str]) -> tuple[Status | None, GlobalState | None, str | None]:
    reason = fields.get("data[reason]")
    if kind == "unsubscribe":
        # reason=abuse is a spam complaint: an objection (R18), not just a withdrawal (R20).
        if reason == "abuse":
            return Status.UNSUBSCRIBED, GlobalState.COMPLAINED, reason
        return Status.UNSUBSCRIBED, None, reason or fields.get("data[action]")
    if kind == "cleaned":
        return None, GlobalState.COMPLAINED if reason == "abuse" else GlobalState.BOUNCED, reason
    if kind == "subscribe":
        # A subscribe webhook is not evidence of consent by itself (R8): the run re-reads the member.
        return Status.SUBSCRIBED, None, None
    return None, None, None


def parse_mailchimp(delivery: Delivery) -> Parsed:
    try:
        fields = dict(parse_qsl(delivery.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError as bad:
        raise PayloadError(f"mailchimp: body is not UTF-8 form data: {bad}") from bad
    kind = fields.get("type")
    if not kind:
        raise PayloadError("mailchimp: form field 'type' is missing")
    record_id = fields.get("data[id]") or fields.get("data[web_id]")
    status, global_state, reason = _meaning(kind, fields)
    fired_at = _fired_at(fields.get("fired_at"))
    errors: list[RecordError] = []
    facts: list[WebhookFact] = []
    # upemail carries old and new address: both people need a look (the old one may keep consent facts).
    email_fields = ("data[old_email]", "data[new_email]") if kind == "upemail" else ("data[email]",)
    for name in email_fields:
        email, error = email_or_error(SYSTEM, record_id, name, fields.get(name))
        if error:
            errors.append(error)
        if email:
            facts.append(
                WebhookFact(SYSTEM, kind, email, record_id, None, fired_at, status, global_state, reason)
            )
    if not facts and not errors:
        errors.append(RecordError(SYSTEM, record_id, email_fields[0], "missing"))
    return Parsed(tuple(facts), tuple(errors))
