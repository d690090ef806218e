"""What a reconciliation run needs from the consent ledger, as a narrow port.

The runner speaks to the ledger only through ``LedgerPort``, so the run's core is tested against an
in-memory ledger and wired to the SQL ledger (issue 3) by one adapter. Values here are frozen and do
no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy import Connection

from connectors.base import Basis, Evidence, PurchaseRecord, RecordError


class EventKind(StrEnum):
    """What a vendor's change means for consent (DESIGN.md §1 observe step)."""

    GRANT = "grant"  # a subscription with evidence behind it; the ledger judges its level (R5, R7)
    WITHDRAW = "withdraw"  # an unsubscribe for one purpose (R16, R20)
    OBJECT = "object"  # all marketing (R17)
    COMPLAINT = "complaint"  # spam complaint = objection (R18)
    # A subscribed flag without evidence: never a grant (R8). Recorded so that the person is quarantined
    # and listed for re-permission, and never trusted.
    UNPROVEN = "unproven"


@dataclass(frozen=True, slots=True)
class ObservedEvent:
    """A consent fact read from a vendor, ready for the ledger (idempotent on source + source_event_id)."""

    email: str
    purpose: str | None  # None: all marketing
    kind: EventKind
    occurred_at: datetime
    source: str  # the system it was read from
    source_event_id: str
    rule: str  # the RULES.md rule that makes this change a consent fact
    external_id: str | None = None  # the person's id in ``source``
    method: str | None = None
    reason: str | None = None  # the vendor's unsubscribe / suppression reason
    evidence: Evidence | None = None
    time_from_source: bool = True  # False: the vendor gave no time and ``occurred_at`` is the read time (R31)


class DecisionLike(Protocol):
    """The fields of the policy core's Decision that planning and the log use."""

    @property
    def allowed(self) -> bool: ...
    @property
    def basis(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def event_ids(self) -> Sequence[object]: ...
    @property
    def quarantined(self) -> bool:
        """Held only by an unproven subscribed flag: list for re-permission (R1, R7, R8)."""
        ...

    @property
    def valid_until(self) -> datetime | None:
        """The first moment time alone may change the decision; None when it never does."""
        ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """A plain DecisionLike, used by the in-memory ledger and where a decision is made up by a rule here."""

    allowed: bool
    basis: str
    rule: str
    reason: str
    event_ids: tuple[str, ...] = ()
    quarantined: bool = False
    valid_until: datetime | None = None


def basis_of(decision: DecisionLike) -> Basis:
    return _BASES.get(str(decision.basis), Basis.NONE)


_BASES: dict[str, Basis] = {basis.value: basis for basis in Basis}  # planned for every subscribe


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the ledger made of one page: how many events were new, and the records it refused."""

    inserted: int
    rejected: tuple[RecordError, ...] = ()


@dataclass(frozen=True, slots=True)
class ErasureRequest:
    request_id: int
    email: str


class LedgerPort(Protocol):
    """The consent ledger as the runner sees it; every call runs inside the caller's transaction."""

    def record(
        self, conn: Connection, events: Sequence[ObservedEvent], purchases: Sequence[PurchaseRecord]
    ) -> Recorded:
        """Append events and purchases (idempotently); refused records are skipped and returned."""
        ...

    def decide(
        self, conn: Connection, emails: Sequence[str], purposes: Sequence[str], now: datetime
    ) -> Mapping[str, Mapping[str, DecisionLike]]:
        """Decision per person and purpose (every person and purpose asked for is answered)."""
        ...

    def erasures(self, conn: Connection) -> Sequence[ErasureRequest]:
        """Erasure requests still to be carried out in the connected systems (R21, Art. 19)."""
        ...

    def complete_erasure(self, conn: Connection, request: ErasureRequest, now: datetime) -> None:
        """Every system has deleted or unsubscribed the person: the ledger may forget the address."""
        ...
