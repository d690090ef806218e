"""Test doubles for a run: an in-memory vendor behind the Connector protocol, and an in-memory ledger.

The fake ledger's ``decide`` is deliberately small (latest act per purpose, withdrawal wins ties, only
evidence-backed grants allow); it stands in for the policy core so these tests exercise the run, not
the rules.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, select

from connectors.base import (
    Action,
    Capabilities,
    Change,
    ContactRecord,
    Evidence,
    GlobalState,
    Outcome,
    Page,
    PurchaseRecord,
    PurposeState,
    PushResult,
    RecordError,
    Status,
    StreamInfo,
)
from sync_worker.ledger_port import (
    DecisionLike,
    ErasureRequest,
    EventKind,
    ObservedEvent,
    Recorded,
    Verdict,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class ProcessKilled(BaseException):
    """Stands for kill -9 at that point: nothing after it runs, no ``except Exception`` catches it."""


@dataclass
class Contact:
    email: str
    statuses: dict[str, Status]
    global_state: GlobalState = GlobalState.ACTIVE
    tags: set[str] = field(default_factory=set)
    evidence: Evidence | None = None
    seq: int = 0
    changed_at: datetime = T0
    purpose_times: dict[str, datetime] = field(default_factory=dict)  # each purpose keeps its own time


class FakeVendor:
    """A vendor that holds contacts, serves them by change sequence and applies pushes."""

    def __init__(self, name: str, purposes: Sequence[str], *, tags: bool = True, erase: bool = False) -> None:
        self.name = name
        self.purposes = tuple(purposes)
        self.contacts: dict[str, Contact] = {}
        self.seq = 0
        self.clock = T0
        self.pushes: list[list[Change]] = []
        self.pull_requests = 0
        self.fail: Callable[[Change], Outcome | None] = lambda _change: None
        self.crash_on_push: BaseException | None = None
        self.broken_pull: Exception | None = None
        self.bad_records: list[RecordError] = []
        self.actions = {Action.SUBSCRIBE, Action.UNSUBSCRIBE}
        if tags:
            self.actions |= {Action.TAG, Action.UNTAG}
        if erase:
            self.actions.add(Action.ERASE)

    def _bump(self, contact: Contact) -> None:
        self.seq += 1
        self.clock += timedelta(seconds=1)
        contact.seq, contact.changed_at = self.seq, self.clock

    def add(self, email: str, status: Status, *, evidence: Evidence | None = None) -> None:
        contact = Contact(email, dict.fromkeys(self.purposes, status), evidence=evidence)
        self.contacts[email] = contact
        self._bump(contact)

    def set_status(self, email: str, purpose: str, status: Status) -> None:
        contact = self.contacts[email]
        contact.statuses[purpose] = status
        self._bump(contact)
        contact.purpose_times[purpose] = contact.changed_at

    def set_global(self, email: str, state: GlobalState) -> None:
        contact = self.contacts[email]
        contact.global_state = state
        self._bump(contact)

    def touch(self, email: str) -> None:
        """Staff edit something of the contact that is no consent (a name): only the record's time moves."""
        self._bump(self.contacts[email])

    def status(self, email: str, purpose: str) -> Status:
        return self.contacts[email].statuses[purpose]

    def connector(self) -> FakeConnector:
        return FakeConnector(self)

    def record(self, contact: Contact) -> ContactRecord:
        return ContactRecord(
            system=self.name,
            # Opaque, as vendors' ids are (Mailchimp's is the MD5 of the address).
            external_id=f"{self.name}-{hashlib.md5(contact.email.encode()).hexdigest()[:12]}",
            email=contact.email,
            updated_at=contact.changed_at,
            purposes=tuple(
                PurposeState(p, s, contact.purpose_times.get(p, contact.changed_at))
                for p, s in contact.statuses.items()
            ),
            global_state=contact.global_state,
            global_changed_at=contact.changed_at,
            evidence=contact.evidence,
            tags=frozenset(contact.tags),
        )

    def apply(self, change: Change) -> PushResult:
        contact = self.contacts[change.email]
        if change.action == Action.SUBSCRIBE and change.purpose:
            contact.statuses[change.purpose] = Status.SUBSCRIBED
        elif change.action == Action.UNSUBSCRIBE and change.purpose:
            contact.statuses[change.purpose] = Status.UNSUBSCRIBED
        elif change.action == Action.TAG and change.tag:
            contact.tags.add(change.tag)
        elif change.action == Action.UNTAG and change.tag:
            contact.tags.discard(change.tag)
        elif change.action == Action.ERASE:
            contact.global_state = GlobalState.ERASED
            contact.statuses = dict.fromkeys(contact.statuses, Status.NOT_SUBSCRIBED)
        self._bump(contact)
        if change.purpose:
            contact.purpose_times[change.purpose] = contact.changed_at
        return PushResult(change.key, Outcome.ACCEPTED)


