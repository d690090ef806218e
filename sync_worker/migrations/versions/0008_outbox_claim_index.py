"""``outbox_item (system, state)``: a push claims a system's open items (pending, failed, in flight).

With the single system index SQLite read every item the system ever had on each claim, done ones
included: on a converged list of 100,000 people (some 80,000 done items per system) about 60 ms per claim,
eight claims per run, most of a quiet run's own time. The pair reads only the open ones. It starts with
the column the single index held, so that index is dropped: every write would otherwise keep both.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_item_system_state", "outbox_item", ["system", "state"])
    op.drop_index("ix_outbox_item_system", table_name="outbox_item")


def downgrade() -> None:
    op.create_index("ix_outbox_item_system", "outbox_item", ["system"])
    op.drop_index("ix_outbox_item_system_state", table_name="outbox_item")
