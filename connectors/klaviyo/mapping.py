"""Pure translation between Klaviyo's JSON:API documents and canonical records (no I/O).

Purposes reach Klaviyo two ways (config): the account-wide email marketing consent stands for the
``consent_purposes``; every other purpose is a list, and membership of that list is the subscription.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from config.klaviyo import KlaviyoSettings
from connectors.base import ContactRecord, Evidence, GlobalState, PurposeState, RecordError, Status
from connectors.fields import FieldError, email_field, time_field

SYSTEM = "klaviyo"
MARKETING = "attributes.subscriptions.email.marketing"

# Suppression reasons (EmailMarketingSuppression.reason) as account-wide facts, most restrictive first:
# a spam complaint is an objection (R18), a global unsubscribe is one too when configured so (R17).
SUPPRESSION_ORDER = ("SPAM_COMPLAINT", "UNSUBSCRIBE", "USER_SUPPRESSED", "HARD_BOUNCE", "INVALID_EMAIL")
SUPPRESSION_STATES = {
    "SPAM_COMPLAINT": GlobalState.COMPLAINED,
    "UNSUBSCRIBE": GlobalState.UNSUBSCRIBED_ALL,
    "USER_SUPPRESSED": GlobalState.SUPPRESSED,
    "HARD_BOUNCE": GlobalState.BOUNCED,
    "INVALID_EMAIL": GlobalState.BOUNCED,
}
CONSENT_STATES = {
    "SUBSCRIBED": Status.SUBSCRIBED,
    "UNSUBSCRIBED": Status.UNSUBSCRIBED,  # a withdrawal (R20)
    "NEVER_SUBSCRIBED": Status.NOT_SUBSCRIBED,
}


@dataclass(frozen=True)
class PurposeMap:
    """Which Klaviyo construct each purpose is (from KlaviyoSettings)."""

    lists: Mapping[str, str] = field(default_factory=dict)
    consent_purposes: tuple[str, ...] = ("newsletter",)
    unsubscribe_is_objection: bool = True
    collection_point: str | None = None

    @classmethod
    def from_settings(cls, vendor: KlaviyoSettings) -> PurposeMap:
        return cls(
            lists=dict(vendor.lists),
            consent_purposes=tuple(vendor.consent_purposes),
            unsubscribe_is_objection=vendor.unsubscribe_is_objection,
            collection_point=vendor.collection_point,
        )

    @property
    def purposes(self) -> frozenset[str]:
        return frozenset(self.consent_purposes) | frozenset(self.lists)

    def list_purposes(self) -> dict[str, str]:
        """Purposes that are list memberships only (a consent purpose with a list is still consent)."""
        return {p: list_id for p, list_id in self.lists.items() if p not in self.consent_purposes}

    def targets(self) -> dict[str, str]:
        """Per purpose, what carries it in Klaviyo, in words (the Art. 30 export, R36)."""
        consent = "profile's e-mail marketing consent (account-wide)"
        described = {
            purpose: consent + (f" and list {self.lists[purpose]}" if purpose in self.lists else "")
            for purpose in self.consent_purposes
        }
        return described | {purpose: f"list {list_id}" for purpose, list_id in self.list_purposes().items()}


def profile_stamp(profile: Mapping[str, Any]) -> tuple[str | None, datetime | None]:
    """(id, updated) of a raw profile, tolerating damage (the page's watermark needs them)."""
    attributes = profile.get("attributes") or {}
    try:
        return profile.get("id"), time_field(attributes.get("updated"), "attributes.updated")
    except FieldError:
        return profile.get("id"), None


def to_contact(
    profile: Mapping[str, Any], memberships: Mapping[str, datetime | None], purposes: PurposeMap
) -> ContactRecord | RecordError:
    """One profile (with ``additional-fields[profile]=subscriptions``) as a ContactRecord.

    ``memberships`` maps each list purpose whose list holds this profile to its ``joined_group_at``.
    """
    record_id = profile.get("id") if isinstance(profile.get("id"), str) else None
    try:
        return _to_contact(profile, memberships, purposes)
    except FieldError as error:
        return error.for_record(SYSTEM, record_id)


def _to_contact(
    profile: Mapping[str, Any], memberships: Mapping[str, datetime | None], purposes: PurposeMap
) -> ContactRecord:
    profile_id = profile.get("id")
    if not isinstance(profile_id, str) or not profile_id:
        raise FieldError("id", "profile has no id")
    attributes = profile.get("attributes")
    if not isinstance(attributes, Mapping):
        raise FieldError("attributes", "profile has no attributes object")
    email = email_field(attributes.get("email"), "attributes.email")
    updated = time_field(attributes.get("updated"), "attributes.updated", required=True)
    marketing = _marketing(attributes)
    consent = marketing.get("consent")
    if consent not in CONSENT_STATES:
        raise FieldError(f"{MARKETING}.consent", f"unknown consent state {consent!r}")
    consent_at = time_field(marketing.get("consent_timestamp"), f"{MARKETING}.consent_timestamp")
    suppressions = _stamped(
        marketing.get("suppression"), f"{MARKETING}.suppression", "reason", SUPPRESSION_STATES
    )
    list_suppressions = _stamped(
        marketing.get("list_suppressions"), f"{MARKETING}.list_suppressions", "list_id", None
    )

    global_state, global_at, reason = GlobalState.ACTIVE, None, None
    for candidate in SUPPRESSION_ORDER:
        if candidate in suppressions:
            reason, global_at = candidate, suppressions[candidate]
            global_state = SUPPRESSION_STATES[candidate]
            break
    unsubscribed_all = "UNSUBSCRIBE" in suppressions
    if global_state is GlobalState.UNSUBSCRIBED_ALL and not purposes.unsubscribe_is_objection:
        global_state = GlobalState.ACTIVE  # configured as a withdrawal of the consent purposes only

    states: list[PurposeState] = []
    for purpose in purposes.consent_purposes:
        if unsubscribed_all and not purposes.unsubscribe_is_objection:
            states.append(PurposeState(purpose, Status.UNSUBSCRIBED, suppressions["UNSUBSCRIBE"]))
        else:
            states.append(PurposeState(purpose, CONSENT_STATES[consent], consent_at))
    for purpose, list_id in sorted(purposes.list_purposes().items()):
        if list_id in list_suppressions:  # the person left this list only: a per-purpose withdrawal (R16)
            states.append(PurposeState(purpose, Status.UNSUBSCRIBED, list_suppressions[list_id]))
        elif purpose in memberships:
            states.append(PurposeState(purpose, Status.SUBSCRIBED, memberships[purpose]))
        else:
            states.append(PurposeState(purpose, Status.NOT_SUBSCRIBED))

    evidence = None
    if consent != "NEVER_SUBSCRIBED":
        double_optin = marketing.get("double_optin")
        evidence = Evidence(
            consent_at=consent_at,
            method=_text(marketing.get("method")),
            collection_point=purposes.collection_point if consent == "SUBSCRIBED" else None,
            double_opt_in=double_optin if isinstance(double_optin, bool) else None,
            detail=_text(marketing.get("method_detail")) or _text(marketing.get("custom_method_detail")),
        )
    return ContactRecord(
        system=SYSTEM,
        external_id=profile_id,
        email=email,
        updated_at=updated,
        purposes=tuple(states),
        global_state=global_state,
        global_changed_at=global_at,
        reason=reason,
        evidence=evidence,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _marketing(attributes: Mapping[str, Any]) -> Mapping[str, Any]:
    subscriptions = attributes.get("subscriptions")
    if not isinstance(subscriptions, Mapping):
        raise FieldError("attributes.subscriptions", "no subscriptions (request additional-fields[profile])")
    email = subscriptions.get("email") or {}
    marketing = email.get("marketing") if isinstance(email, Mapping) else None
    if not isinstance(marketing, Mapping):
        raise FieldError(MARKETING, "no email marketing subscription object")
    return marketing


def _stamped(
    raw: object, field_name: str, key: str, known: Iterable[str] | None
) -> dict[str, datetime | None]:
    """A suppression array as ``{reason or list id: timestamp}``; ``known`` limits the keys allowed."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise FieldError(field_name, "expected a list")
    allowed = set(known) if known is not None else None
    out: dict[str, datetime | None] = {}
    for index, item in enumerate(raw):
        value = item.get(key) if isinstance(item, Mapping) else None
        if not isinstance(value, str) or (allowed is not None and value not in allowed):
            raise FieldError(f"{field_name}[{index}].{key}", f"unknown or missing {key} {value!r}")
        out[value] = time_field(item.get("timestamp"), f"{field_name}[{index}].timestamp")
    return out


def email_filter(emails: Iterable[str]) -> str:
    """Klaviyo's filter syntax for "email is one of": ``any(email,["a@b.nl","c@d.nl"])``."""
    return f"any(email,{json.dumps(sorted(set(emails)), separators=(',', ':'))})"


def after_filter(field_name: str, after: datetime) -> str:
    """``greater-than(updated,2024-05-01T08:00:00Z)``: Klaviyo's (open) lower bound on a time field."""
    return f"greater-than({field_name},{after.isoformat().replace('+00:00', 'Z')})"


def subscribe_job(
    profiles: Sequence[tuple[str, datetime | None]], list_id: str | None, source: str
) -> dict[str, Any]:
    """``POST /api/profile-subscription-bulk-create-jobs`` body; at most 1000 profiles.

    Consent already proven in our ledger (R5/R6) is imported with its time (``historical_import``), so
    Klaviyo sends no second confirmation mail; without a time Klaviyo's own opt-in process applies.
    """
    historical = all(at is not None for _, at in profiles)
    data: list[dict[str, Any]] = []
    for email, at in profiles:
        marketing: dict[str, Any] = {"consent": "SUBSCRIBED"}
        if historical and at is not None:
            marketing["consented_at"] = at.isoformat()
        data.append(
            {
                "type": "profile",
                "attributes": {"email": email, "subscriptions": {"email": {"marketing": marketing}}},
            }
        )
    body: dict[str, Any] = {
        "data": {
            "type": "profile-subscription-bulk-create-job",
            "attributes": {
                "custom_source": source,
                "historical_import": historical,
                "profiles": {"data": data},
            },
        }
    }
    if list_id is not None:
        body["data"]["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
    return body


def unsubscribe_job(emails: Sequence[str]) -> dict[str, Any]:
    """``POST /api/profile-subscription-bulk-delete-jobs`` body, at most 100 profiles.

    Deliberately without a list: with one, Klaviyo unsubscribes globally any profile that is not in that
    list (VENDOR-APIS 2.3), so a list purpose is withdrawn by leaving the list instead.
    """
    data = [
        {
            "type": "profile",
            "attributes": {
                "email": email,
                "subscriptions": {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}},
            },
        }
        for email in emails
    ]
    return {
        "data": {"type": "profile-subscription-bulk-delete-job", "attributes": {"profiles": {"data": data}}}
    }


def relationship_body(profile_ids: Iterable[str]) -> dict[str, Any]:
    """``POST|DELETE /api/lists/{id}/relationships/profiles`` body; at most 1000 ids."""
    return {"data": [{"type": "profile", "id": profile_id} for profile_id in profile_ids]}


def deletion_job(email: str) -> dict[str, Any]:
    """``POST /api/data-privacy-deletion-jobs`` body: erase every profile with this address (Art. 17)."""
    return {
        "data": {
            "type": "data-privacy-deletion-job",
            "attributes": {"profile": {"data": {"type": "profile", "attributes": {"email": email}}}},
        }
    }


def error_detail(body: object) -> str:
    """The JSON:API ``errors`` of a 4XX/5XX body as one line: ``code: detail (source)``."""
    errors = body.get("errors") if isinstance(body, Mapping) else None
    if not isinstance(errors, list) or not errors:
        return "no JSON:API error body"
    parts = []
    for error in errors:
        if not isinstance(error, Mapping):
            continue
        source = error.get("source") or {}
        where = source.get("pointer") or source.get("parameter") if isinstance(source, Mapping) else None
        text = f"{error.get('code', '?')}: {error.get('detail') or error.get('title') or ''}"
        parts.append(f"{text} ({where})" if where else text)
    return "; ".join(parts)


def rejected_indices(message: str, prefix: str) -> set[int]:
    """Item indices a JSON:API 400 points at (``source.pointer`` like ``/data/attributes/profiles/data/3/...``).

    Klaviyo refuses a whole job for one bad item; knowing which lets the rest go through.
    """
    return {int(match) for match in re.findall(re.escape(prefix) + r"(\d+)", message)}
