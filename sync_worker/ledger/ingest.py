"""Set-based, idempotent ingest of consent events and purchases (R32), in bounded memory.

Input is consumed in chunks; per chunk a handful of statements run whatever its size: one to drop
suppressed addresses (R22), one to find already-stored (source, source_event_id) pairs, one upsert and
one select for persons, one executemany insert. Nothing is ever updated in place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import Connection, Table

from sync_worker.ledger.bulk import insert_rows, select_in
from sync_worker.ledger.chain import Head, content_hash, link, lock_head, personal_hash, save_head
from sync_worker.ledger.records import ConsentEventIn, PurchaseIn, Record
from sync_worker.ledger.suppression import suppressed_emails
from sync_worker.ledger.tables import EVENTS, EXTERNAL_IDS, PERSONS, PURCHASES
from sync_worker.policy import ConsentFact, Policy, grade
from sync_worker.policy.evidence import applicable_point

CHUNK = 5_000
R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class Rejection:
    ref: str  # source:source_event_id, or the input line for imports
    field: str
    message: str


@dataclass
class IngestResult:
    inserted: int = 0
    duplicates: int = 0
    suppressed: int = 0  # R22: records of suppressed addresses are never stored
    rejected: list[Rejection] = field(default_factory=list)

    def add(self, other: IngestResult) -> None:
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.suppressed += other.suppressed
        self.rejected.extend(other.rejected)


def chunked(items: Iterable[R], size: int) -> Iterator[list[R]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def append_events(
    conn: Connection,
    events: Iterable[ConsentEventIn],
    *,
    policy: Policy,
    secret: bytes | None,
    now: datetime,
    chunk_size: int = CHUNK,
) -> IngestResult:
    """Append consent events to the hash chain; the same (source, source_event_id) is stored once."""
    result = IngestResult()
    levels: dict[tuple[object, ...], str] = {}
    for chunk in chunked(events, chunk_size):
        head = lock_head(conn)
        fresh = _fresh(conn, EVENTS, chunk, secret, result)
        ids = _person_ids(conn, fresh, now)
        rows = []
        previous, next_id = head.chain_hash, head.last_event_id + 1
        for event in fresh:
            row = _event_row(event, policy, now, levels)
            row.update(id=next_id, person_id=ids[event.email], erased=False)
            row["personal_hash"] = personal_hash(row)
            row["content_hash"] = content_hash(row, row["personal_hash"])
            previous = row["chain_hash"] = link(previous, row["content_hash"])
            del row["email"]
            rows.append(row)
            next_id += 1
        if rows:
            insert_rows(conn, EVENTS, rows)
            save_head(conn, Head(next_id - 1, previous))
        result.inserted += len(rows)
    return result


def append_purchases(
    conn: Connection,
    purchases: Iterable[PurchaseIn],
    *,
    secret: bytes | None,
    now: datetime,
    chunk_size: int = CHUNK,
) -> IngestResult:
    """Record purchases (the basis of soft opt-in, R12-R14), idempotent on (source, source_event_id)."""
    result = IngestResult()
    for chunk in chunked(purchases, chunk_size):
        fresh = _fresh(conn, PURCHASES, chunk, secret, result)
        ids = _person_ids(conn, fresh, now)
        rows = [
            {
                "person_id": ids[p.email],
                "order_id": p.order_id or p.source_event_id,
                "occurred_at": p.occurred_at,
                "recorded_at": now,
                "source": p.source,
                "source_event_id": p.source_event_id,
                "paid": p.paid,
                "categories": list(p.categories),
                "opt_out_offered": p.opt_out_offered,
                "opt_out_used": p.opt_out_used,
            }
            for p in fresh
        ]
        if rows:
            insert_rows(conn, PURCHASES, rows)
        result.inserted += len(rows)
    return result


def _event_row(
    event: ConsentEventIn, policy: Policy, now: datetime, levels: dict[tuple[object, ...], str]
) -> dict[str, Any]:
    evidence = {name: value for name, value in vars(event.evidence).items() if value is not None}
    level = None
    if event.action == "grant":
        # A snapshot for receipts and exports; decisions grade again from the catalog in force (R32).
        fact = ConsentFact(0, event.purpose, "grant", event.occurred_at, now, event.source, event.method,
                           event.collection_point, event.evidence)  # fmt: skip
        # Grading depends on these alone; most events of a batch share them, so grade each once.
        key = (event.evidence, event.collection_point, event.method, event.occurred_at is None,
               applicable_point(fact, policy) is not None)  # fmt: skip
        if key not in levels:
            levels[key] = grade(fact, policy)
        level = levels[key]
    return {
        "email": event.email,
        "purpose": event.purpose,
        "action": event.action,
        "occurred_at": event.occurred_at,
        "recorded_at": now,
        "source": event.source,
        "source_event_id": event.source_event_id,
        "method": event.method,
        "collection_point": event.collection_point,
        "evidence": evidence,
        "evidence_level": level,
    }


def _fresh(
    conn: Connection, table: Table, chunk: Sequence[R], secret: bytes | None, result: IngestResult
) -> list[R]:
    """Drop suppressed addresses (R22), repeats within the chunk and records already stored (R32)."""
    blocked = suppressed_emails(conn, {r.email for r in chunk}, secret)
    unique: dict[tuple[str, str], R] = {}
    for record in chunk:
        key = (record.source, record.source_event_id)
        if record.email in blocked:
            result.suppressed += 1
        elif key in unique:
            result.duplicates += 1
        else:
            unique[key] = record
    if not unique:
        return []
    # One query per source in the chunk (usually one), so the (source, source_event_id) index is used.
    stored: set[tuple[str, str]] = set()
    for source in sorted({source for source, _ in unique}):
        ids = sorted(sid for s, sid in unique if s == source)
        found = select_in(conn, table, ["source_event_id"], "source_event_id", ids, where={"source": source})
        stored.update((source, sid) for (sid,) in found)
    result.duplicates += len(stored)
    return [r for key, r in unique.items() if key not in stored]


def _person_ids(conn: Connection, records: Sequence[Record], now: datetime) -> dict[str, int]:
    """Create missing persons and return the id of every address of the chunk (set-based)."""
    emails = sorted({r.email for r in records})
    if not emails:
        return {}
    ids = {
        email: person_id for person_id, email in select_in(conn, PERSONS, ["id", "email"], "email", emails)
    }
    missing = [e for e in emails if e not in ids]
    if missing:
        # Insert-or-skip: an erasure or another writer may have changed persons since the select.
        insert_rows(conn, PERSONS, [{"email": e, "created_at": now} for e in missing], on_conflict=["email"])
        found = select_in(conn, PERSONS, ["id", "email"], "email", missing)
        ids.update({email: person_id for person_id, email in found})
    links = {(r.source, r.external_id): ids[r.email] for r in records if r.external_id}
    insert_rows(
        conn,
        EXTERNAL_IDS,
        [{"system": s, "external_id": x, "person_id": p} for (s, x), p in links.items()],
        on_conflict=["system", "external_id"],
    )
    return ids
