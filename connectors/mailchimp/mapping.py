"""Mailchimp member JSON <-> canonical records. Pure: no I/O, no clock.

Purposes map onto one of four Mailchimp constructs (config ``SYNC_MAILCHIMP__PURPOSES``):

- ``status``: the member's audience status itself (subscribed / unsubscribed / pending ...);
- ``interest:<id>``: an interest (group) of the audience, ``interests[id]``;
- ``tag:<name>``: a member tag;
- ``permission:<id>``: a GDPR marketing permission, ``marketing_permissions[].enabled``.

Whatever the construct, the audience status bounds it: an unsubscribed member gets no mail from the
audience at all, so every purpose it carries is withdrawn (R16, R20).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.base import ContactRecord, Evidence, GlobalState, PurposeState, RecordError, Status
from connectors.fields import FieldError, email_field, read_time, time_field

SYSTEM = "mailchimp"
MEMBER_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional", "archived")
WRITABLE_STATUSES = MEMBER_STATUSES[:5]  # archived is reached with DELETE, never written (VENDOR-APIS 1.2)
# Mailchimp's `source` values that mean the person filled in a signup form themselves.
FORM_SOURCES = ("Hosted Signup Form", "Embedded Form", "Signup Form", "Pop-up Form", "Landing Page")
COMPLAINT_WORDS = ("abuse", "spam")


@dataclass(frozen=True, slots=True)
class Construct:
    """What one purpose is in Mailchimp: ``kind`` in status/interest/tag/permission, and its id or name."""

    kind: str
    ref: str = ""

    @classmethod
    def parse(cls, purpose: str, spec: str) -> Construct:
        kind, _, ref = spec.partition(":")
        if kind == "status" and not ref:
            return cls(kind)
        if kind in ("interest", "tag", "permission") and ref:
            return cls(kind, ref)
        raise ValueError(
            f"purpose {purpose!r}: {spec!r} is not 'status', 'interest:<id>', 'tag:<name>' or 'permission:<id>'"
        )

    def in_words(self) -> str:
        if self.kind == "status":
            return "member status"
        named = {"interest": "interest (group)", "tag": "tag", "permission": "marketing permission"}
        return f"{named[self.kind]} {self.ref!r}"


def parse_purposes(raw: Mapping[str, str]) -> dict[str, Construct]:
    return {purpose: Construct.parse(purpose, spec) for purpose, spec in raw.items()}


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 of the lower-cased address (not a security use)."""
    return hashlib.md5(email.lower().encode("utf-8"), usedforsecurity=False).hexdigest()


def format_time(moment: datetime) -> str:
    """Mailchimp's ISO 8601 form, e.g. ``2015-10-21T15:41:36+00:00``."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def parse_time(value: Any) -> datetime | None:
    """Mailchimp sends ``""`` for a timestamp it does not know."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 string, got {type(value).__name__}")
    return read_time(value, naive_utc=True)


def purpose_status(member: Mapping[str, Any], construct: Construct) -> Status:
    """The state one purpose is in, read from one member (also the sandbox's notion of truth)."""
    status = member.get("status")
    if status == "unsubscribed":
        return Status.UNSUBSCRIBED  # R20: an audience unsubscribe withdraws every purpose it carries
    if status not in ("subscribed", "pending"):
        return Status.NOT_SUBSCRIBED  # cleaned, transactional, archived: not on the marketing list
    base = Status.SUBSCRIBED if status == "subscribed" else Status.PENDING
    if construct.kind == "status":
        return base
    if construct.kind == "interest":
        on = bool((member.get("interests") or {}).get(construct.ref))
    elif construct.kind == "tag":
        on = any(tag.get("name") == construct.ref for tag in member.get("tags") or ())
    else:
        on = any(
            p.get("marketing_permission_id") == construct.ref and p.get("enabled")
            for p in member.get("marketing_permissions") or ()
        )
    return base if on else Status.NOT_SUBSCRIBED


def global_state(member: Mapping[str, Any]) -> GlobalState:
    status = member.get("status")
    reason = str(member.get("unsubscribe_reason") or "").lower()
    if status in ("unsubscribed", "cleaned") and any(word in reason for word in COMPLAINT_WORDS):
        return GlobalState.COMPLAINED  # R18: an abuse report is an objection to all marketing
    if status == "cleaned":
        return GlobalState.BOUNCED
    return GlobalState.ACTIVE


def method_of(source: str) -> str | None:
    if not source:
        return None
    if source in FORM_SOURCES:
        return "form"
    lowered = source.lower()
    for word, method in (("import", "import"), ("admin", "admin"), ("api", "api")):
        if word in lowered:
            return method
    return "other"


def evidence_of(member: Mapping[str, Any], collection_point: str | None) -> Evidence:
    """R5 as far as Mailchimp knows it: opt-in time, signup time, IP and source.

    The collection point is only named for members who came through a signup form: that is what the
    configured catalog entry describes, and it lifts the grant to `attested`. An import or an API add
    says nothing about how the person was asked (R7, R8).
    """
    source = str(member.get("source") or "")
    method = method_of(source)
    signup_at = parse_time(member.get("timestamp_signup"))
    consent_at = parse_time(member.get("timestamp_opt"))
    # A confirmed double opt-in: the form was submitted first and the confirmation click came later (R6).
    double = signup_at is not None and consent_at is not None and consent_at > signup_at
    return Evidence(
        consent_at=consent_at,
        signup_at=signup_at,
        method="double_opt_in" if double and method == "form" else method,
        collection_point=collection_point if method == "form" else None,
        double_opt_in=double if signup_at is not None else None,
        ip=member.get("ip_opt") or member.get("ip_signup") or None,
        detail=source or None,
    )


def _time_field(member: Mapping[str, Any], name: str) -> datetime | None:
    value = member.get(name)
    return time_field(None if value == "" else value, name, naive_utc=True)  # "": Mailchimp does not know


def _checked(member: Mapping[str, Any]) -> tuple[str, datetime | None]:
    """The member's normalised address and last_changed, or a FieldError for the first bad field."""
    email = email_field(member.get("email_address"), "email_address")
    if member.get("status") not in MEMBER_STATUSES:
        raise FieldError("status", f"unknown member status {member.get('status')!r}")
    if not isinstance(member.get("interests") or {}, dict):
        raise FieldError("interests", "not an object")
    tags = member.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, dict) for t in tags):
        raise FieldError("tags", "not a list of tag objects")
    for name in ("timestamp_opt", "timestamp_signup"):
        _time_field(member, name)
    return email, _time_field(member, "last_changed")


def contact_from_member(
    member: Mapping[str, Any], purposes: Mapping[str, Construct], collection_point: str | None
) -> ContactRecord | RecordError:
    """One member as a ContactRecord, or a RecordError naming the member and the field at fault."""
    record_id = str(member.get("id") or member.get("email_address") or "") or None
    try:
        email, changed = _checked(member)
    except FieldError as error:
        return error.for_record(SYSTEM, record_id)
    tags = member.get("tags") or []
    opted_out = member["status"] in ("unsubscribed", "cleaned")
    return ContactRecord(
        system=SYSTEM,
        external_id=str(member.get("id") or subscriber_hash(email)),
        email=email,
        updated_at=changed,
        purposes=tuple(
            PurposeState(purpose, purpose_status(member, construct), changed)
            for purpose, construct in purposes.items()
        ),
        global_state=global_state(member),
        global_changed_at=changed if opted_out else None,
        reason=member.get("unsubscribe_reason") or None,
        evidence=evidence_of(member, collection_point),
        tags=frozenset(str(t.get("name")) for t in tags if t.get("name")),
    )
