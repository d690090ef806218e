"""Imports every module that declares SQLModel tables, so that migrations and create_all see them all."""

from sync_worker import outbox, runlog, snapshot  # noqa: F401
