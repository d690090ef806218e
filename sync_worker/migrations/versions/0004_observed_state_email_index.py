"""Index the observed snapshot by person, so planning reads one batch of people without a full scan.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_observed_state_email", "observed_state", ["email"])


def downgrade() -> None:
    op.drop_index("ix_observed_state_email", table_name="observed_state")
