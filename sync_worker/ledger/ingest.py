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

from sync_worker.ledger.bulk import binder, insert_bound, insert_rows, select_in
from sync_worker.ledger.chain import Head, Sealer, lock_head, save_head
from sync_worker.ledger.evidence_json import stored_evidence
from sync_worker.ledger.records import ConsentEventIn, PurchaseIn, Record
from sync_worker.ledger.suppression import suppressed_emails
from sync_worker.ledger.tables import EVENTS, EXTERNAL_IDS, PERSONS, PURCHASES
from sync_worker.policy import ConsentFact, Policy, grade
from sync_worker.policy.evidence import point_in_use

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
    for chunk in chunked(events, chunk_size):
        head = lock_head(conn)
        fresh = _fresh(conn, EVENTS, chunk, secret, result)
        ids = _person_ids(conn, fresh, now)
        if fresh:
            sealer = Sealer(head.chain_hash, now)
            insert_bound(
                conn,
                EVENTS,
                EVENT_COLUMNS,
                _event_rows(conn, fresh, ids=ids, head=head, sealer=sealer, policy=policy, now=now),
            )
            save_head(conn, Head(head.last_event_id + len(fresh), sealer.chain_hash))
        result.inserted += len(fresh)
    return result


EVENT_COLUMNS = (
    "id", "person_id", "purpose", "action", "occurred_at", "recorded_at", "source", "source_event_id",
    "method", "collection_point", "evidence", "evidence_level", "personal_hash", "content_hash",
    "chain_hash", "erased",
)  # fmt: skip


def _event_rows(
    conn: Connection,
    events: Sequence[ConsentEventIn],
    *,
    ids: dict[str, int],
    head: Head,
    sealer: Sealer,
    policy: Policy,
    now: datetime,
) -> list[tuple[Any, ...]]:
    """The bound values of the chunk's rows, in chain order, hashed and linked (one tight loop per row)."""

    def bound(column: str, value: Any) -> Any:
        process = binder(conn, EVENTS, column)
        return value if process is None else process(value)

    occurred_bind = binder(conn, EVENTS, "occurred_at")
    recorded, erased = bound("recorded_at", now), bound("erased", False)
    # Most events of a batch share one Evidence object: its dict, hash text and bound value are made once.
    evidence_of: dict[int, tuple[int, str, Any]] = {}
    levels: dict[tuple[object, ...], str] = {}
    rows: list[tuple[Any, ...]] = []
    append, seal, point_of = rows.append, sealer.seal, policy.point  # bound once: this loop runs per row
    for event_id, event in enumerate(events, head.last_event_id + 1):
        evidence = event.evidence
        known = evidence_of.get(id(evidence))
        if known is None:
            plain = stored_evidence(evidence)
            known = evidence_of[id(evidence)] = (
                len(evidence_of),
                Sealer.evidence_json(plain),
                bound("evidence", plain),
            )
        token, evidence_json, evidence_value = known
        occurred, point = event.occurred_at, event.collection_point
        level = None
        if event.action == "grant":
            # A snapshot for receipts and exports; decisions grade again from the catalog in force (R32).
            # Grading depends on these alone; most events of a batch share them, so grade each once.
            key = (token, point, event.method, occurred is None, point_in_use(point_of(point), occurred))
            level = levels.get(key)
            if level is None:
                fact = ConsentFact(0, event.purpose, "grant", occurred, now, event.source, event.method, point,
                                   evidence)  # fmt: skip
                level = levels[key] = grade(fact, policy)
        hashes = seal(
            event.email, event.purpose, occurred, event.method, point, evidence_json, level, event.action,
            event.source, event.source_event_id,
        )  # fmt: skip
        append((
            event_id, ids[event.email], event.purpose, event.action,
            occurred if occurred_bind is None else occurred_bind(occurred), recorded, event.source,
            event.source_event_id, event.method, point, evidence_value, level, *hashes, erased,
        ))  # fmt: skip
    return rows


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
