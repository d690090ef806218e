"""Ledger tables (SQLModel). Migration 0002 creates them; ingest works on their Core tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Table, UniqueConstraint
from sqlmodel import Field, SQLModel


def utc_column(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class Person(SQLModel, table=True):
    __tablename__ = "persons"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=320)  # normalised (DESIGN.md §2)
    created_at: datetime = utc_column()


class ExternalId(SQLModel, table=True):
    __tablename__ = "external_ids"
    __table_args__ = (UniqueConstraint("system", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="persons.id", index=True, ondelete="CASCADE")
    system: str = Field(max_length=64)
    external_id: str = Field(max_length=255)


class ConsentEvent(SQLModel, table=True):
    """Append-only (R32). After an erasure the personal columns are NULL and ``erased`` is set (R21)."""

    __tablename__ = "consent_events"
    __table_args__ = (UniqueConstraint("source", "source_event_id"),)
    id: int | None = Field(default=None, primary_key=True)  # also the chain order
    person_id: int | None = Field(default=None, foreign_key="persons.id", index=True, ondelete="SET NULL")
    purpose: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=16)
    occurred_at: datetime | None = utc_column(nullable=True)
    recorded_at: datetime = utc_column()
    source: str = Field(max_length=64)
    source_event_id: str = Field(max_length=255)
    method: str | None = Field(default=None, max_length=64)
    collection_point: str | None = Field(default=None, max_length=128)
    evidence: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    evidence_level: str | None = Field(default=None, max_length=16)  # snapshot at ingest, for receipts
    personal_hash: str = Field(max_length=64)  # kept by a tombstone
    content_hash: str = Field(max_length=64)
    chain_hash: str = Field(max_length=64)
    erased: bool = False


class ChainHead(SQLModel, table=True):
    """The newest link of the chain: lets verify notice deleted tail rows, and serialises appenders."""

    __tablename__ = "ledger_head"
    id: int = Field(default=1, primary_key=True)
    last_event_id: int = 0
    chain_hash: str = Field(default="", max_length=64)


class Purchase(SQLModel, table=True):
    __tablename__ = "purchases"
    __table_args__ = (UniqueConstraint("source", "source_event_id"),)
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="persons.id", index=True, ondelete="CASCADE")
    order_id: str | None = Field(default=None, max_length=255)
    occurred_at: datetime = utc_column()
    recorded_at: datetime = utc_column()
    source: str = Field(max_length=64)
    source_event_id: str = Field(max_length=255)
    paid: bool
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    opt_out_offered: bool = True
    opt_out_used: bool = False


class Suppression(SQLModel, table=True):
    """R21: only the keyed hash of the address, why and when; no address."""

    __tablename__ = "suppressions"
    keyed_hash: str = Field(primary_key=True, max_length=64)
    reason: str = Field(max_length=32)
    created_at: datetime = utc_column()


class ErasureRequest(SQLModel, table=True):
    """Art. 17/19 outbox: every connected system must delete the person; the address goes once pushed."""

    __tablename__ = "erasure_requests"
    id: int | None = Field(default=None, primary_key=True)
    keyed_hash: str = Field(index=True, max_length=64)
    email: str | None = Field(default=None, max_length=320)  # cleared when done_at is set
    requested_at: datetime = utc_column()
    done_at: datetime | None = utc_column(nullable=True)


def core(model: type[SQLModel]) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


PERSONS = core(Person)
EXTERNAL_IDS = core(ExternalId)
EVENTS = core(ConsentEvent)
HEAD = core(ChainHead)
PURCHASES = core(Purchase)
SUPPRESSIONS = core(Suppression)
ERASURES = core(ErasureRequest)
