"""Outbox depth and the oldest unpropagated opt-out are read from the ledger database at scrape time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from sync_worker import db
from sync_worker.outbox import ITEMS
from sync_worker.web.metrics import Metrics
from sync_worker.web.outbox_gauges import oldest_optout_age, outbox_depth

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def item(key: str, action: str, state: str, age: timedelta) -> dict[str, object]:
    created = NOW - age
    return {
        "key": key, "run_id": "r1", "system": "klaviyo", "email": f"{key}@example.com", "slot": "newsletter",
        "action": action, "change": "{}", "state": state, "created_at": created, "updated_at": created,
    }  # fmt: skip


def test_gauges_count_open_items_and_age_the_oldest_open_opt_out(database_url: str) -> None:
    engine = db.make_engine(database_url)
    try:
        db.upgrade(engine)
        metrics = Metrics()
        metrics.watch_outbox(outbox_depth(engine), oldest_optout_age(engine, lambda: NOW))
        assert metrics.registry.get_sample_value("sync_outbox_depth") == 0
        assert metrics.registry.get_sample_value("sync_oldest_unpropagated_optout_age_seconds") == 0
        with engine.begin() as conn:
            conn.execute(
                insert(ITEMS),
                [
                    item("a", "subscribe", "pending", timedelta(minutes=10)),  # not an opt-out
                    item("b", "unsubscribe", "failed", timedelta(minutes=5)),  # open: retried later
                    item("c", "unsubscribe", "done", timedelta(hours=1)),  # propagated
                ],
            )
        assert metrics.registry.get_sample_value("sync_outbox_depth") == 2
        assert metrics.registry.get_sample_value("sync_oldest_unpropagated_optout_age_seconds") == 300
    finally:
        engine.dispose()
