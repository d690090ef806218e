"""What each system showed us last: per-stream cursors and the observed state per system x person.

A cursor is saved in the same transaction as the records it covers (DESIGN.md §5). A person whose state
was read but not yet planned for carries ``dirty``: an incremental run plans for the dirty people, in
chunks, so memory stays bounded and a dry run leaves them for the next real run.

One row per system x person, the purposes' statuses packed in one JSON text: planning reads every
person's snapshot, and one row per purpose (15 per person with four systems) made it the costliest read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from sqlalchemy import JSON, Column, Connection, DateTime, Index, delete, insert, select, update
from sqlmodel import Field, SQLModel

from connectors.base import GlobalState, Status
from sync_worker.db import upsert
from sync_worker.ledger.bulk import fetch_all, placeholder, select_in
from sync_worker.observe import Seen


class Cursor(SQLModel, table=True):
    __tablename__ = "sync_cursor"

    connector: str = Field(primary_key=True)
    stream: str = Field(primary_key=True)
    value: str
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class ObservedPerson(SQLModel, table=True):
    __tablename__ = "observed_person"
    # Incremental runs page the dirty people in email order (next_people). After a pull of everyone all
    # are dirty, and the dirty index alone made each page sort every dirty row; (dirty, email) hands them
    # out in order, so a page reads about its own rows.
    __table_args__ = (Index("ix_observed_person_dirty_email", "dirty", "email"),)

    system: str = Field(primary_key=True)
    # Indexed on its own: planning reads the snapshot by person (load_seen, next_people), which the
    # (system, email) key cannot serve; without it every batch scans the whole table.
    email: str = Field(primary_key=True, index=True)
    external_id: str | None = None
    global_state: str
    # purpose -> status as JSON text (keys sorted): few distinct values, each decoded once (load_seen).
    statuses: str
    tags: list[str] | None = Field(default=None, sa_column=Column(JSON))
    observed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    dirty: bool = True  # indexed first in (dirty, email) above


CURSORS: Any = Cursor.__table__  # type: ignore[attr-defined]
OBSERVED: Any = ObservedPerson.__table__  # type: ignore[attr-defined]


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# A reserved stream name: this row of a connector holds the pull fingerprint its cursors were read with
# (``Capabilities.pull_fingerprint``). No stream is named so ("contacts", "purchases", "joins:<purpose>").
READ_WITH = "~read-with"


def load_cursors(conn: Connection, connector: str) -> dict[str, str]:
    """Stream -> cursor of one connector (the fingerprint row is not a stream's)."""
    query = select(CURSORS.c.stream, CURSORS.c.value).where(
        CURSORS.c.connector == connector, CURSORS.c.stream != READ_WITH
    )
    return {str(stream): str(value) for stream, value in conn.execute(query)}


def load_read_with(conn: Connection, connector: str) -> str | None:
    """The pull fingerprint the connector's cursors were read with; None when none was saved."""
    query = select(CURSORS.c.value).where(CURSORS.c.connector == connector, CURSORS.c.stream == READ_WITH)
    found: str | None = conn.execute(query).scalar()
    return found


def save_cursor(conn: Connection, connector: str, stream: str, value: str, now: datetime) -> None:
    upsert(
        conn,
        CURSORS,
        [{"connector": connector, "stream": stream, "value": value, "updated_at": now}],
        keys=("connector", "stream"),
    )


def save_read_with(conn: Connection, connector: str, fingerprint: str, now: datetime) -> None:
    """Saved once a pull of every stream completed, in the transaction of its last page."""
    save_cursor(conn, connector, READ_WITH, fingerprint, now)


def save_seen(conn: Connection, system: str, seen: Mapping[str, Seen], now: datetime) -> None:
    """Replace the snapshot of ``system`` for these people and mark them for planning."""
    if not seen:
        return
    emails = list(seen)
    conn.execute(delete(OBSERVED).where(OBSERVED.c.system == system, OBSERVED.c.email.in_(emails)))
    rows = [
        {
            "system": system,
            "email": email,
            "external_id": person.external_id,
            "global_state": person.global_state.value,
            "statuses": _packed_statuses(person.statuses),
            "tags": sorted(person.tags),
            "observed_at": now,
            "dirty": True,
        }
        for email, person in seen.items()
    ]
    conn.execute(insert(OBSERVED), rows)


def _packed_statuses(statuses: Mapping[str, Status | str]) -> str:
    return json.dumps({purpose: str(status) for purpose, status in sorted(statuses.items())})


def mark_dirty(conn: Connection, emails: Sequence[str]) -> None:
    if emails:
        conn.execute(update(OBSERVED).where(OBSERVED.c.email.in_(list(emails))).values(dirty=True))


def mark_clean(conn: Connection, emails: Sequence[str]) -> None:
    if emails:
        conn.execute(update(OBSERVED).where(OBSERVED.c.email.in_(list(emails))).values(dirty=False))


def load_seen(
    conn: Connection, emails: Sequence[str], system: str | None = None
) -> dict[str, dict[str, Seen]]:
    """email -> system -> Seen, for the people asked for (absent people are absent)."""
    # Plain DB-API tuples of the used columns; statuses, tags and enums decoded once per distinct value.
    rows = select_in(
        conn,
        OBSERVED,
        ["email", "system", "external_id", "global_state", "statuses", "tags"],
        "email",
        list(emails),
        where=None if system is None else {"system": system},
    )
    out: dict[str, dict[str, Seen]] = {}
    states = GLOBAL_STATES
    for email, system_name, external_id, global_state, statuses, tags in rows:
        by_system = out.get(email)
        if by_system is None:
            by_system = out[email] = {}
        by_system[system_name] = Seen(
            external_id or None, _statuses(statuses), states[global_state], _tag_set(tags)
        )
    return out


GLOBAL_STATES = {state.value: state for state in GlobalState}
STATUSES = {status.value: status for status in Status}


@lru_cache(maxsize=4096)
def _statuses(packed: str) -> Mapping[str, Status]:
    # One mapping per distinct text, shared by every Seen that shows it: read-only, so that no caller
    # can change what the others see.
    return MappingProxyType({purpose: STATUSES[value] for purpose, value in json.loads(packed).items()})


def _tag_set(tags: Any) -> frozenset[str]:
    """SQLite hands back the tags' JSON text, PostgreSQL's driver the decoded list."""
    if isinstance(tags, str):
        return _tag_set_of_text(tags)
    return frozenset(tags or ())


@lru_cache(maxsize=4096)
def _tag_set_of_text(text: str) -> frozenset[str]:
    # Most people carry one of a few tag sets (often none): decode each distinct text once.
    return frozenset(json.loads(text) or ())


def email_of(conn: Connection, system: str, external_id: str) -> str | None:
    """The person a vendor id belongs to, as last observed (webhooks of HubSpot send only ids)."""
    query = (
        select(OBSERVED.c.email)
        .where(OBSERVED.c.system == system, OBSERVED.c.external_id == external_id)
        .limit(1)
    )
    found: str | None = conn.execute(query).scalar()
    return found


def next_people(conn: Connection, after: str, *, dirty_only: bool, limit: int) -> list[str]:
    """The next ``limit`` people after ``after`` in the snapshot (keyset paging: bounded memory)."""
    # On the DB-API cursor: through a Core statement and its Result, paging 1M people cost three times as
    # much, in the process that hands out a pooled pass's batches (docs/benchmarks.md).
    mark = placeholder(conn)
    dirty = f"dirty = {mark} AND " if dirty_only else ""
    sql = (
        f"SELECT DISTINCT email FROM {OBSERVED.name} WHERE {dirty}email > {mark} ORDER BY email LIMIT {mark}"
    )
    params = (True, after, limit) if dirty_only else (after, limit)
    return [email for (email,) in fetch_all(conn, sql, params)]


def drop(conn: Connection, system: str, emails: Sequence[str]) -> None:
    """``system`` no longer holds these people (deleted there): planning no longer aligns them there.

    Their rows in the other systems are untouched, and no consent fact comes of it: a deletion in a
    vendor is neither a grant nor an objection (a record the vendor still shows as erased is, R21).
    """
    for start in range(0, len(emails), 1000):  # bounded parameter lists (SQLite caps them)
        chunk = list(emails[start : start + 1000])
        conn.execute(delete(OBSERVED).where(OBSERVED.c.system == system, OBSERVED.c.email.in_(chunk)))


def drop_unread(conn: Connection, system: str, read_at: datetime) -> None:
    """The rows of ``system`` a completed full pull at ``read_at`` did not write: people it no longer holds.

    Only after a pull that read everything (another audience, shop or mapping), so that a row read with the
    old settings never makes planning push to someone the system does not hold (a push would create them).
    Every row that pull read carries ``read_at`` as its ``observed_at``; a run holds its connectors' leases,
    so no other run writes this system's rows meanwhile."""
    conn.execute(delete(OBSERVED).where(OBSERVED.c.system == system, OBSERVED.c.observed_at < read_at))


def forget(conn: Connection, email: str) -> None:
    """Erasure (R21): drop what the snapshot holds of a person once every system has been told."""
    conn.execute(delete(OBSERVED).where(OBSERVED.c.email == email))
