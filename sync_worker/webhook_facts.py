"""Webhook facts as the vendor's record of a change, observed like a pulled record (DESIGN.md §1).

A verified webhook says what one system now holds for one person. Applied to the last snapshot of that
system it gives the ``ContactRecord`` a pull would have read, so it goes through the same ``observe``:
our own push read back is an echo and records nothing; a withdrawal always counts (R20). Only the
restrictive direction is taken from a webhook: a subscribe carries no evidence of consent (R8), and
writing it to the snapshot would hide the evidence the next pull reads, so subscribes and facts without
any state are left to the scheduled run, which re-reads the person.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection

from connectors.base import ContactRecord, GlobalState, PurposeState, RecordError, Status
from sync_worker import outbox, snapshot
from sync_worker.ledger_port import LedgerPort, ObservedEvent
from sync_worker.logs import get_logger
from sync_worker.observe import ACCOUNT, GLOBAL_EVENTS, TAG_PREFIX, Seen, observe
from sync_worker.trigger import WebhookFact


@dataclass
class FactsTaken:
    """What one batch of webhook facts did: the people to plan for and what was recorded."""

    emails: set[str] = field(default_factory=set)
    events: Counter[str] = field(default_factory=Counter)  # new ledger events by the system that sent them
    echoes: Counter[str] = field(default_factory=Counter)
    unknown: list[WebhookFact] = field(default_factory=list)  # a vendor id no snapshot knows
    deferred: list[WebhookFact] = field(default_factory=list)  # no restrictive state: the schedule reads it
    rejected: list[RecordError] = field(default_factory=list)  # what the ledger refused, by record and field


def restrictive(fact: WebhookFact) -> bool:
    return fact.status == Status.UNSUBSCRIBED or fact.global_state in GLOBAL_EVENTS


def speaks_of(fact: WebhookFact, slot: str) -> bool:
    """Whether ``fact`` says what ``slot`` now holds: an unsubscribe every purpose, an account-wide state the
    account. No webhook carries tags: a tag push awaiting its echo is left for a read of the person to judge,
    not taken for "differs" on the snapshot's older tags (planning would push it again, or miss an untag)."""
    if slot == ACCOUNT:
        return fact.global_state in GLOBAL_EVENTS
    if slot.startswith(TAG_PREFIX):
        return False
    return fact.status == Status.UNSUBSCRIBED


def record_of(
    fact: WebhookFact,
    email: str,
    previous: Seen | None,
    purposes: Iterable[str],
    pushed: Mapping[str, str],
) -> ContactRecord:
    """The vendor's record after ``fact``: the last snapshot with the fact's restrictive change applied.

    An unsubscribe webhook (Mailchimp member, Klaviyo profile, Shopify customer) is account-level in that
    vendor, so every purpose the system represents reads as unsubscribed there (R20, the restrictive way).
    A slot we pushed and await gets no vendor time: one webhook stamps every slot with the same time, and
    ``observe`` would take the person's own withdrawal of the other purposes for a side effect of our push.
    """
    base = previous or Seen(external_id=fact.external_id)
    when = fact.occurred_at
    states = {p: PurposeState(p, s) for p, s in base.statuses.items()}
    if fact.status == Status.UNSUBSCRIBED:
        for purpose in sorted(set(purposes) | set(base.statuses)):
            states[purpose] = PurposeState(purpose, Status.UNSUBSCRIBED, None if purpose in pushed else when)
    global_state = fact.global_state if fact.global_state in GLOBAL_EVENTS else base.global_state
    return ContactRecord(
        system=fact.system,
        external_id=fact.external_id or base.external_id or email,
        email=email,
        updated_at=when,
        purposes=tuple(states[p] for p in sorted(states)),
        global_state=global_state or GlobalState.ACTIVE,
        global_changed_at=when if fact.global_state in GLOBAL_EVENTS else None,
        reason=fact.reason,
        tags=base.tags,
    )


def take_facts(
    conn: Connection,
    ledger: LedgerPort,
    facts: Sequence[WebhookFact],
    purposes: Mapping[str, frozenset[str]],
    *,
    now: datetime,
    run_id: str,
) -> FactsTaken:
    """Observe ``facts`` against the snapshot and outbox, record the events, save the new snapshot.

    ``purposes`` maps each connected system to the purposes it represents; facts of other systems are
    deferred. Facts are taken in order, so a second fact about one person sees the first one's state.
    """
    log = get_logger(run_id=run_id, component="webhook")
    taken = FactsTaken()
    for fact in facts:
        if fact.system not in purposes or not restrictive(fact):
            taken.deferred.append(fact)
            if fact.email or fact.external_id:
                log.info("webhook_fact_deferred", system=fact.system, topic=fact.topic, email=fact.email)
            continue
        email = fact.email or (
            snapshot.email_of(conn, fact.system, fact.external_id) if fact.external_id else None
        )
        if email is None:
            taken.unknown.append(fact)
            # No e-mail and no snapshot row for this vendor id: the scheduled pull reads the person.
            log.warning(
                "webhook_person_unknown", system=fact.system, external_id=fact.external_id, topic=fact.topic
            )
            continue
        previous = snapshot.load_seen(conn, [email], fact.system).get(email, {}).get(fact.system)
        awaiting = outbox.awaiting_echo(conn, fact.system, [email]).get(email, {})
        pushed = {slot: value for slot, value in awaiting.items() if speaks_of(fact, slot)}
        record = record_of(fact, email, previous, purposes[fact.system], pushed)
        result = observe(previous, record, pushed, now)
        outbox.verify(conn, fact.system, email, sorted(result.echoes), outcome="echo", now=now)
        outbox.verify(conn, fact.system, email, sorted(result.mismatches), outcome="differs", now=now)
        events: list[ObservedEvent] = list(result.events)
        recorded = ledger.record(conn, events, [])
        taken.events[fact.system] += recorded.inserted
        taken.rejected.extend(error for error in recorded.rejected if error not in taken.rejected)
        taken.echoes[fact.system] += len(result.echoes)
        snapshot.save_seen(conn, fact.system, {email: result.seen}, now)
        taken.emails.add(email)
        for event in events:
            log.info(
                "webhook_fact_recorded",
                system=fact.system,
                email=email,
                purpose=event.purpose,
                kind=str(event.kind),
                rule=event.rule,
            )
        if result.echoes and not events:
            log.info("webhook_echo", system=fact.system, email=email, slots=sorted(result.echoes), rule="R8")
    return taken
