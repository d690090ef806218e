"""The hash chain over consent events (tamper evidence, R32).

Each row stores ``personal_hash`` (its personal columns), ``content_hash`` = SHA-256(personal_hash ||
hash of its public columns) and ``chain_hash`` = SHA-256(previous chain_hash || content_hash). Erasure nulls
the personal columns but keeps the hashes, so the chain still verifies after an erasure (R21) and still
reveals any altered, deleted or inserted row, including the public columns of a tombstone.
Appenders serialise on the ``ledger_head`` row (and a PostgreSQL advisory lock) so replicas cannot fork it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, text, update

from sync_worker.ledger.tables import EVENTS, HEAD, PERSONS

# Any fixed 64-bit number: the advisory lock every ledger appender takes on PostgreSQL.
ADVISORY_LOCK_KEY = 0x5C_0115E47_1ED6E


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything in the ledger is stored in UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# One encoder for every hash: canonical (sorted keys, no spaces) and built once, not per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _iso(moment: datetime | None) -> str | None:
    """UTC ISO 8601; naive values (SQLite) are UTC already."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    elif moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment.isoformat()


def _sha256(values: list[Any]) -> str:
    return hashlib.sha256(_CANONICAL.encode(values).encode("utf-8")).hexdigest()


def personal_hash(row: dict[str, Any]) -> str:
    """Hash of what an erasure blanks (R21), apart, so a tombstone keeps it and the rest still verifies."""
    return _sha256([
        row.get("email"), row.get("purpose"), _iso(row.get("occurred_at")), row.get("method"),
        row.get("collection_point"), row.get("evidence"), row.get("evidence_level"),
    ])  # fmt: skip


def content_hash(row: dict[str, Any], personal: str | None = None) -> str:
    """SHA-256 over the personal part's hash (given for tombstones) and the public fields."""
    part = personal if personal is not None else personal_hash(row)
    return _sha256([part, row["action"], _iso(row["recorded_at"]), row["source"], row["source_event_id"]])


def link(previous_chain_hash: str, row_content_hash: str) -> str:
    return hashlib.sha256(f"{previous_chain_hash}{row_content_hash}".encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Head:
    last_event_id: int
    chain_hash: str


def lock_head(conn: Connection) -> Head:
    """Take the appender's lock and read the chain head; held until the caller's transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    # The no-op UPDATE takes SQLite's write lock before we read, so two writers never read one head.
    conn.execute(update(HEAD).where(HEAD.c.id == 1).values(last_event_id=HEAD.c.last_event_id))
    row = conn.execute(select(HEAD.c.last_event_id, HEAD.c.chain_hash).where(HEAD.c.id == 1)).one()
    return Head(row.last_event_id, row.chain_hash)


def save_head(conn: Connection, head: Head) -> None:
    conn.execute(
        update(HEAD)
        .where(HEAD.c.id == 1)
        .values(last_event_id=head.last_event_id, chain_hash=head.chain_hash)
    )


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    broken_at: int | None = None  # id of the first row whose link does not hold
    problem: str = ""


def verify(conn: Connection, batch: int = 10_000) -> Verification:
    """Walk the chain in id order and report the first broken link."""
    columns = [c for c in EVENTS.c if c.name != "person_id"]
    query = (
        select(*columns, PERSONS.c.email)
        .select_from(EVENTS.outerjoin(PERSONS, PERSONS.c.id == EVENTS.c.person_id))
        .order_by(EVENTS.c.id)
        .execution_options(yield_per=batch)
    )
    previous, expected_id, checked = "", 1, 0
    for row in conn.execute(query):
        data = row._asdict()
        if data["id"] != expected_id:
            return Verification(
                False, checked, data["id"], f"rows {expected_id}..{data['id'] - 1} are missing"
            )
        personal = data["personal_hash"] if data["erased"] else None
        if content_hash(data, personal) != data["content_hash"]:
            return Verification(False, checked, data["id"], "content does not match its content_hash")
        if link(previous, data["content_hash"]) != data["chain_hash"]:
            return Verification(
                False, checked, data["id"], "chain_hash does not follow from the previous row"
            )
        previous, expected_id, checked = data["chain_hash"], expected_id + 1, checked + 1
    head = conn.execute(select(HEAD.c.last_event_id, HEAD.c.chain_hash).where(HEAD.c.id == 1)).one()
    if head.last_event_id != checked or head.chain_hash != previous:
        return Verification(
            False, checked, head.last_event_id, "the newest rows were deleted or the head altered"
        )
    return Verification(True, checked)
