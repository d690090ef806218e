"""Alembic environment: the engine comes from the caller (sync_worker.db), never from an ini file."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import sync_worker.tables  # noqa: F401  (registers every table on SQLModel.metadata)

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
