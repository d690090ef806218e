"""When each person's decisions may next change by time alone, so incremental runs re-plan them.

Everyone already in the snapshot starts out due: the first run after the upgrade decides them once and
stores their real moments (before this table, a decision that time alone changed waited for ``--full``).

Revision ID: 0005
Revises: 0006 (numbered before 0006 but merged after it, so that a database already at 0006 upgrades)
Create Date: 2026-11-30
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "decision_due",
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email"),
    )
    op.create_index("ix_decision_due_due_at", "decision_due", ["due_at"])
    due = sa.table("decision_due", sa.column("email", sa.String()), sa.column("due_at", sa.DateTime(True)))
    observed = sa.table("observed_person", sa.column("email", sa.String()))
    long_ago = sa.literal(datetime(1970, 1, 1, tzinfo=UTC), sa.DateTime(timezone=True))
    everyone = sa.select(observed.c.email, long_ago).distinct()
    op.execute(due.insert().from_select(["email", "due_at"], everyone))


def downgrade() -> None:
    op.drop_index("ix_decision_due_due_at", table_name="decision_due")
    op.drop_table("decision_due")
