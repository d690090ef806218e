"""The connector contract: canonical records, changes to push, per-item results, capabilities.

A connector translates one vendor's API to these values and back. Everything here is a frozen value;
nothing does I/O. Vendor JSON never leaves a connector's ``mapping`` module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple, Protocol, runtime_checkable


class Status(StrEnum):
    """Subscription state of one person for one purpose, as a vendor shows it."""

    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"  # the person (or an admin) opted out: a withdrawal (R20)
    PENDING = "pending"  # double opt-in mail sent, not yet confirmed (R6)
    NOT_SUBSCRIBED = "not_subscribed"  # never subscribed, or not a member of the purpose's list/segment


class GlobalState(StrEnum):
    """Account-wide facts a vendor holds beyond the per-purpose flags."""

    ACTIVE = "active"
    UNSUBSCRIBED_ALL = "unsubscribed_all"  # opted out of all marketing: an objection (R17)
    COMPLAINED = "complained"  # spam complaint: an objection (R18)
    BOUNCED = "bounced"  # hard bounce / cleaned: undeliverable, no consent fact either way
    SUPPRESSED = "suppressed"  # suppressed by the vendor or an admin for another reason
    ERASED = "erased"  # deleted / redacted in the vendor (Shopify REDACTED, HubSpot privacy deletion)


class Action(StrEnum):
    """What a push asks a vendor to do for one person."""

    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    TAG = "tag"  # e.g. mark for re-permission (quarantine)
    UNTAG = "untag"
    ERASE = "erase"  # Art. 17 / Art. 19: delete the person in that system


class Basis(StrEnum):
    CONSENT = "consent"
    SOFT_OPT_IN = "soft_opt_in"
    NONE = "none"


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # the vendor took it (for async vendors: queued; the next pull verifies)
    REJECTED = "rejected"  # the vendor refused it for good; `reason` says why
    RETRY_LATER = "retry_later"  # transient: rate limit, 5xx, time-out
    # The vendor no longer holds the person (deleted there): nothing is left to change, and nobody there to
    # mail. Only for an answer that says so of the person, never for a 4xx of the payload, a 5xx or a 429.
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class PurposeState:
    purpose: str
    status: Status
    changed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a vendor tells about how a subscription came about (RULES.md R5; usually `attested` at best)."""

    consent_at: datetime | None = (
        None  # when the person opted in (Mailchimp timestamp_opt, Klaviyo consent_timestamp)
    )
    signup_at: datetime | None = None
    method: str | None = (
        None  # vendor's word for how: "double_opt_in", "checkout", "api", "import", "admin", ...
    )
    collection_point: str | None = None  # catalog key, e.g. "mailchimp:signup-form", "shopify:checkout"
    double_opt_in: bool | None = None
    # R3: the box was pre-ticked (e.g. a shop whose checkout marketing box is pre-selected); None: unknown.
    prechecked: bool | None = None
    ip: str | None = None
    detail: str | None = None  # vendor's free text about the source (form URL, "API - Generic", ...)


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """One person as one system holds them, mapped onto our purposes."""

    system: str
    external_id: str
    email: str  # normalised (sync_worker.identity.normalise_email)
    updated_at: datetime | None
    purposes: tuple[PurposeState, ...] = ()
    global_state: GlobalState = GlobalState.ACTIVE
    global_changed_at: datetime | None = None
    reason: str | None = None  # vendor's unsubscribe / suppression reason
    evidence: Evidence | None = None
    tags: frozenset[str] = frozenset()

    def status_of(self, purpose: str) -> Status | None:
        return next((p.status for p in self.purposes if p.purpose == purpose), None)


@dataclass(frozen=True, slots=True)
class PurchaseRecord:
    """A purchase, the ground for soft opt-in (R12-R15)."""

    system: str
    order_id: str
    email: str
    occurred_at: datetime
    paid: bool
    categories: tuple[str, ...] = ()
    customer_id: str | None = None


