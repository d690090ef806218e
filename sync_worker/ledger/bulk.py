"""Set-based statements at DB-API speed: SQLAlchemy's per-row parameter handling would cost more than
the database's own work on large batches (see docs/benchmarks.md), so rows go to ``executemany`` directly,
through the column types' own bind processors so stored values are exactly what the ORM would store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Table


def _placeholder(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _sqlite_datetime(value: datetime | None) -> str | None:
    """SQLAlchemy's SQLite storage format, made by the C ``isoformat`` (its own processor is 10x slower)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="microseconds")


def _processors(conn: Connection, table: Table, columns: Sequence[str]) -> list[Callable[[Any], Any] | None]:
    dialect = conn.dialect
    processors: list[Callable[[Any], Any] | None] = []
    for name in columns:
        column_type = table.c[name].type
        if dialect.name == "sqlite" and isinstance(column_type, DateTime):
            processors.append(_sqlite_datetime)
        else:
            processors.append(column_type.dialect_impl(dialect).bind_processor(dialect))
    return processors


def insert_rows(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], on_conflict: Sequence[str] = ()
) -> None:
    """One executemany for all rows (all with the same keys); ``on_conflict`` keys make it insert-or-skip."""
    if not rows:
        return
    columns = list(rows[0])
    mark = _placeholder(conn)
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    if on_conflict:
        sql += f" ON CONFLICT ({', '.join(on_conflict)}) DO NOTHING"
    processors = _processors(conn, table, columns)
    # Column by column: one processor call per value and no per-row branching.
    by_column = [
        [row[c] for row in rows] if p is None else [p(row[c]) for row in rows]
        for c, p in zip(columns, processors, strict=True)
    ]
    conn.exec_driver_sql(sql, list(zip(*by_column, strict=True)))


def select_in(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    key: str,
    values: Sequence[Any],
    *,
    where: dict[str, Any] | None = None,
) -> list[tuple[Any, ...]]:
    """``SELECT columns FROM table WHERE [col = v AND ...] key IN values``: one statement, plain placeholders."""
    if not values:
        return []
    mark = _placeholder(conn)
    equal = list((where or {}).items())
    conditions = [f"{name} = {mark}" for name, _ in equal] + [f"{key} IN ({', '.join([mark] * len(values))})"]
    sql = f"SELECT {', '.join(columns)} FROM {table.name} WHERE {' AND '.join(conditions)}"
    return [tuple(row) for row in conn.exec_driver_sql(sql, (*(v for _, v in equal), *values))]
