"""One webhook delivery as the verifiers see it, the reasons to refuse it, and the shared HMAC pieces.

Verifiers and parsers are pure: they get a ``Delivery`` and ``now`` and do no I/O, so every vendor's
rules are unit-tested without a server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from connectors.base import RecordError
from sync_worker.identity import InvalidEmailError, normalise_email
from sync_worker.trigger import WebhookFact


class Refusal(StrEnum):
    """Why a delivery gets 401; also the ``outcome`` label of the webhook counter."""

    NOT_CONFIGURED = "not_configured"  # no secret set for this vendor: nothing can be verified
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"
    STALE = "stale"
    WEBHOOK_ID_MISMATCH = "webhook_id_mismatch"  # Klaviyo: the body's webhook id is not the header's


class WebhookRefused(Exception):  # noqa: N818 - a refusal is an outcome, not a programming error
    def __init__(self, reason: Refusal, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class PayloadError(ValueError):
    """A verified delivery whose body cannot be read at all (not JSON / not a form)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    method: str
    url: str  # the URL the vendor called (HubSpot signs it)
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    path_secret: str | None = None  # /webhooks/<vendor>/<secret>

    def header(self, name: str) -> str | None:
        value = self.headers.get(name.lower())
        return value if value else None


@dataclass(frozen=True, slots=True)
class Parsed:
    facts: tuple[WebhookFact, ...] = ()
    errors: tuple[RecordError, ...] = ()


@dataclass(frozen=True, slots=True)
class Receiver:
    """A vendor's verifier and parser, bound to its configured secret."""

    vendor: str
    verify: Callable[[Delivery, datetime], None]
    parse: Callable[[Delivery], Parsed]
    answers_get: bool = False  # Mailchimp validates the URL with a GET


def hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def require_header(delivery: Delivery, name: str) -> str:
    value = delivery.header(name)
    if value is None:
        raise WebhookRefused(Refusal.UNSIGNED, f"header {name} is missing")
    return value


def check_signature(expected: str, given: str, header: str) -> None:
    # Constant-time: a timing difference would let an attacker guess the signature byte by byte.
    if not hmac.compare_digest(expected.encode("utf-8"), given.strip().encode("utf-8")):
        raise WebhookRefused(Refusal.BAD_SIGNATURE, f"{header} does not match")


def check_fresh(sent_at: datetime, now: datetime, window: timedelta, header: str) -> None:
    # A replayed (captured) delivery is refused once it is older than the window, and so is one from the future.
    if abs(now - sent_at) > window:
        raise WebhookRefused(Refusal.STALE, f"{header} is {abs(now - sent_at)} away from now")


def email_or_error(
    system: str, record_id: str | None, field_name: str, raw: object
) -> tuple[str | None, RecordError | None]:
    """Normalise an address from a payload, or say which record and field is wrong."""
    if raw is None or raw == "":
        return None, None
    if not isinstance(raw, str):
        return None, RecordError(
            system, record_id, field_name, f"expected a string, got {type(raw).__name__}"
        )
    try:
        return normalise_email(raw), None
    except InvalidEmailError as error:
        return None, RecordError(system, record_id, field_name, f"invalid e-mail address: {error}")


FactOf = Callable[[dict[str, Any], int], tuple[WebhookFact | None, RecordError | None]]


def json_body(system: str, delivery: Delivery) -> Any:
    """The delivery's JSON body, or a PayloadError naming the vendor."""
    try:
        return json.loads(delivery.body)
    except ValueError as bad:
        raise PayloadError(f"{system}: body is not JSON: {bad}") from bad


def parse_items(system: str, items: Sequence[Any], label: str, fact_of: FactOf) -> Parsed:
    """Facts of a batch of events; a bad item is reported by its index and the batch goes on."""
    facts: list[WebhookFact] = []
    errors: list[RecordError] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(RecordError(system, f"{label}[{index}]", label, "not a JSON object"))
            continue
        fact, error = fact_of(item, index)
        facts.extend([fact] if fact else [])
        errors.extend([error] if error else [])
    return Parsed(tuple(facts), tuple(errors))