Record = ContactRecord | PurchaseRecord


@dataclass(frozen=True, slots=True)
class RecordError:
    """A record a connector could not map: reported with vendor, record id and field; the page goes on."""

    system: str
    record_id: str | None
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a stream.

    ``checkpoint`` is the cursor to store *together with this page's records*; resuming from it loses
    nothing. It is None while an unsorted stream is still being read: such a stream saves its cursor only
    on its final page.
    """

    stream: str
    records: tuple[Record, ...]
    errors: tuple[RecordError, ...] = ()
    checkpoint: str | None = None
    final: bool = False


class Change(NamedTuple):
    """One desired change in one system. ``key`` is the outbox item id: pushing it twice is harmless.

    An immutable named tuple rather than a frozen dataclass: a first run plans some 3 million at 1M
    people, and a frozen dataclass sets each field through ``object.__setattr__`` (four times the cost)."""

    key: str
    system: str
    email: str
    action: Action
    purpose: str | None = None  # None for ERASE and for account-wide actions
    external_id: str | None = None
    basis: Basis = Basis.NONE  # why SUBSCRIBE is allowed (HubSpot's legalBasis follows it)
    consent_at: datetime | None = None  # when the grant behind a SUBSCRIBE was given
    tag: str | None = None  # for TAG / UNTAG


@dataclass(frozen=True, slots=True)
class PushResult:
    key: str
    outcome: Outcome
    reason: str | None = None
    # What the vendor now holds, when it differs from what was asked: e.g. Mailchimp keeps an
    # unsubscribed member out of `subscribed` and we push `pending` (its own confirmation mail) instead.
    vendor_state: str | None = None
    # The vendor accepted without a per-item answer (Klaviyo jobs): the next pull must confirm it.
    verify_on_pull: bool = False


@dataclass(frozen=True, slots=True)
class StreamInfo:
    name: str  # "contacts" or "purchases"
    incremental: bool
    sorted: bool  # pages arrive in cursor order, so each page may checkpoint
    page_size_max: int


@dataclass(frozen=True, slots=True)
class Capabilities:
    system: str
    streams: tuple[StreamInfo, ...]
    actions: frozenset[Action]
    purposes: frozenset[str]  # the purposes this system can represent (from its purpose mapping)
    batch_max: Mapping[Action, int] = field(default_factory=dict)
    max_concurrency: int = 4
    rate_limit: str = ""  # human description, e.g. "10 concurrent connections"
    # Purposes the vendor can only mail through another purpose's flag: e.g. Mailchimp with newsletter
    # mapped to the member's status and promotions to an interest ({"promotions": "newsletter"}).
    requires: Mapping[str, str] = field(default_factory=dict)
    # A digest of the settings the pulls depend on (``VendorSettings.pull_fingerprint``): when it differs
    # from the one the cursors were read with, the run reads this system in full. None: none stated.
    pull_fingerprint: str | None = None

    def stream(self, name: str) -> StreamInfo:
        for info in self.streams:
            if info.name == name:
                return info
        raise KeyError(f"{self.system} has no stream {name!r}")


@runtime_checkable
class Connector(Protocol):
    """What the runner needs from a vendor. One instance owns one httpx.AsyncClient."""

    name: str

    def capabilities(self) -> Capabilities: ...

    def pull(self, stream: str, since: str | None = None) -> AsyncIterator[Page]:
        """Yield pages of ``stream`` changed after cursor ``since`` (everything when None)."""
        ...

    async def push(self, changes: Sequence[Change]) -> list[PushResult]:
        """Apply changes in vendor-sized batches; one result per change, in any order."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ReadsPeople(Protocol):
    """A connector that can read a few known people at once (a webhook that names a change but not its
    state): their records go through the same observe path as a pulled page."""

    async def read_people(self, people: Mapping[str, str]) -> Page:
        """The current records of ``people`` (address -> vendor id); a page without a checkpoint."""
        ...
