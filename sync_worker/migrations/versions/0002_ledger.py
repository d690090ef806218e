"""Consent ledger: persons, external ids, hash-chained consent events, purchases, suppressions, erasures.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def utc(name: str, nullable: bool = False) -> "sa.Column[datetime]":
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "persons",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        utc("created_at"),
        sa.UniqueConstraint("email", name="uq_persons_email"),
    )
    op.create_table(
        "external_ids",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("persons.id", ondelete="CASCADE"), nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.UniqueConstraint("system", "external_id", name="uq_external_ids_system"),
    )
    op.create_index("ix_external_ids_person_id", "external_ids", ["person_id"])
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("persons.id", ondelete="SET NULL"), nullable=True),
        sa.Column("purpose", sa.String(64), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        utc("occurred_at", nullable=True),
        utc("recorded_at"),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("source_event_id", sa.String(255), nullable=False),
        sa.Column("method", sa.String(64), nullable=True),
        sa.Column("collection_point", sa.String(128), nullable=True),
        sa.Column("evidence", sa.JSON, nullable=True),
        sa.Column("evidence_level", sa.String(16), nullable=True),
        sa.Column("personal_hash", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("chain_hash", sa.String(64), nullable=False),
        sa.Column("erased", sa.Boolean, nullable=False),
        sa.UniqueConstraint("source", "source_event_id", name="uq_consent_events_source"),
    )
    op.create_index("ix_consent_events_person_id", "consent_events", ["person_id"])
    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("last_event_id", sa.Integer, nullable=False),
        sa.Column("chain_hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(
        sa.table("ledger_head", sa.column("id"), sa.column("last_event_id"), sa.column("chain_hash")),
        [{"id": 1, "last_event_id": 0, "chain_hash": ""}],
    )
    op.create_table(
        "purchases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("persons.id", ondelete="CASCADE"), nullable=False),
        sa.Column("order_id", sa.String(255), nullable=True),
        utc("occurred_at"),
        utc("recorded_at"),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("source_event_id", sa.String(255), nullable=False),
        sa.Column("paid", sa.Boolean, nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("opt_out_offered", sa.Boolean, nullable=False),
        sa.Column("opt_out_used", sa.Boolean, nullable=False),
        sa.UniqueConstraint("source", "source_event_id", name="uq_purchases_source"),
    )
    op.create_index("ix_purchases_person_id", "purchases", ["person_id"])
    op.create_table(
        "suppressions",
        sa.Column("keyed_hash", sa.String(64), primary_key=True),
        sa.Column("reason", sa.String(32), nullable=False),
        utc("created_at"),
    )
    op.create_table(
        "erasure_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("keyed_hash", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        utc("requested_at"),
        utc("done_at", nullable=True),
    )
    op.create_index("ix_erasure_requests_keyed_hash", "erasure_requests", ["keyed_hash"])


def downgrade() -> None:
    for name in ("erasure_requests", "suppressions", "purchases", "ledger_head", "consent_events", "external_ids", "persons"):
        op.drop_table(name)
