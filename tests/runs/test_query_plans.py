"""Planning's per-batch reads use an index that serves all their constraints (SQLite's own plan).

Without the two-column indexes (migration 0007) SQLite took the single state or dirty index, which on a
first run holds every row: each batch of people then read the whole outbox or snapshot.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from sync_worker import db, outbox, snapshot

QUERIES = {
    # outbox.in_flight and awaited.unconfirmed: a batch's open or unconfirmed items
    "SELECT email, system, slot FROM outbox_item WHERE email IN ('a', 'b') "
    "AND state IN ('pending', 'in_flight', 'failed')": "ix_outbox_item_email_state_system",
    "SELECT email FROM outbox_item WHERE email IN ('a', 'b') AND state IN ('done', 'parked') "
    "AND verified IS NULL": "ix_outbox_item_email_state_system",
    # outbox.claim: a system's open items, not every item it ever had (migration 0008)
    "SELECT key FROM outbox_item WHERE system = 'mailchimp' AND state IN ('pending', 'in_flight', 'failed') "
    "AND (state = 'pending' OR state = 'in_flight') ORDER BY created_at, key LIMIT 2000": (
        "ix_outbox_item_system_state (system=? AND state=?)"
    ),
}


@pytest.mark.parametrize(("query", "index"), QUERIES.items())
def test_batch_reads_use_the_two_column_index(tmp_path: Path, query: str, index: str) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    db.upgrade(engine)
    with engine.connect() as conn:
        plan = " ".join(str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {query}")))
    engine.dispose()
    assert f"INDEX {index} " in plan, plan
    assert "TEMP B-TREE FOR DISTINCT" not in plan, plan


def _plan_of(engine: Any, call: Any, kind: str) -> str:
    """SQLite's plan for the one ``kind`` statement (SELECT, UPDATE) that ``call(conn)`` sends."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(kind):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    with engine.begin() as conn:
        call(conn)
        [(statement, parameters)] = sent
        return " ".join(
            str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        )


def test_a_push_claims_through_the_system_state_index(tmp_path: Path) -> None:
    """The query ``outbox.claim`` sends reads a system's open items alone, not every item it ever had."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    db.upgrade(engine)
    plan = _plan_of(
        engine,
        lambda conn: outbox.claim(conn, "mailchimp", datetime(2026, 11, 30, tzinfo=UTC), 100),
        "SELECT",
    )
    engine.dispose()
    assert "INDEX ix_outbox_item_system_state (system=? AND state=?)" in plan, plan


@pytest.mark.parametrize("check", ["verify", "awaiting_echo"])
def test_echo_checks_read_one_persons_items_in_one_system(tmp_path: Path, check: str) -> None:
    """A pull checks each record it reads against what was pushed to that person in that system. Through
    (system, state) SQLite read every done item of the system per record: the run after a first run grew
    with the square of the list (migration 0009)."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    db.upgrade(engine)
    now = datetime(2026, 11, 30, tzinfo=UTC)
    if check == "verify":
        plan = _plan_of(
            engine,
            lambda conn: outbox.verify(
                conn, "mailchimp", "a@example.nl", ["newsletter"], outcome="echo", now=now
            ),
            "UPDATE",
        )
    else:
        plan = _plan_of(
            engine, lambda conn: outbox.awaiting_echo(conn, "mailchimp", ["a@example.nl"]), "SELECT"
        )
    engine.dispose()
    assert "INDEX ix_outbox_item_email_state_system (email=? AND state=? AND system=?)" in plan, plan


def test_the_next_page_of_dirty_people_reads_them_in_order_from_their_index(tmp_path: Path) -> None:
    """``snapshot.next_people`` goes to the DB-API cursor, which SQLAlchemy's events do not see: SQLite's
    trace hands over the statement it runs, with its values."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    db.upgrade(engine)
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        sent: list[str] = []
        raw.set_trace_callback(sent.append)  # type: ignore[attr-defined]
        snapshot.next_people(conn, "", dirty_only=True, limit=1000)
        raw.set_trace_callback(None)  # type: ignore[attr-defined]
        [statement] = [s for s in sent if s.lstrip().upper().startswith("SELECT")]
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}"))
    engine.dispose()
    assert "INDEX ix_observed_person_dirty_email " in plan, plan
    assert "TEMP B-TREE" not in plan, plan
