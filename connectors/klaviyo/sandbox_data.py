"""The Klaviyo sandbox's state: profiles and list memberships, their JSON:API rendering (shapes from the
2026-07-15 spec), and what a person or a job does to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from connectors.base import Status
from connectors.klaviyo.mapping import PurposeMap
from connectors.sandbox_changes import Changes, Tracked


def stamp(moment: datetime) -> str:
    """Klaviyo's timestamp style: ``2024-05-01T08:00:00+00:00``."""
    return moment.isoformat()


# Every change to a profile or to the audience (its lists' members too) counts here, so that list
# answers kept between pages (KlaviyoSandbox.queries) are dropped the moment anything changes.
CHANGES = Changes()


@dataclass
class Profile(Tracked):
    changes: ClassVar[Changes] = CHANGES

    id: str
    email: str
    created: datetime
    updated: datetime
    first_name: str | None = None
    last_name: str | None = None
    external_id: str | None = None
    consent: str = "NEVER_SUBSCRIBED"
    consent_timestamp: datetime | None = None
    method: str | None = None
    method_detail: str | None = None
    double_optin: bool | None = None
    suppression: dict[str, datetime] = field(default_factory=dict)  # reason → timestamp
    list_suppressions: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # list id → (reason, at)

    def marketing(self) -> dict[str, Any]:
        return {
            "can_receive_email_marketing": self.consent == "SUBSCRIBED" and not self.suppression,
            "consent": self.consent,
            "consent_timestamp": stamp(self.consent_timestamp) if self.consent_timestamp else None,
            "last_updated": stamp(self.updated),
            "method": self.method,
            "method_detail": self.method_detail or "",
            "custom_method_detail": None,
            "double_optin": self.double_optin,
            "suppression": [
                {"reason": r, "timestamp": stamp(t)} for r, t in sorted(self.suppression.items())
            ],
            "list_suppressions": [
                {"list_id": lid, "reason": reason, "timestamp": stamp(at)}
                for lid, (reason, at) in sorted(self.list_suppressions.items())
            ],
        }

    def attributes(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "phone_number": None,
            "external_id": self.external_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "organization": None,
            "locale": None,
            "title": None,
            "image": None,
            "created": stamp(self.created),
            "updated": stamp(self.updated),
            "last_event_date": None,
            "location": {},
            "properties": {},
        }

    def render(
        self, base: str, *, subscriptions: bool, fields: set[str] | None, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        attributes = {**self.attributes(), **(extra or {})}
        if fields:
            attributes = {k: v for k, v in attributes.items() if k in fields}
        if subscriptions:
            attributes["subscriptions"] = {"email": {"marketing": self.marketing()}}
        return {
            "type": "profile",
            "id": self.id,
            "attributes": attributes,
            "relationships": {
                "lists": {"links": _rel_links(base, self.id, "lists")},
                "segments": {"links": _rel_links(base, self.id, "segments")},
            },
            "links": {"self": f"{base}/api/profiles/{self.id}/"},
        }


def _rel_links(base: str, profile_id: str, name: str) -> dict[str, str]:
    return {
        "self": f"{base}/api/profiles/{profile_id}/relationships/{name}/",
        "related": f"{base}/api/profiles/{profile_id}/{name}/",
    }


class Audience(Tracked):
    """Every profile and list of one sandbox account, and the state changes Klaviyo makes to them."""

    changes: ClassVar[Changes] = CHANGES

    def __init__(self, purposes: PurposeMap) -> None:
        self.purposes = purposes
        self.profiles: dict[str, Profile] = {}
        self.by_email: dict[str, str] = {}  # lower-cased address -> profile id (an address never changes)
        self.members: dict[str, dict[str, datetime]] = {lid: {} for lid in purposes.lists.values()}
        # Unconfirmed whether Klaviyo moves `updated` when only list membership changes: a knob for tests.
        self.list_change_moves_updated = True
        self._next_id = 0

    def find(self, email: str) -> Profile | None:
        profile_id = self.by_email.get(email.strip().lower())
        return self.profiles.get(profile_id) if profile_id is not None else None

    def create(self, email: str, now: datetime) -> Profile:
        self._next_id += 1
        profile = Profile(id=f"01JSBX{self._next_id:020d}", email=email.strip(), created=now, updated=now)
        self.profiles[profile.id] = profile
        self.by_email[profile.email.lower()] = profile.id
        return profile

    def with_emails(self, emails: Iterable[str]) -> list[Profile]:
        """The profiles with these addresses, found through the address index rather than by a scan."""
        found = {id(p): p for p in map(self.find, emails) if p is not None}  # " a@b.nl" and "a@b.nl": one
        return list(found.values())

    def find_or_create(self, email: str, now: datetime) -> Profile:
        return self.find(email) or self.create(email, now)

    def memberships(self, profile: Profile) -> Mapping[str, datetime]:
        """List purpose → joined_group_at, for the lists this profile is in."""
        found = {p: self.members[lid].get(profile.id) for p, lid in self.purposes.list_purposes().items()}
        return {purpose: at for purpose, at in found.items() if at is not None}

    def apply(self, profile: Profile, purpose: str, status: Status, now: datetime) -> None:
        """What a person (a form, a preference page, an unsubscribe link) does to one purpose."""
        if purpose in self.purposes.consent_purposes:
            if status is Status.SUBSCRIBED:
                self.consent(profile, now, method="FORM", at=now)
            elif status is Status.UNSUBSCRIBED:
                self.unsubscribe_globally(profile, now, method="PREFERENCE_PAGE")
            else:  # Klaviyo shows no pending state: a double opt-in not yet confirmed is "never subscribed"
                profile.consent, profile.consent_timestamp = "NEVER_SUBSCRIBED", None
                profile.suppression.pop("UNSUBSCRIBE", None)
        elif purpose in self.purposes.lists:
            list_id = self.purposes.lists[purpose]
            if status is Status.SUBSCRIBED:
                self.join(profile, list_id, now)
            else:
                self.leave(profile, list_id, now)
                if status is Status.UNSUBSCRIBED:
                    profile.list_suppressions[list_id] = ("UNSUBSCRIBE", now)
        else:
            raise KeyError(f"purpose {purpose!r} is not mapped in this sandbox")
        profile.updated = now

    def consent(
        self, profile: Profile, now: datetime, *, method: str, at: datetime, detail: str = ""
    ) -> None:
        profile.consent, profile.consent_timestamp = "SUBSCRIBED", at
        profile.method, profile.method_detail = method, detail
        # Subscribing lifts UNSUBSCRIBE, SPAM_REPORT (SPAM_COMPLAINT) and USER_SUPPRESSED (spec text).
        for reason in ("UNSUBSCRIBE", "SPAM_COMPLAINT", "USER_SUPPRESSED"):
            profile.suppression.pop(reason, None)
        profile.updated = now

    def unsubscribe_globally(self, profile: Profile, now: datetime, *, method: str) -> None:
        profile.consent, profile.consent_timestamp, profile.method = "UNSUBSCRIBED", now, method
        profile.suppression["UNSUBSCRIBE"] = now
        profile.updated = now

    def join(self, profile: Profile, list_id: str, now: datetime) -> None:
        self.members[list_id].setdefault(profile.id, now)
        profile.list_suppressions.pop(list_id, None)
        if self.list_change_moves_updated:
            profile.updated = now

    def leave(self, profile: Profile, list_id: str, now: datetime) -> None:
        self.members[list_id].pop(profile.id, None)
        profile.list_suppressions.pop(list_id, None)
        if self.list_change_moves_updated:
            profile.updated = now

    def erase(self, email: str | None, profile_id: str | None) -> None:
        wanted = (email or "").strip().lower()
        for profile in [p for p in self.profiles.values() if p.email.lower() == wanted or p.id == profile_id]:
            del self.profiles[profile.id]
            self.by_email.pop(profile.email.lower(), None)
            for members in self.members.values():
                members.pop(profile.id, None)
