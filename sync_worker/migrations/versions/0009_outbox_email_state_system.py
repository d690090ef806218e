"""``outbox_item (email, state, system)`` in place of ``(email, state)``: a pull's echo checks read one
person's items in one system through it.

``outbox.verify`` and ``outbox.awaiting_echo`` ask for ``system = ? AND email = ? AND state IN (done,
parked)``. With ``(system, state)`` (migration 0008) and ``(email, state)`` both serving two of those
constraints, SQLite took the system one, which holds every done item the system ever had: each record a
pull read back scanned the whole outbox of its system, so the run after a first run grew with the square
of the list (10,000 people: 34 s before 0008, 300 to 400 s with it). A third column makes the email index
serve all three; as a prefix it still serves the reads by email and state alone.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_item_email_state_system", "outbox_item", ["email", "state", "system"])
    op.drop_index("ix_outbox_item_email_state", table_name="outbox_item")


def downgrade() -> None:
    op.create_index("ix_outbox_item_email_state", "outbox_item", ["email", "state"])
    op.drop_index("ix_outbox_item_email_state_system", table_name="outbox_item")
