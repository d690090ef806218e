"""Pure translation between HubSpot JSON and canonical records. No I/O.

A contact is a CRM object (``properties`` are all strings) plus its communication-preference statuses,
one per subscription type. Each purpose maps to one subscription type id (config). ``hs_email_optout`` is
"opted out of all email": an objection (R17), carried as ``GlobalState.UNSUBSCRIBED_ALL``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.base import (
    Action,
    Basis,
    Change,
    ContactRecord,
    Evidence,
    GlobalState,
    PurposeState,
    RecordError,
    Status,
)
from connectors.fields import FieldError, email_field, time_field

SYSTEM = "hubspot"
CONTACT_PROPERTIES = ("email", "hs_email_optout", "lastmodifieddate", "createdate")

JSON = dict[str, Any]

STATUS = {
    "SUBSCRIBED": Status.SUBSCRIBED,
    "UNSUBSCRIBED": Status.UNSUBSCRIBED,
    "NOT_SPECIFIED": Status.NOT_SUBSCRIBED,
}
STATUS_STATE = {Action.SUBSCRIBE: "SUBSCRIBED", Action.UNSUBSCRIBE: "UNSUBSCRIBED"}
# HubSpot's legalBasis enum has no plain "consent" or "soft opt-in": these are the values that mean them.
LEGAL_BASIS = {Basis.CONSENT: "CONSENT_WITH_NOTICE", Basis.SOFT_OPT_IN: "LEGITIMATE_INTEREST_CLIENT"}


def to_millis(moment: datetime) -> int:
    """HubSpot search compares datetime properties as epoch milliseconds."""
    return int(moment.timestamp() * 1000)


def parse_time(value: object, field: str) -> datetime:
    """An ISO-8601 timestamp (``2024-05-01T10:00:00.123Z``) or epoch milliseconds, in UTC; else FieldError."""
    if isinstance(value, str) and value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    return time_field(value, field, required=True).astimezone(UTC)


def status_key(email: str) -> str:
    """HubSpot echoes addresses as it stores them; match them case-insensitively."""
    return email.strip().lower()


def contact_email(obj: Mapping[str, Any]) -> str | RecordError:
    """The contact's normalised address, or why it has none usable."""
    record_id = str(obj.get("id")) if obj.get("id") is not None else None
    properties = obj.get("properties")
    if not isinstance(properties, Mapping):
        return RecordError(SYSTEM, record_id, "properties", "missing or not an object")
    try:
        return email_field(properties.get("email"), "properties.email")
    except FieldError as error:
        return error.for_record(SYSTEM, record_id)


def contact_record(
    obj: Mapping[str, Any],
    statuses: Sequence[Mapping[str, Any]],
    subscriptions: Mapping[str, str],
    opted_out_at: datetime | None = None,
) -> ContactRecord | RecordError:
    """One CRM contact plus its v4 statuses → a ContactRecord over the configured purposes."""
    email = contact_email(obj)
    if isinstance(email, RecordError):
        return email
    record_id = str(obj["id"])
    properties: Mapping[str, Any] = obj["properties"]
    try:
        stamp = properties.get("lastmodifieddate") or obj.get("updatedAt")
        updated_at = parse_time(stamp, "properties.lastmodifieddate")
        purposes, evidence = _purposes(statuses, subscriptions)
    except FieldError as error:
        return error.for_record(SYSTEM, record_id)
    optout = opted_out(obj)
    return ContactRecord(
        system=SYSTEM,
        external_id=record_id,
        email=email,
        updated_at=updated_at,
        purposes=tuple(purposes),
        # R17: "opted out of all email" is an objection to every marketing purpose, not a per-purpose flag.
        global_state=GlobalState.UNSUBSCRIBED_ALL if optout else GlobalState.ACTIVE,
        # The wide status's own stamp when HubSpot gave it; else the contact's last change bounds it from above.
        global_changed_at=(opted_out_at or updated_at) if optout else None,
        reason="opted out of all email (hs_email_optout)" if optout else None,
        evidence=evidence,
    )


def subscription_record(
    email: str,
    contact_id: str,
    statuses: Sequence[Mapping[str, Any]],
    subscriptions: Mapping[str, str],
    opted_out_at: datetime | None,
) -> ContactRecord | RecordError:
    """One contact from its v4 statuses and its "opted out of all email" status alone (a targeted read).

    The wide status stands in for ``hs_email_optout``: HubSpot keeps the two in step. The contact's
    last change is the newest stamp HubSpot gave.
    """
    try:
        purposes, evidence = _purposes(statuses, subscriptions)
    except FieldError as error:
        return error.for_record(SYSTEM, contact_id)
    stamps = [p.changed_at for p in purposes if p.changed_at is not None]
    stamps += [opted_out_at] if opted_out_at is not None else []
    return ContactRecord(
        system=SYSTEM,
        external_id=contact_id,
        email=email,
        updated_at=max(stamps) if stamps else None,
        purposes=tuple(purposes),
        global_state=GlobalState.UNSUBSCRIBED_ALL if opted_out_at else GlobalState.ACTIVE,
        global_changed_at=opted_out_at,
        reason="opted out of all email (unsubscribe-all status)" if opted_out_at else None,
        evidence=evidence,
    )


