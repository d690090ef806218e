"""When each person's decisions may next change by time alone (a soft opt-in window ends, a pending
double opt-in lapses, a future-dated event takes effect): the earliest ``valid_until`` of their decisions.

Planning stores it per person; an incremental run plans the people whose moment has passed along with
the dirty ones, so a decision that changes with time alone reaches the vendors without a ``--full`` run.
People whose decisions time never changes have no row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, DateTime, Select, delete, insert, literal, select
from sqlmodel import Field, SQLModel

from sync_worker.db import upsert
from sync_worker.ledger_port import DecisionLike


class DecisionDue(SQLModel, table=True):
    __tablename__ = "decision_due"

    email: str = Field(primary_key=True)
    # Indexed: each run asks for the people whose moment has passed, a small part of everyone.
    due_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))


DUE: Any = DecisionDue.__table__  # type: ignore[attr-defined]


def earliest(decisions: Iterable[DecisionLike]) -> datetime | None:
    """The first moment any of a person's decisions may change by time alone."""
    return min((d.valid_until for d in decisions if d.valid_until is not None), default=None)


def save(conn: Connection, due: Mapping[str, datetime | None]) -> None:
    """Replace the moments of these people; None removes the person (time alone changes nothing)."""
    rows = [{"email": email, "due_at": at} for email, at in sorted(due.items()) if at is not None]
    gone = sorted(email for email, at in due.items() if at is None)
    if gone:
        conn.execute(delete(DUE).where(DUE.c.email.in_(gone)))
    upsert(conn, DUE, rows, keys=("email",))


def decide_again(conn: Connection, people: Select[Any], now: datetime) -> None:
    """Make the people a query selects (one column: email) due at ``now``, without loading them here."""
    found = people.distinct().subquery()
    conn.execute(delete(DUE).where(DUE.c.email.in_(select(found.c[0]))))
    moment = literal(now, DateTime(timezone=True))
    conn.execute(insert(DUE).from_select(["email", "due_at"], select(found.c[0], moment)))


def next_due(conn: Connection, after: str, now: datetime, limit: int) -> list[str]:
    """The next ``limit`` people after ``after`` whose moment is at or before ``now`` (keyset paging)."""
    query = (
        select(DUE.c.email).where(DUE.c.due_at <= now, DUE.c.email > after).order_by(DUE.c.email).limit(limit)
    )
    return list(conn.execute(query).scalars())


def forget(conn: Connection, emails: Sequence[str]) -> None:
    """Erasure (R21): no address stays behind once every system has been told."""
    if emails:
        conn.execute(delete(DUE).where(DUE.c.email.in_(list(emails))))
