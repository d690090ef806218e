"""One snapshot row per system x person, the purposes' statuses packed in one JSON text.

Planning reads every person's snapshot; one row per purpose (about 15 per person with four systems) made
that the costliest read. The rows are converted a page of people at a time: the upgrade needs little memory.

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-30
"""

import json
from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACCOUNT = "*"  # the old layout's account row: global state and tags
BATCH = 5_000


def _old() -> sa.Table:
    return sa.Table(
        "observed_state",
        sa.MetaData(),
        sa.Column("system", sa.String(), primary_key=True),
        sa.Column("email", sa.String(), primary_key=True),
        sa.Column("slot", sa.String(), primary_key=True),
        sa.Column("value", sa.String(), nullable=False),
        sa.Column("external_id", sa.String(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dirty", sa.Boolean(), nullable=False),
    )


def _new() -> sa.Table:
    return sa.Table(
        "observed_person",
        sa.MetaData(),
        sa.Column("system", sa.String(), primary_key=True),
        sa.Column("email", sa.String(), primary_key=True),
        sa.Column("external_id", sa.String(), nullable=True),
        sa.Column("global_state", sa.String(), nullable=False),
        sa.Column("statuses", sa.String(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dirty", sa.Boolean(), nullable=False),
    )


def upgrade() -> None:
    _replace(_old(), _new(), _packed)


def downgrade() -> None:
    _replace(_new(), _old(), _unpacked)


def _replace(source: sa.Table, target: sa.Table, convert: Any) -> None:
    target.create(op.get_bind())
    _copy(convert, source, target)
    for name in ("email", "dirty"):
        op.create_index(f"ix_{target.name}_{name}", target.name, [name])
        op.drop_index(f"ix_{source.name}_{name}", table_name=source.name)
    op.drop_table(source.name)


def _copy(convert: Any, source: Any, target: Any) -> None:
    """``source`` through ``convert`` into ``target``, one system and a page of people at a time."""
    bind = op.get_bind()
    systems = list(bind.execute(sa.select(source.c.system).distinct()).scalars())
    for system in systems:
        after = ""
        while True:
            page = sa.select(source.c.email).where(source.c.system == system, source.c.email > after)
            emails = list(bind.execute(page.distinct().order_by(source.c.email).limit(BATCH)).scalars())
            if not emails:
                break
            query = sa.select(source).where(source.c.system == system, source.c.email.in_(emails))
            rows = bind.execute(query.order_by(source.c.email)).mappings()
            bind.execute(target.insert(), list(convert(rows)))
            after = emails[-1]


def _packed(rows: Any) -> Iterator[dict[str, Any]]:
    """Old rows of one system x person (account row + one per purpose) -> one new row."""
    for (system, email), group in groupby(rows, key=lambda row: (row["system"], row["email"])):
        parts = list(group)
        account = next((row for row in parts if row["slot"] == ACCOUNT), None)
        external_ids = [row["external_id"] for row in parts if row["external_id"]]
        statuses = {row["slot"]: row["value"] for row in parts if row["slot"] != ACCOUNT}
        yield {
            "system": system,
            "email": email,
            "external_id": external_ids[-1] if external_ids else None,
            "global_state": account["value"] if account else "active",
            "statuses": json.dumps(dict(sorted(statuses.items()))),
            "tags": sorted(account["tags"] or ()) if account else [],
            "observed_at": max(row["observed_at"] for row in parts),
            "dirty": any(row["dirty"] for row in parts),
        }


def _unpacked(rows: Any) -> Iterator[dict[str, Any]]:
    for row in rows:
        base = {
            "system": row["system"],
            "email": row["email"],
            "external_id": row["external_id"],
            "observed_at": row["observed_at"],
            "dirty": row["dirty"],
        }
        yield {**base, "slot": ACCOUNT, "value": row["global_state"], "tags": row["tags"]}
        for purpose, status in json.loads(row["statuses"]).items():
            yield {**base, "slot": purpose, "value": status, "tags": None}
