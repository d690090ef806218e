"""The consent ledger (sync_worker.ledger + sync_worker.policy) behind the runner's LedgerPort.

The one place where observed vendor facts become ledger records. A subscribed flag without evidence is
stored as a grant without a source time: the ledger grades it ``unproven`` (R31), so it never allows
mailing and quarantines the person for re-permission (R8).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from pydantic import ValidationError
from sqlalchemy import Connection

from connectors.base import Evidence as VendorEvidence
from connectors.base import PurchaseRecord, RecordError
from sync_worker.ledger.erasure import mark_erasure_pushed, pending_erasures
from sync_worker.ledger.facts import load_facts
from sync_worker.ledger.ingest import append_events, append_purchases
from sync_worker.ledger.records import ConsentEventIn, PurchaseIn
from sync_worker.ledger_port import DecisionLike, ErasureRequest, EventKind, ObservedEvent, Recorded
from sync_worker.policy import ALL_PURPOSES, Evidence, Policy, decide_all

T = TypeVar("T")
R = TypeVar("R")

ACTIONS = {
    EventKind.GRANT: "grant",
    EventKind.UNPROVEN: "grant",
    EventKind.WITHDRAW: "withdraw",
    EventKind.OBJECT: "object",
    EventKind.COMPLAINT: "complaint",
}


def to_evidence(vendor: VendorEvidence | None) -> Evidence:
    if vendor is None:
        return Evidence()
    return Evidence(
        double_opt_in=vendor.double_opt_in,
        ip=vendor.ip,
        # R3: a vendor-level fact such as a pre-selected checkout box.
        checkbox_prechecked=vendor.prechecked,
    )


def to_records(event: ObservedEvent) -> list[ConsentEventIn]:
    """The ledger events for one observed fact.

    A vendor that shows a double opt-in subscriber as subscribed has seen the confirmation click at its
    opt-in time (Mailchimp ``timestamp_opt``): that is a ``confirm`` after the signup's ``grant`` (R6).
    """
    grant = to_record(event)
    evidence = event.evidence
    if event.kind != EventKind.GRANT or evidence is None or not evidence.double_opt_in:
        return [grant]
    signed_up = evidence.signup_at if evidence.signup_at and evidence.signup_at <= event.occurred_at else None
    if signed_up is not None:
        grant = grant.model_copy(update={"occurred_at": signed_up})
    confirm = grant.model_copy(
        update={
            "action": "confirm",
            "occurred_at": event.occurred_at,
            "source_event_id": f"{event.source_event_id}:confirm",
            "method": "double_opt_in_click",
        }
    )
    return [grant, confirm]


def to_record(event: ObservedEvent) -> ConsentEventIn:
    unproven = event.kind == EventKind.UNPROVEN
    evidence = None if unproven else event.evidence
    return ConsentEventIn(
        email=event.email,
        source=event.source,
        source_event_id=event.source_event_id,
        external_id=event.external_id,
        purpose=event.purpose or ALL_PURPOSES,
        action=ACTIONS[event.kind],
        # No source time for a bare flag: the ledger grades it unproven (R8, R31).
        occurred_at=None if unproven else event.occurred_at,
        method=(event.method or "")[:64] if not unproven else "vendor_flag",
        collection_point=evidence.collection_point if evidence else None,
        evidence=to_evidence(evidence),
    )


def to_purchase(record: PurchaseRecord) -> PurchaseIn:
    return PurchaseIn(
        email=record.email,
        source=record.system,
        source_event_id=record.order_id,
        external_id=record.customer_id,
        occurred_at=record.occurred_at,
        paid=record.paid,
        order_id=record.order_id,
        categories=list(record.categories),
    )


class SqlLedger:
    """LedgerPort over the SQL ledger; every call runs in the caller's transaction."""

    def __init__(self, policy: Policy, secret: bytes | None, clock: Callable[[], datetime]) -> None:
        self.policy = policy
        self.secret = secret
        self.clock = clock

    def record(
        self, conn: Connection, events: Sequence[ObservedEvent], purchases: Sequence[PurchaseRecord]
    ) -> Recorded:
        now = self.clock()
        refused: list[RecordError] = []
        records = [
            r
            for e in events
            for r in (_valid(to_records, e, e.source, e.external_id or e.source_event_id, refused) or [])
        ]
        bought = [
            r
            for r in (_valid(to_purchase, p, p.system, p.order_id, refused) for p in purchases)
            if r is not None
        ]
        result = append_events(conn, records, policy=self.policy, secret=self.secret, now=now)
        bought_result = append_purchases(conn, bought, secret=self.secret, now=now)
        # Ingest refusals name the record as "source:source_event_id".
        refused.extend(
            RecordError(r.ref.partition(":")[0], r.ref.partition(":")[2] or None, r.field, r.message)
            for r in [*result.rejected, *bought_result.rejected]
        )
        return Recorded(result.inserted, tuple(refused))

    def decide(
        self, conn: Connection, emails: Sequence[str], purposes: Sequence[str], now: datetime
    ) -> Mapping[str, Mapping[str, DecisionLike]]:
        facts = load_facts(conn, emails, self.secret)
        policy = self.policy
        if set(purposes).issuperset(policy.purposes):
            # The usual call (every purpose of the policy): ``decide_all`` answers in the policy's order.
            return {
                email: dict(zip(policy.purposes, decide_all(person, policy, now), strict=True))
                for email, person in facts.items()
            }
        return {
            email: {d.purpose: d for d in decide_all(person, policy, now) if d.purpose in purposes}
            for email, person in facts.items()
        }

    def erasures(self, conn: Connection) -> Sequence[ErasureRequest]:
        return [ErasureRequest(rid, email) for rid, email in pending_erasures(conn) if email]

    def complete_erasure(self, conn: Connection, request: ErasureRequest, now: datetime) -> None:
        mark_erasure_pushed(conn, request.request_id, now)


def _valid(
    convert: Callable[[T], R], item: T, system: str, record_id: str, refused: list[RecordError]
) -> R | None:
    """A record the ledger refuses is collected for the run's log and skipped; the rest of the page goes on."""
    try:
        return convert(item)
    except ValidationError as error:
        problems = error.errors()
        field = ".".join(str(p) for p in problems[0]["loc"]) if problems else "?"
        message = str(problems[0]["msg"]) if problems else str(error)
        refused.append(RecordError(system, record_id, field or "?", message))
        return None
