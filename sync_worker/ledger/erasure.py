"""Art. 17 erasure (R21): tombstone the person's events, delete the rest, keep only the suppression.

The chain keeps verifying because a tombstone keeps its ``content_hash`` and ``chain_hash``. The
``erasure_requests`` row is the outbox for Art. 19: every connected system must delete or unsubscribe the
person; the plain address is kept there only until that has been pushed (``mark_erasure_pushed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, null, select, update

from sync_worker.ledger.suppression import MissingSecretKeyError, suppress
from sync_worker.ledger.tables import ERASURES, EVENTS, PERSONS, PURCHASES

PERSONAL_EVENT_COLUMNS = (
    "person_id",
    "purpose",
    "occurred_at",
    "method",
    "collection_point",
    "evidence",
    "evidence_level",
)


@dataclass(frozen=True)
class Erasure:
    keyed_hash: str
    events_erased: int
    purchases_deleted: int
    request_id: int


def erase(
    conn: Connection, email: str, *, secret: bytes | None, now: datetime, reason: str = "erasure"
) -> Erasure:
    """Erase the (normalised) address; idempotent: erasing twice leaves one suppression."""
    if secret is None:
        raise MissingSecretKeyError("erase a person")
    person_id = conn.execute(select(PERSONS.c.id).where(PERSONS.c.email == email)).scalar()
    erased = deleted = 0
    if person_id is not None:
        # SQL NULL, also in the JSON column (where None would be stored as the JSON text 'null').
        tombstone = dict.fromkeys(PERSONAL_EVENT_COLUMNS, null()) | {"erased": True}
        erased = conn.execute(
            update(EVENTS).where(EVENTS.c.person_id == person_id).values(**tombstone)
        ).rowcount
        deleted = conn.execute(delete(PURCHASES).where(PURCHASES.c.person_id == person_id)).rowcount
        # External ids go with the person (ON DELETE CASCADE); deleted explicitly for SQLite without FKs.
        conn.execute(delete(PERSONS).where(PERSONS.c.id == person_id))
    digest = suppress(conn, email, secret, reason, now)
    request_id = conn.execute(
        ERASURES.insert().values(keyed_hash=digest, email=email, requested_at=now).returning(ERASURES.c.id)
    ).scalar_one()
    return Erasure(digest, erased, deleted, request_id)


def pending_erasures(conn: Connection) -> list[tuple[int, str]]:
    """(request id, address) of erasures not yet pushed to every connected system."""
    query = (
        select(ERASURES.c.id, ERASURES.c.email).where(ERASURES.c.done_at.is_(None)).order_by(ERASURES.c.id)
    )
    return [(row.id, row.email) for row in conn.execute(query)]


def mark_erasure_pushed(conn: Connection, request_id: int, now: datetime) -> None:
    """Every system has deleted the person: forget the plain address."""
    conn.execute(update(ERASURES).where(ERASURES.c.id == request_id).values(done_at=now, email=None))
