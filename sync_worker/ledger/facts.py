"""Loading what the policy core needs about many people at once, in chunks (set-based)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from itertools import islice
from typing import Any

from sqlalchemy import Connection, Text, select, type_coerce

from sync_worker.ledger.chain import as_utc
from sync_worker.ledger.suppression import suppressed_emails
from sync_worker.ledger.tables import EVENTS, PERSONS, PURCHASES
from sync_worker.policy import ConsentFact, Evidence, PersonFacts, PurchaseFact

CHUNK = 1_000


def load_facts(
    conn: Connection, emails: Iterable[str], secret: bytes | None, chunk_size: int = CHUNK
) -> dict[str, PersonFacts]:
    """PersonFacts for every given (normalised) address; unknown addresses get empty facts.

    Four queries per chunk of addresses, never one per person. Rows come as plain tuples of the columns
    the policy core reads (planning loads every person's facts, so per-row mappings would dominate).
    """
    result: dict[str, PersonFacts] = {}
    iterator = iter(emails)
    while chunk := list(dict.fromkeys(islice(iterator, chunk_size))):
        blocked = suppressed_emails(conn, chunk, secret)
        people = select(PERSONS.c.id, PERSONS.c.email).where(PERSONS.c.email.in_(chunk))
        ids: dict[int, str] = dict(conn.execute(people).tuples().all())
        events: dict[str, list[ConsentFact]] = defaultdict(list)
        purchases: dict[str, list[PurchaseFact]] = defaultdict(list)
        if ids:
            owners = list(ids)
            query = select(*EVENT_COLUMNS).where(EVENTS.c.person_id.in_(owners)).order_by(EVENTS.c.id)
            for event in conn.execute(query).all():
                events[ids[event[0]]].append(_fact_of(event))
            bought = (
                select(*PURCHASE_COLUMNS).where(PURCHASES.c.person_id.in_(owners)).order_by(PURCHASES.c.id)
            )
            for purchase in conn.execute(bought).all():
                purchases[ids[purchase[0]]].append(_purchase_of(purchase))
        for email in chunk:
            result[email] = PersonFacts(
                email, tuple(events[email]), tuple(purchases[email]), suppressed=email in blocked
            )
    return result


def _text(column: Any) -> Any:
    """A JSON or time column read without SQLAlchemy's per-value processing (decoded in this module)."""
    return type_coerce(column, Text)


EVENT_COLUMNS = (
    EVENTS.c.person_id,
    EVENTS.c.id,
    EVENTS.c.purpose,
    EVENTS.c.action,
    _text(EVENTS.c.occurred_at),
    _text(EVENTS.c.recorded_at),
    EVENTS.c.source,
    EVENTS.c.method,
    EVENTS.c.collection_point,
    _text(EVENTS.c.evidence),
)
PURCHASE_COLUMNS = (
    PURCHASES.c.person_id,
    PURCHASES.c.id,
    _text(PURCHASES.c.occurred_at),
    PURCHASES.c.paid,
    _text(PURCHASES.c.categories),
    PURCHASES.c.opt_out_offered,
    PURCHASES.c.opt_out_used,
)


def _fact_of(row: Sequence[Any]) -> ConsentFact:
    _, event_id, purpose, action, occurred, recorded, source, method, point, evidence = row
    recorded_at = _moment(recorded)
    assert recorded_at is not None  # the column is NOT NULL
    return ConsentFact(
        event_id=event_id,
        purpose=purpose,
        action=action,
        occurred_at=_moment(occurred),
        recorded_at=recorded_at,
        source=source,
        method=method or "",
        collection_point=point,
        evidence=_evidence(evidence),
    )


def _purchase_of(row: Sequence[Any]) -> PurchaseFact:
    _, event_id, occurred, paid, categories, offered, used = row
    occurred_at = _moment(occurred)
    assert occurred_at is not None  # the column is NOT NULL
    return PurchaseFact(
        event_id=event_id,
        occurred_at=occurred_at,
        paid=bool(paid),
        categories=tuple(_json(categories)),
        opt_out_offered=bool(offered),
        opt_out_used=bool(used),
    )


def _moment(value: str | datetime | None) -> datetime | None:
    """SQLite gives the stored text (naive UTC), PostgreSQL's driver a datetime."""
    return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def _json(value: Any) -> Any:
    """SQLite gives the JSON text, PostgreSQL's driver the decoded value."""
    return json.loads(value) if isinstance(value, str) else value


def _evidence(value: Any) -> Evidence:
    if isinstance(value, str):
        return _evidence_of_text(value)
    return Evidence(**(value or {}))


@lru_cache(maxsize=4096)
def _evidence_of_text(text: str) -> Evidence:
    # Grants from one collection point mostly carry the same evidence: build each distinct one once.
    return Evidence(**(json.loads(text) or {}))


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
