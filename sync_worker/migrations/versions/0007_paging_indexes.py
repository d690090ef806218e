"""Two-column indexes for planning's per-batch reads, so a batch no longer reads the whole table.

``outbox_item (email, state)``: planning asks for a batch's open or unconfirmed items; the single state
index held every pending item of a first run. ``observed_person (dirty, email)``: incremental runs page
the dirty people in email order; with the dirty index alone each page sorted every dirty row.
Each pair starts with the column the single index it replaces held, so that index is dropped: every
write would otherwise keep both up to date.

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_item_email_state", "outbox_item", ["email", "state"])
    op.drop_index("ix_outbox_item_email", table_name="outbox_item")
    op.create_index("ix_observed_person_dirty_email", "observed_person", ["dirty", "email"])
    op.drop_index("ix_observed_person_dirty", table_name="observed_person")


def downgrade() -> None:
    op.create_index("ix_observed_person_dirty", "observed_person", ["dirty"])
    op.drop_index("ix_observed_person_dirty_email", table_name="observed_person")
    op.create_index("ix_outbox_item_email", "outbox_item", ["email"])
    op.drop_index("ix_outbox_item_email_state", table_name="outbox_item")
