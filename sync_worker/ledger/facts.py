"""Loading what the policy core needs about many people at once, in chunks (set-based)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from itertools import islice
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table

from sync_worker.ledger.bulk import any_of, fetch_all
from sync_worker.ledger.chain import as_utc
from sync_worker.ledger.evidence_json import evidence_of
from sync_worker.ledger.suppression import suppressed_emails
from sync_worker.ledger.tables import EVENTS, PERSONS, PURCHASES
from sync_worker.policy import ConsentFact, Evidence, PersonFacts, PurchaseFact

CHUNK = 1_000


def load_facts(
    conn: Connection, emails: Iterable[str], secret: bytes | None, chunk_size: int = CHUNK
) -> dict[str, PersonFacts]:
    """PersonFacts for every given (normalised) address; unknown addresses get empty facts.

    Three queries per chunk of addresses, never one per person. Rows come as plain DB-API tuples of the
    columns the policy core reads (planning loads every person's facts: per-row processing would dominate),
    each with its owner's address (joined: no lookup of person ids first).
    """
    result: dict[str, PersonFacts] = {}
    iterator = iter(emails)
    while chunk := list(dict.fromkeys(islice(iterator, chunk_size))):
        blocked = suppressed_emails(conn, chunk, secret)
        events: dict[str, list[ConsentFact]] = defaultdict(list)
        purchases: dict[str, list[PurchaseFact]] = defaultdict(list)
        owners, params = any_of(conn, f"{PERSONS.name}.email", chunk)
        # In id order (the chain order), as the policy core has always been given them.
        for event in sorted(fetch_all(conn, _EVENTS_OF.format(owners), params), key=_second):
            events[event[0]].append(_fact_of(event))
        for bought in sorted(fetch_all(conn, _PURCHASES_OF.format(owners), params), key=_second):
            purchases[bought[0]].append(_purchase_of(bought))
        for email in chunk:
            # ``get``: most people have no purchases, and a defaultdict would store an empty list for each.
            result[email] = PersonFacts(
                email,
                tuple(events.get(email, ())),
                tuple(purchases.get(email, ())),
                suppressed=email in blocked,
            )
    return result


EVENT_COLUMNS = [
    "id",
    "purpose",
    "action",
    "occurred_at",
    "recorded_at",
    "source",
    "method",
    "collection_point",
    "evidence",
]
PURCHASE_COLUMNS = ["id", "occurred_at", "paid", "categories", "opt_out_offered", "opt_out_used"]


def _of_owner(table: Table, columns: list[str]) -> str:
    """The rows of ``table`` whose owner's address is among some (the condition left to fill in)."""
    named = ", ".join(f"{table.name}.{c}" for c in columns)
    return (
        f"SELECT {PERSONS.name}.email, {named} FROM {table.name} "
        f"JOIN {PERSONS.name} ON {PERSONS.name}.id = {table.name}.person_id WHERE {{}}"
    )


_EVENTS_OF = _of_owner(EVENTS, EVENT_COLUMNS)
_PURCHASES_OF = _of_owner(PURCHASES, PURCHASE_COLUMNS)
_second = itemgetter(1)


def _fact_of(row: Sequence[Any]) -> ConsentFact:
    _, event_id, purpose, action, occurred, recorded, source, method, point, evidence = row
    recorded_at = _moment(recorded)
    assert recorded_at is not None  # the column is NOT NULL
    # Positional (a keyword call costs a fifth more): one per event of every person planned.
    return ConsentFact(
        event_id,
        purpose,
        action,
        _moment(occurred),
        recorded_at,
        source,
        method or "",
        point,
        _evidence(evidence),
    )


def _purchase_of(row: Sequence[Any]) -> PurchaseFact:
    _, event_id, occurred, paid, categories, offered, used = row
    occurred_at = _moment(occurred)
    assert occurred_at is not None  # the column is NOT NULL
    return PurchaseFact(
        event_id, occurred_at, bool(paid), tuple(_json(categories)), bool(offered), bool(used)
    )


def _moment(value: str | datetime | None) -> datetime | None:
    """SQLite gives the stored text (naive UTC), PostgreSQL's driver a datetime."""
    if isinstance(value, str):
        try:
            # Naive UTC text, the stored form: read as UTC directly (``replace`` costs more than parsing).
            moment = datetime.fromisoformat(value + "+00:00")
        except ValueError:  # the text names its own offset
            moment = datetime.fromisoformat(value)
        if moment.tzinfo is UTC:
            return moment
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return as_utc(value)


def _json(value: Any) -> Any:
    """SQLite gives the JSON text, PostgreSQL's driver the decoded value."""
    return json.loads(value) if isinstance(value, str) else value


def _evidence(value: Any) -> Evidence:
    if isinstance(value, str):
        return _evidence_of_text(value)
    return evidence_of(value)


@lru_cache(maxsize=4096)
def _evidence_of_text(text: str) -> Evidence:
    # Grants from one collection point mostly carry the same evidence: build each distinct one once.
    return evidence_of(json.loads(text))


def to_fact(row: dict[str, Any]) -> ConsentFact:
    """One event row read as a mapping (receipts) as the policy core sees it."""
    return _fact_of([None, *(row[name] for name in EVENT_COLUMNS)])  # the owner is not part of a fact
