"""The HubSpot sandbox's state: contacts, subscription statuses and the rules HubSpot applies to them.

Shapes follow HubSpot's OpenAPI specs (CRM contacts v3 ``SimplePublicObject``, communication preferences
v4 ``PublicStatus``); the rules are from VENDOR-APIS.md section 4. Every change stamps the contact's
``lastmodifieddate`` with the sandbox clock, as HubSpot does when a subscription property changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from connectors.sandbox import Clock
from connectors.sandbox_changes import Changes, Tracked

JSON = dict[str, Any]

STATES = ("NOT_SPECIFIED", "SUBSCRIBED", "UNSUBSCRIBED")
LEGAL_BASES = (
    "CONSENT_WITH_NOTICE",
    "LEGITIMATE_INTEREST_CLIENT",
    "LEGITIMATE_INTEREST_OTHER",
    "LEGITIMATE_INTEREST_PQL",
    "NON_GDPR",
    "PERFORMANCE_OF_CONTRACT",
    "PROCESS_AND_STORE",
)
DATE_PROPERTIES = frozenset({"createdate", "lastmodifieddate"})
ALWAYS_RETURNED = ("createdate", "hs_object_id", "lastmodifieddate")  # HubSpot adds these to every read


def iso(moment: datetime) -> str:
    """HubSpot's timestamp format: UTC with milliseconds and a Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def standard_error(category: str, message: str, context: Mapping[str, list[str]]) -> JSON:
    """A per-item error in a batch answer (v4 ``StandardError``)."""
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": dict(context),
        "errors": [],
        "links": {},
    }


def correlation_id() -> str:
    return str(uuid.uuid4())


# Every change to a contact, a status or the portal counts here, so that search results kept between
# pages (ContactRoutes.queries) are dropped the moment anything changes.
CHANGES = Changes()


@dataclass
class Contact(Tracked):
    changes: ClassVar[Changes] = CHANGES

    id: int
    created: datetime
    updated: datetime
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def email(self) -> str | None:
        return self.properties.get("email")

    def value(self, name: str) -> str | None:
        if name == "lastmodifieddate":
            return iso(self.updated)
        if name == "createdate":
            return iso(self.created)
        if name == "hs_object_id":
            return str(self.id)
        return self.properties.get(name)

    def to_json(self, names: list[str]) -> JSON:
        wanted = [*ALWAYS_RETURNED, *(n for n in names if n not in ALWAYS_RETURNED)]
        return {
            "id": str(self.id),
            "properties": {name: self.value(name) for name in wanted},
            "createdAt": iso(self.created),
            "updatedAt": iso(self.updated),
            "archived": False,
        }


@dataclass
class SubscriptionStatus(Tracked):
    changes: ClassVar[Changes] = CHANGES

    state: str
    timestamp: datetime
    source: str
    legal_basis: str | None = None
    explanation: str | None = None


