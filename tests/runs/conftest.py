"""Fixtures of the run tests: a migrated database on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog
from sqlalchemy import Engine

from sync_worker import db


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = db.make_engine(database_url)
    db.upgrade(made)
    yield made
    made.dispose()


@pytest.fixture(autouse=True)
def _fresh_logging() -> None:
    """A CLI test may have pointed structlog at a stream CliRunner has closed since."""
    structlog.reset_defaults()
