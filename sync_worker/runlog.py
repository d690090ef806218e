"""The reconciliation log: one row per run, one row per change, and the records we could not read.

People appear masked with a keyed hash to look them up (``--contact``): the log explains decisions
without becoming a second copy of the mailing list, and survives an erasure (R21) without personal data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Connection, DateTime, Text, insert, select, update
from sqlmodel import Field, SQLModel

from connectors.base import RecordError
from sync_worker.identity import keyed_hash, mask_email
from sync_worker.ledger.bulk import insert_rows
from sync_worker.logs import mask_emails_in
from sync_worker.plan import PlannedChange


class Run(SQLModel, table=True):
    __tablename__ = "run"

    id: str = Field(primary_key=True)
    trigger: str  # schedule, manual, webhook
    started_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    ended_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    dry_run: bool = False
    status: str = "running"  # running, success, partial, failed
    counts: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))  # per connector
    error: str | None = Field(default=None, sa_column=Column(Text))


class RunChange(SQLModel, table=True):
    __tablename__ = "run_change"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True)
    person: str  # masked address
    person_key: str = Field(index=True)  # keyed hash of the address, for `log --contact`
    system: str = Field(index=True)
    slot: str  # purpose, "*" for the account, "tag:<name>"
    action: str
    before: str
    after: str
    rule: str
    reason: str = Field(sa_column=Column(Text, nullable=False))
    event_ids: list[str] | None = Field(default=None, sa_column=Column(JSON))
    outbox_key: str | None = Field(default=None, index=True)
    push_result: str  # pending, accepted, rejected: <reason>, retry later: <reason>, dry run


class RejectedRecord(SQLModel, table=True):
    __tablename__ = "rejected_record"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True)
    system: str
    record_id: str | None = None
    field: str
    error: str = Field(sa_column=Column(Text, nullable=False))


RUNS: Any = Run.__table__  # type: ignore[attr-defined]
CHANGES: Any = RunChange.__table__  # type: ignore[attr-defined]
REJECTED: Any = RejectedRecord.__table__  # type: ignore[attr-defined]


def person_key(secret: bytes, email: str) -> str:
    return keyed_hash(secret, email)


def start_run(conn: Connection, run_id: str, trigger: str, dry_run: bool, now: datetime) -> None:
    conn.execute(insert(RUNS).values(id=run_id, trigger=trigger, started_at=now, dry_run=dry_run))


def finish_run(
    conn: Connection,
    run_id: str,
    *,
    status: str,
    counts: Mapping[str, Any],
    now: datetime,
    error: str | None,
) -> None:
    conn.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id)
        .values(status=status, counts=dict(counts), ended_at=now, error=error)
    )


def log_changes(
    conn: Connection, run_id: str, planned: Sequence[PlannedChange], secret: bytes, dry_run: bool
) -> None:
    shown: dict[str, tuple[str, str]] = {}  # email -> (masked, keyed hash): once per person, not per change
    rows = []
    for item in planned:
        email = item.change.email
        person = shown.get(email)
        if person is None:
            person = shown[email] = (mask_email(email), person_key(secret, email))
        rows.append(
            {
                "run_id": run_id,
                "person": person[0],
                "person_key": person[1],
                "system": item.change.system,
                "slot": item.slot,
                "action": item.change.action.value,
                "before": item.before,
                "after": item.after,
                "rule": item.rule,
                "reason": item.reason,
                "event_ids": list(item.event_ids),
                "outbox_key": None if dry_run else item.change.key,
                "push_result": "dry run: not pushed" if dry_run else "pending",
            }
        )
    insert_rows(conn, CHANGES, rows)  # DB-API speed: a first run writes some 3 changes per person


def log_push_results(conn: Connection, results: Mapping[str, str]) -> None:
    """The vendor's answer per change. Its words may name the address (Mailchimp: "<address> was
    permanently deleted", HubSpot: "No subscriber found for <address>"): masked like the person column."""
    for key, text in results.items():
        shown = mask_emails_in(text)
        conn.execute(update(CHANGES).where(CHANGES.c.outbox_key == key).values(push_result=shown))


def log_rejected(conn: Connection, run_id: str, errors: Sequence[RecordError]) -> None:
    rows = [
        {
            "run_id": run_id,
            "system": e.system,
            "record_id": e.record_id,
            "field": e.field,
            # A vendor's or the ledger's words may quote the address: masked like the person column.
            "error": mask_emails_in(e.message),
        }
        for e in errors
    ]
    if rows:
        conn.execute(insert(REJECTED), rows)


def runs(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    query = select(RUNS).order_by(RUNS.c.started_at.desc(), RUNS.c.id.desc()).limit(limit)
    return [dict(row) for row in conn.execute(query).mappings()]


def latest_run_id(conn: Connection) -> str | None:
    found = runs(conn, limit=1)
    return str(found[0]["id"]) if found else None


# Runs that read every system: a webhook run touches a few people and says nothing about the rest.
RECONCILING_TRIGGERS = ("schedule", "manual")
FINISHED = ("success", "partial")


def last_reconciliation_at(conn: Connection) -> datetime | None:
    """When the newest finished scheduled or manual run ended, whichever process or replica ran it.

    Finished means success or partial (a vendor or record failed, the rest was reconciled); a failed or
    still-running run does not count. Dry runs count: they read every system too.
    """
    # The newest by start, not max(ended_at): readiness probes ask every few seconds, and the start time
    # is indexed while the runs table grows by one row per webhook.
    query = (
        select(RUNS.c.ended_at)
        .where(RUNS.c.trigger.in_(RECONCILING_TRIGGERS), RUNS.c.status.in_(FINISHED))
        .order_by(RUNS.c.started_at.desc())
        .limit(1)
    )
    ended: datetime | None = conn.execute(query).scalar()
    # SQLite hands timezone-aware columns back naive; they were written in UTC.
    return ended.replace(tzinfo=UTC) if ended is not None and ended.tzinfo is None else ended


def changes(
    conn: Connection, run_id: str | None, *, key: str | None = None, system: str | None = None
) -> list[dict[str, Any]]:
    query = select(CHANGES).order_by(CHANGES.c.id)
    if run_id is not None:
        query = query.where(CHANGES.c.run_id == run_id)
    if key is not None:
        query = query.where(CHANGES.c.person_key == key)
    if system is not None:
        query = query.where(CHANGES.c.system == system)
    return [dict(row) for row in conn.execute(query).mappings()]


def rejected(conn: Connection, run_id: str) -> list[dict[str, Any]]:
    query = select(REJECTED).where(REJECTED.c.run_id == run_id).order_by(REJECTED.c.id)
    return [dict(row) for row in conn.execute(query).mappings()]