class HubSpotState(Tracked):
    """One portal: contacts by id and e-mail, statuses per (e-mail, subscription id), blocked addresses."""

    changes: ClassVar[Changes] = CHANGES

    def __init__(self, clock: Clock, definitions: Mapping[int, str]) -> None:
        self.clock = clock
        self.definitions = dict(definitions)  # subscription id → name
        self.contacts: dict[int, Contact] = {}
        self.by_email: dict[str, int] = {}
        self.statuses: dict[tuple[str, int], SubscriptionStatus] = {}
        self.blocked: set[str] = set()  # gdpr-deleted addresses HubSpot will not take again
        self.opted_out_at: dict[str, datetime] = {}  # "opted out of all email" (the portal-wide status)
        self.next_id = 1001

    # -- contacts

    def create(self, email: str | None, properties: Mapping[str, str] | None = None) -> Contact:
        now = self.clock.now()
        contact = Contact(self.next_id, now, now, {"hs_email_optout": "false", **(properties or {})})
        if email is not None:
            contact.properties["email"] = email
            self.by_email[email.lower()] = contact.id
        self.next_id += 1
        self.contacts[contact.id] = contact
        return contact

    def find(self, email: str) -> Contact | None:
        contact_id = self.by_email.get(email.lower())
        return self.contacts.get(contact_id) if contact_id is not None else None

    def touch(self, email: str) -> None:
        contact = self.find(email)
        if contact is not None:
            contact.updated = self.clock.now()

    def erase(self, object_id: str, id_property: str | None) -> None:
        """GDPR delete: remove the contact and its statuses; block the address even when nobody had it."""
        if id_property == "email":
            email: str | None = object_id.lower()
        else:
            contact = self.contacts.get(int(object_id)) if object_id.isdigit() else None
            email = contact.email.lower() if contact is not None and contact.email else None
            if contact is not None and email is None:
                del self.contacts[contact.id]  # a contact without an address: nothing else to remove
        if email is not None:
            self.delete(email)
            self.blocked.add(email)

    def delete(self, email: str) -> None:
        """Remove the contact of an address and every status of the address."""
        contact = self.find(email)
        if contact is not None:
            del self.contacts[contact.id]
        self.by_email.pop(email.lower(), None)
        self.opted_out_at.pop(email.lower(), None)
        for key in [k for k in self.statuses if k[0] == email.lower()]:
            del self.statuses[key]

    def known(self, email: str) -> bool:
        return self.find(email) is not None or any(k[0] == email.lower() for k in self.statuses)

    def opted_out(self, email: str) -> bool:
        return email.lower() in self.opted_out_at

    # -- subscription statuses

    def public_status(self, email: str, subscription_id: int, reason: str | None = None) -> JSON:
        status = self.statuses.get((email.lower(), subscription_id))
        contact = self.find(email)
        out: JSON = {
            "subscriberIdString": email.lower(),
            "subscriptionId": subscription_id,
            "subscriptionName": self.definitions.get(subscription_id, ""),
            "channel": "EMAIL",
            "businessUnitId": 0,
            "status": status.state if status else "NOT_SPECIFIED",
            "source": status.source if status else "Default status",
            "timestamp": iso(
                status.timestamp if status else contact.created if contact else self.clock.now()
            ),
        }
        if status is not None and status.legal_basis:
            out["legalBasis"] = status.legal_basis
            if status.explanation:
                out["legalBasisExplanation"] = status.explanation
        if reason:
            out["setStatusSuccessReason"] = reason
        return out

    def all_statuses(self, email: str) -> list[JSON]:
        return [self.public_status(email, subscription_id) for subscription_id in sorted(self.definitions)]

    def write(
        self,
        email: str,
        subscription_id: int,
        state: str,
        *,
        legal_basis: str | None = None,
        explanation: str | None = None,
        source: str = "Public status API",
    ) -> JSON:
        """Set one status the way HubSpot does and answer with the resulting ``PublicStatus``."""
        key = (email.lower(), subscription_id)
        before = self.statuses.get(key)
        if state == "SUBSCRIBED" and self.opted_out(email):
            # Opted out of all email wins over a single subscription: HubSpot keeps the contact unsubscribed.
            return self.public_status(email, subscription_id, "UNSUBSCRIBE_FROM_ALL_OCCURRED")
        if before is not None and before.state == state:
            return self.public_status(email, subscription_id, "NO_STATUS_CHANGE")
        self.statuses[key] = SubscriptionStatus(state, self.clock.now(), source, legal_basis, explanation)
        self._mirror_property(email, subscription_id, state)
        resubscribed = state == "SUBSCRIBED" and before is not None and before.state == "UNSUBSCRIBED"
        return self.public_status(
            email, subscription_id, "RESUBSCRIBE_OCCURRED" if resubscribed else "REQUESTED_CHANGE_OCCURRED"
        )

    def wide_statuses(self, email: str) -> list[JSON]:
        """The portal-wide status: one UNSUBSCRIBED entry when the address opted out of all, else none."""
        moment = self.opted_out_at.get(email.lower())
        if moment is None:
            return []
        return [
            {
                "subscriberIdString": email.lower(),
                "wideStatusType": "PORTAL_WIDE",
                "status": "UNSUBSCRIBED",
                "channel": "EMAIL",
                "businessUnitId": 0,
                "timestamp": iso(moment),
            }
        ]

    def unsubscribe_all(self, email: str, source: str = "Public status API") -> list[JSON]:
        contact = self.find(email)
        self.opted_out_at.setdefault(email.lower(), self.clock.now())
        if contact is not None:
            contact.properties["hs_email_optout"] = "true"
        for subscription_id in self.definitions:
            key = (email.lower(), subscription_id)
            previous = self.statuses.get(key)
            if previous is None or previous.state != "UNSUBSCRIBED":
                self.statuses[key] = SubscriptionStatus("UNSUBSCRIBED", self.clock.now(), source)
                self._mirror_property(email, subscription_id, "UNSUBSCRIBED")
        self.touch(email)
        return [
            self.public_status(email, subscription_id, "UNSUBSCRIBE_FROM_ALL_OCCURRED")
            for subscription_id in sorted(self.definitions)
        ]

    def _mirror_property(self, email: str, subscription_id: int, state: str) -> None:
        """HubSpot mirrors each subscription on the contact as ``hs_email_optout_<id>``; that bumps lastmodifieddate."""
        contact = self.find(email)
        if contact is not None:
            contact.properties[f"hs_email_optout_{subscription_id}"] = str(state == "UNSUBSCRIBED").lower()
            contact.updated = self.clock.now()
