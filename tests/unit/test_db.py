"""Migrations bring an empty database to the newest schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from sync_worker import db


def test_upgrade_reaches_head(database_url: str) -> None:
    engine = db.make_engine(database_url)
    assert not db.is_up_to_date(engine)
    db.upgrade(engine)
    assert db.is_up_to_date(engine)
    db.upgrade(engine)  # a second upgrade is a no-op
    assert db.current_revision(engine) == db.head_revision()
    engine.dispose()


def test_postgres_urls_use_psycopg3() -> None:
    assert db.normalise_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert db.normalise_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert db.normalise_url("sqlite:///x.db") == "sqlite:///x.db"