def _purposes(
    statuses: Sequence[Mapping[str, Any]], subscriptions: Mapping[str, str]
) -> tuple[list[PurposeState], Evidence | None]:
    """The configured purposes' states from the v4 statuses, and the first subscription's evidence."""
    by_id: dict[str, Mapping[str, Any]] = {}
    for status in statuses:
        by_id[str(status.get("subscriptionId"))] = status
    purposes = []
    evidence: Evidence | None = None
    for purpose, subscription_id in subscriptions.items():
        found = by_id.get(str(subscription_id))
        if found is None:
            purposes.append(PurposeState(purpose, Status.NOT_SUBSCRIBED))
            continue
        state = STATUS.get(str(found.get("status")))
        if state is None:
            raise FieldError(f"statuses[{subscription_id}].status", f"unknown status {found.get('status')!r}")
        changed_at = parse_time(found.get("timestamp"), f"statuses[{subscription_id}].timestamp")
        purposes.append(PurposeState(purpose, state, changed_at))
        if state is Status.SUBSCRIBED and evidence is None:
            evidence = status_evidence(found, changed_at)
    return purposes, evidence


def status_evidence(status: Mapping[str, Any], changed_at: datetime) -> Evidence:
    """HubSpot tells the legal basis and the source of a subscription; that is all it attests (R5)."""
    basis = status.get("legalBasis")
    explanation = status.get("legalBasisExplanation")
    detail = "; ".join(str(part) for part in (f"legalBasis={basis}" if basis else None, explanation) if part)
    return Evidence(
        consent_at=changed_at if basis == "CONSENT_WITH_NOTICE" else None,
        method=str(status.get("source")) if status.get("source") else None,
        collection_point="hubspot:subscription",
        detail=detail or None,
    )


def statuses_by_email(body: Mapping[str, Any]) -> dict[str, list[Mapping[str, Any]]]:
    """v4 batch read results keyed by address."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for result in body.get("results") or []:
        email = result.get("subscriberIdString")
        if isinstance(email, str):
            out[status_key(email)] = list(result.get("statuses") or [])
    return out


def opt_out_times(body: Mapping[str, Any]) -> dict[str, datetime]:
    """From a wide-status read: when each address opted out of all email (portal-wide preferred)."""
    out: dict[str, datetime] = {}
    for result in body.get("results") or []:
        email = result.get("subscriberIdString")
        wide = [w for w in result.get("wideStatuses") or [] if w.get("status") == "UNSUBSCRIBED"]
        wide.sort(key=lambda w: w.get("wideStatusType") != "PORTAL_WIDE")
        for status in wide[:1]:
            try:
                out[status_key(str(email))] = parse_time(status.get("timestamp"), "wideStatuses.timestamp")
            except ValueError:
                continue  # a bad stamp only costs precision: the record falls back to lastmodifieddate
    return out


def opted_out(obj: Mapping[str, Any]) -> bool:
    properties = obj.get("properties") or {}
    return str(properties.get("hs_email_optout") or "").lower() == "true"


def error_subjects(errors: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str | None], str]:
    """Per-item errors of a batch: (address, subscription id or None) → HubSpot's message.

    HubSpot names the failing input in the error's ``context`` (lists of strings per key).
    """
    out: dict[tuple[str, str | None], str] = {}
    for error in errors:
        context = error.get("context") or {}
        message = f"{error.get('category', 'ERROR')}: {error.get('message', '')}".strip()
        subscription_ids: list[str | None] = [str(i) for i in context.get("subscriptionId") or []] or [None]
        for email in context.get("subscriberIdString") or context.get("emailAddress") or []:
            for subscription_id in subscription_ids:
                out[(status_key(str(email)), subscription_id)] = message
    return out


def status_input(change: Change, subscription_id: str, explanation: str) -> JSON | str:
    """The v4 PublicStatusRequest for one change, or the reason it cannot be sent."""
    if not subscription_id.isdigit():
        return f"subscription id {subscription_id!r} for purpose {change.purpose!r} is not numeric"
    item: JSON = {
        "subscriberIdString": change.email,
        "subscriptionId": int(subscription_id),
        "statusState": STATUS_STATE[change.action],
        "channel": "EMAIL",
    }
    if change.action is Action.SUBSCRIBE:
        basis = LEGAL_BASIS.get(change.basis)
        if basis is None:
            return "a subscribe needs a legal basis (consent or soft opt-in); none was given"
        item["legalBasis"] = basis
        item["legalBasisExplanation"] = explanation
    elif change.basis in LEGAL_BASIS:
        item["legalBasis"] = LEGAL_BASIS[change.basis]
        item["legalBasisExplanation"] = explanation
    return item


def rounds(items: list[tuple[Change, JSON]], size: int) -> list[list[list[tuple[Change, JSON]]]]:
    """Rounds of vendor-sized batches; no (address, subscription) pair appears twice in a round."""
    rounds: list[list[tuple[Change, JSON]]] = []
    keys: list[set[tuple[str, int]]] = []
    for change, item in items:
        key = (status_key(change.email), int(item["subscriptionId"]))
        for index, taken in enumerate(keys):
            if key not in taken:
                rounds[index].append((change, item))
                taken.add(key)
                break
        else:
            rounds.append([(change, item)])
            keys.append({key})
    return [[r[i : i + size] for i in range(0, len(r), size)] for r in rounds]


def next_after(body: Mapping[str, Any]) -> str | None:
    after = ((body.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after not in (None, "") else None
