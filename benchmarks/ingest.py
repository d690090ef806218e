"""Ledger ingest rate vs a raw DB-API ``executemany`` of the very same rows (target: at least 1/2).

    python -m benchmarks.ingest [--events N] [--repeat 3] [--postgres URL] [--memory]

The raw baseline inserts the finished rows (hashes precomputed, persons already present) with one
``executemany``: the floor cost of writing them. The ledger run starts from validated ConsentEventIn
records and does everything: suppression check, de-duplication, person upsert, evidence grading,
hashing and the chained insert. ``--memory`` streams N lazily built records and reports peak RSS.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from sync_worker import db
from sync_worker.ledger.ingest import append_events
from sync_worker.ledger.records import ConsentEventIn
from sync_worker.ledger.tables import EVENTS, PERSONS
from sync_worker.policy import Point, Policy

NOW = datetime(2026, 6, 1, tzinfo=UTC)
POLICY = Policy(collection_points=(("website:footer", Point(("newsletter", "promotions"))),))
SECRET = b"bench-secret"


def records(count: int, people: int) -> Iterator[ConsentEventIn]:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(count):
        yield ConsentEventIn(
            email=f"person{i % people}@example.nl",
            purpose=("newsletter", "promotions")[i % 2],
            action="grant" if i % 5 else "withdraw",
            occurred_at=start + timedelta(seconds=i),
            source="website",
            source_event_id=f"f-{i}",
            method="web_form",
            collection_point="website:footer",
        )


def fresh_engine(postgres: str | None) -> Engine:
    if postgres is None:
        engine = db.make_engine(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    else:
        admin = create_engine(db.normalise_url(postgres), isolation_level="AUTOCOMMIT")
        name = f"bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        engine = db.make_engine(
            make_url(db.normalise_url(postgres)).set(database=name).render_as_string(False)
        )
    db.upgrade(engine)
    return engine


def run_ledger(engine: Engine, batch: list[ConsentEventIn]) -> float:
    started = time.perf_counter()
    with engine.begin() as conn:
        append_events(conn, batch, policy=POLICY, secret=SECRET, now=NOW)
    return time.perf_counter() - started


def run_raw(engine: Engine, rows: list[dict[str, object]], persons: list[dict[str, object]]) -> float:
    columns = list(rows[0])
    sql = f"INSERT INTO consent_events ({', '.join(columns)}) VALUES ({', '.join(['%s' if engine.dialect.name == 'postgresql' else '?'] * len(columns))})"
    with engine.begin() as conn:
        conn.execute(PERSONS.insert(), persons)
    values = [tuple(_plain(row[c]) for c in columns) for row in rows]
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        cursor.executemany(sql, values)
        raw.commit()
        return time.perf_counter() - started
    finally:
        raw.close()


def _plain(value: object) -> object:
    import json

    return json.dumps(value) if isinstance(value, dict) else value


def finished_rows(engine: Engine) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    with engine.connect() as conn:
        rows = [r._asdict() for r in conn.execute(EVENTS.select().order_by(EVENTS.c.id))]
        persons = [r._asdict() for r in conn.execute(PERSONS.select())]
    return rows, persons


def measure(count: int, repeat: int, postgres: str | None) -> None:
    batch = list(records(count, max(1, count // 4)))
    ledger_times, raw_times = [], []
    for _ in range(repeat):
        engine = fresh_engine(postgres)
        ledger_times.append(run_ledger(engine, batch))
        rows, persons = finished_rows(engine)
        engine.dispose()
        engine = fresh_engine(postgres)
        raw_times.append(run_raw(engine, rows, persons))
        engine.dispose()
    ledger, raw = statistics.median(ledger_times), statistics.median(raw_times)
    backend = "postgresql" if postgres else "sqlite"
    print(f"{backend}: {count} events, median of {repeat}")
    print(f"  ledger append_events: {count / ledger:>10,.0f} events/s ({ledger:.2f} s)")
    print(f"  raw executemany:      {count / raw:>10,.0f} events/s ({raw:.2f} s)")
    print(f"  ratio ledger/raw:     {raw / ledger:.2f}")


def memory(count: int, postgres: str | None) -> None:
    engine = fresh_engine(postgres)
    started = time.perf_counter()
    with engine.begin() as conn:
        result = append_events(
            conn, records(count, max(1, count // 4)), policy=POLICY, secret=SECRET, now=NOW
        )
    took = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"streamed {result.inserted} events in {took:.1f} s ({result.inserted / took:,.0f}/s); peak RSS {peak_mb:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", default=None, help="admin URL of a PostgreSQL server")
    parser.add_argument("--memory", action="store_true", help="stream --events lazily and report peak RSS")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu?'}, python {platform.python_version()}"
    )
    if args.memory:
        memory(args.events, args.postgres)
    else:
        measure(args.events, args.repeat, args.postgres)


if __name__ == "__main__":
    main()