class FakeConnector:
    def __init__(self, vendor: FakeVendor, page_size: int = 3) -> None:
        self.vendor = vendor
        self.name = vendor.name
        self.page_size = page_size

    def capabilities(self) -> Capabilities:
        return Capabilities(
            system=self.name,
            streams=(StreamInfo("contacts", incremental=True, sorted=True, page_size_max=self.page_size),),
            actions=frozenset(self.vendor.actions),
            purposes=frozenset(self.vendor.purposes),
            batch_max=dict.fromkeys(Action, 2),
            max_concurrency=2,
        )

    async def pull(self, stream: str, since: str | None = None) -> AsyncIterator[Page]:
        self.vendor.pull_requests += 1
        if self.vendor.broken_pull is not None:
            raise self.vendor.broken_pull
        after = int(since or 0)
        changed = sorted((c for c in self.vendor.contacts.values() if c.seq > after), key=lambda c: c.seq)
        errors = tuple(self.vendor.bad_records)
        if not changed:
            yield Page(stream, (), errors, checkpoint=since, final=True)
            return
        for start in range(0, len(changed), self.page_size):
            chunk = changed[start : start + self.page_size]
            final = start + self.page_size >= len(changed)
            yield Page(
                stream,
                tuple(self.vendor.record(c) for c in chunk),
                errors if start == 0 else (),
                checkpoint=str(chunk[-1].seq),
                final=final,
            )

    async def push(self, changes: Sequence[Change]) -> list[PushResult]:
        if self.vendor.crash_on_push is not None:
            raise self.vendor.crash_on_push
        self.vendor.pushes.append(list(changes))
        results = []
        for change in changes:
            failure = self.vendor.fail(change)
            if failure is not None:
                results.append(PushResult(change.key, failure, "injected"))
            else:
                results.append(self.vendor.apply(change))
        return results

    async def aclose(self) -> None:
        return None


NEGATIVE = {
    EventKind.WITHDRAW: "R16",
    EventKind.OBJECT: "R17",
    EventKind.COMPLAINT: "R18",
}


class FakeLedger:
    """Stores observed events idempotently; decides with a deliberately small rule set."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, str], ObservedEvent] = {}
        self.purchases: list[PurchaseRecord] = []
        self.erasure_requests: dict[str, ErasureRequest] = {}
        self.completed: list[ErasureRequest] = []
        self.refuse: set[str] = set()  # addresses whose events this ledger will not take

    def record(
        self, conn: Connection, events: Sequence[ObservedEvent], purchases: Sequence[PurchaseRecord]
    ) -> Recorded:
        new = 0
        refused: list[RecordError] = []
        for event in events:
            if event.email in self.refuse:
                refused.append(RecordError(event.source, event.external_id, "email", "refused by the ledger"))
                continue
            key = (event.source, event.source_event_id)
            if key not in self.events:
                self.events[key] = event
                new += 1
        self.purchases.extend(purchases)
        return Recorded(new, tuple(refused))

    def grant(self, email: str, purpose: str, at: datetime = T0) -> None:
        """A grant with full evidence from our own form, as `sync-worker import` would add it."""
        event = ObservedEvent(
            email, purpose, EventKind.GRANT, at, "website", f"form-{email}-{purpose}", "R5",
            evidence=Evidence(consent_at=at, method="web_form", collection_point="website:footer"),
        )  # fmt: skip
        self.events[(event.source, event.source_event_id)] = event

    def withdraw(self, email: str, purpose: str, at: datetime, source: str = "webhook") -> None:
        event = ObservedEvent(email, purpose, EventKind.WITHDRAW, at, source, f"{source}-{email}", "R20")
        self.events[(event.source, event.source_event_id)] = event

    def _decide_one(self, email: str, purpose: str) -> Verdict:
        relevant = [
            e
            for e in self.events.values()
            if e.email == email
            and (e.purpose == purpose or e.purpose is None)
            and e.kind != EventKind.UNPROVEN
        ]
        if not relevant:
            return Verdict(False, "none", "R1", "no consent recorded")
        # Latest act wins; at equal times the restrictive one (R30).
        latest = max(relevant, key=lambda e: (e.occurred_at, e.kind in NEGATIVE))
        ident = f"{latest.source}:{latest.source_event_id}"
        if latest.kind in NEGATIVE:
            return Verdict(
                False, "none", NEGATIVE[latest.kind], f"{latest.kind.value} by the person", (ident,)
            )
        return Verdict(True, "consent", "R5", "consent with evidence", (ident,))

    def decide(
        self, conn: Connection, emails: Sequence[str], purposes: Sequence[str], now: datetime
    ) -> Mapping[str, Mapping[str, DecisionLike]]:
        out: dict[str, dict[str, DecisionLike]] = {}
        for email in emails:
            verdicts = {p: self._decide_one(email, p) for p in purposes}
            flagged = {
                e.purpose for e in self.events.values() if e.email == email and e.kind == EventKind.UNPROVEN
            }
            negative = any(e.email == email and e.kind in NEGATIVE for e in self.events.values())
            out[email] = {
                # Quarantined: an unproven flag and nothing else for that purpose (R8).
                p: replace(v, quarantined=p in flagged and not v.allowed and not negative)
                for p, v in verdicts.items()
            }
        return out

    def erasures(self, conn: Connection) -> Sequence[ErasureRequest]:
        return list(self.erasure_requests.values())

    def complete_erasure(self, conn: Connection, request: ErasureRequest, now: datetime) -> None:
        self.erasure_requests.pop(request.email, None)
        self.completed.append(request)

    def kinds(self, email: str) -> list[tuple[str | None, EventKind, str]]:
        return sorted(
            ((e.purpose, e.kind, e.source) for e in self.events.values() if e.email == email),
            key=lambda t: (str(t[0]), t[1].value, t[2]),
        )


def with_evidence(at: datetime = T0) -> Evidence:
    return Evidence(consent_at=at, method="double_opt_in", collection_point="mailchimp:signup-form")


def ledger_actions(engine: Engine, email: str) -> list[tuple[str, str]]:
    """(source, action) of the person's events in the SQL ledger, in the order they were stored."""
    from sync_worker.ledger.tables import EVENTS, PERSONS

    with engine.begin() as conn:
        query = (
            select(EVENTS.c.source, EVENTS.c.action)
            .join(PERSONS, PERSONS.c.id == EVENTS.c.person_id)
            .where(PERSONS.c.email == email)
            .order_by(EVENTS.c.id)
        )
        return [(source, action) for source, action in conn.execute(query)]
