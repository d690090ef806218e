"""Set-based statements at DB-API speed: SQLAlchemy's per-row parameter handling would cost more than
the database's own work on large batches (see docs/benchmarks.md), so rows go to ``executemany`` directly
(on PostgreSQL: COPY, or one statement with an array per column), through the column types' own bind
processors so stored values are exactly what the ORM would store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, Connection, DateTime, Table


def placeholder(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _sqlite_datetime(value: datetime | None) -> str | None:
    """SQLAlchemy's SQLite storage format, made by the C ``isoformat`` (its own processor is 10x slower)."""
    if value is None:
        return None
    if value.tzinfo is not None and value.utcoffset():
        value = value.astimezone(UTC)
    # The first 26 characters are the naive UTC time; an aware value adds only its "+00:00".
    return value.isoformat(sep=" ", timespec="microseconds")[:26]


def binder(conn: Connection, table: Table, column: str) -> Callable[[Any], Any] | None:
    """The column type's bind processor (None: the driver takes the value as it is)."""
    dialect = conn.dialect
    column_type = table.c[column].type
    if dialect.name == "sqlite" and isinstance(column_type, DateTime):
        return _sqlite_datetime
    if dialect.name == "postgresql" and isinstance(column_type, JSON):
        # The serialised text, which the server parses as the column's type: psycopg's Json wrapper
        # would serialise a value again every time it is written, even a value shared by many rows.
        null = None if column_type.none_as_null else "null"
        return lambda value: null if value is None else json.dumps(value)
    return column_type.dialect_impl(dialect).bind_processor(dialect)


def insert_bound(conn: Connection, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Insert rows of already bound values: COPY on PostgreSQL (psycopg), one executemany elsewhere."""
    if not rows:
        return
    driver = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        # COPY streams the rows in one statement; executemany sends and parses one INSERT per row.
        sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
        return
    mark = placeholder(conn)
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    conn.exec_driver_sql(sql, rows)


def insert_rows(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], on_conflict: Sequence[str] = ()
) -> None:
    """One executemany for all rows (all with the same keys); ``on_conflict`` keys make it insert-or-skip."""
    if not rows:
        return
    columns = list(rows[0])
    processors = [binder(conn, table, c) for c in columns]
    # Column by column: one processor call per value and no per-row branching.
    by_column = [
        [row[c] for row in rows] if p is None else [p(row[c]) for row in rows]
        for c, p in zip(columns, processors, strict=True)
    ]
    conflict = f" ON CONFLICT ({', '.join(on_conflict)}) DO NOTHING" if on_conflict else ""
    if conn.dialect.name == "postgresql":
        # One statement with one array per column instead of one INSERT per row.
        arrays = ", ".join(f"%s::{table.c[c].type.compile(conn.dialect)}[]" for c in columns)
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays}){conflict}"
        conn.exec_driver_sql(sql, tuple(by_column))
        return
    mark = placeholder(conn)
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))}){conflict}"
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
    mark = placeholder(conn)
    equal = list((where or {}).items())
    in_values, in_params = any_of(conn, key, values)
    conditions = [*(f"{name} = {mark}" for name, _ in equal), in_values]
    sql = f"SELECT {', '.join(columns)} FROM {table.name} WHERE {' AND '.join(conditions)}"
    return fetch_all(conn, sql, (*(v for _, v in equal), *in_params))


def any_of(conn: Connection, column: str, values: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
    """``column IN values`` as SQL for ``fetch_all`` and its parameters."""
    mark = placeholder(conn)
    if conn.dialect.name == "postgresql":
        # One array parameter: psycopg would otherwise parse a statement of thousands of placeholders.
        return f"{column} = ANY({mark})", (list(values),)
    return f"{column} IN ({', '.join([mark] * len(values))})", tuple(values)


def fetch_all(conn: Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run ``sql`` (with the driver's placeholders, ``placeholder(conn)``) on the DB-API cursor of the same
    connection and transaction: its plain tuples cost less than Rows, and no statement is compiled."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params)
        # A list of tuples already (no row factory is set): not copied row by row.
        return cast("list[tuple[Any, ...]]", cursor.fetchall())
    finally:
        cursor.close()
