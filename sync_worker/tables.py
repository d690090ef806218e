"""Imports every module that declares SQLModel tables, so that migrations and create_all see them all."""

import sync_worker.ledger.tables  # noqa: F401
from sync_worker import due, outbox, runlog, snapshot  # noqa: F401
