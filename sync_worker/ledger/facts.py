"""Loading what the policy core needs about many people at once, in chunks (set-based)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import islice
from typing import Any

from sqlalchemy import Connection, select

from sync_worker.ledger.chain import as_utc
from sync_worker.ledger.suppression import suppressed_emails
from sync_worker.ledger.tables import EVENTS, PERSONS, PURCHASES
from sync_worker.policy import ConsentFact, Evidence, PersonFacts, PurchaseFact

CHUNK = 1_000


def load_facts(
    conn: Connection, emails: Iterable[str], secret: bytes | None, chunk_size: int = CHUNK
) -> dict[str, PersonFacts]:
    """PersonFacts for every given (normalised) address; unknown addresses get empty facts.

    Four queries per chunk of addresses, never one per person.
    """
    result: dict[str, PersonFacts] = {}
    iterator = iter(emails)
    while chunk := list(dict.fromkeys(islice(iterator, chunk_size))):
        blocked = suppressed_emails(conn, chunk, secret)
        ids = {
            row.id: row.email
            for row in conn.execute(select(PERSONS.c.id, PERSONS.c.email).where(PERSONS.c.email.in_(chunk)))
        }
        events: dict[str, list[ConsentFact]] = defaultdict(list)
        purchases: dict[str, list[PurchaseFact]] = defaultdict(list)
        if ids:
            query = select(EVENTS).where(EVENTS.c.person_id.in_(list(ids))).order_by(EVENTS.c.id)
            for row in conn.execute(query):
                events[ids[row.person_id]].append(to_fact(row._asdict()))
            query = select(PURCHASES).where(PURCHASES.c.person_id.in_(list(ids))).order_by(PURCHASES.c.id)
            for row in conn.execute(query):
                purchases[ids[row.person_id]].append(to_purchase(row._asdict()))
        for email in chunk:
            result[email] = PersonFacts(
                email, tuple(events[email]), tuple(purchases[email]), suppressed=email in blocked
            )
    return result


def to_fact(row: dict[str, Any]) -> ConsentFact:
    recorded = as_utc(row["recorded_at"])
    assert recorded is not None  # the column is NOT NULL
    return ConsentFact(
        event_id=row["id"],
        purpose=row["purpose"],
        action=row["action"],
        occurred_at=as_utc(row["occurred_at"]),
        recorded_at=recorded,
        source=row["source"],
        method=row["method"] or "",
        collection_point=row["collection_point"],
        evidence=Evidence(**(row["evidence"] or {})),
    )


def to_purchase(row: dict[str, Any]) -> PurchaseFact:
    occurred = as_utc(row["occurred_at"])
    assert occurred is not None  # the column is NOT NULL
    return PurchaseFact(
        event_id=row["id"],
        occurred_at=occurred,
        paid=row["paid"],
        categories=tuple(row["categories"]),
        opt_out_offered=row["opt_out_offered"],
        opt_out_used=row["opt_out_used"],
    )
