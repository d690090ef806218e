"""Shared fixtures: databases (SQLite always, PostgreSQL when SYNC_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import structlog
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sync_worker.db import normalise_url

POSTGRES_ENV = "SYNC_TEST_POSTGRES_URL"
POSTGRES_SKIP_REASON = f"{POSTGRES_ENV} is not set: PostgreSQL tests are skipped (CI sets it)"


def pytest_report_header() -> str:
    url = os.environ.get(POSTGRES_ENV)
    return f"postgres: {'on, ' + url if url else 'off; ' + POSTGRES_SKIP_REASON}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get(POSTGRES_ENV):
        return
    skip = pytest.mark.skip(reason=POSTGRES_SKIP_REASON)
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _clean_sync_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start from defaults: no SYNC_ variable of the developer's shell leaks in."""
    for name in list(os.environ):
        if name.startswith("SYNC_") and name != POSTGRES_ENV:
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """A command run under CliRunner configures logging onto a stream that is closed afterwards."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    admin_url = os.environ.get(POSTGRES_ENV)
    if not admin_url:
        pytest.skip(POSTGRES_SKIP_REASON)
    admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    name = f"sync_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(normalise_url(admin_url)).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """The same test against SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.db"
    return str(request.getfixturevalue("postgres_url"))
