"""The migrations build exactly the schema the SQLModel tables declare, so neither can drift."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import sync_worker.tables  # noqa: F401  (registers every table)
from sync_worker import db


def test_migrations_match_the_declared_tables(database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert differences == []


def test_snapshot_is_indexed_by_person(tmp_path: object) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path}/s.db")
    db.upgrade(engine)
    indexes = {tuple(index["column_names"]) for index in inspect(engine).get_indexes("observed_person")}
    engine.dispose()
    assert ("email",) in indexes
