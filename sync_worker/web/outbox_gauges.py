"""Outbox gauges read from the ledger database at scrape time, so every replica reports the shared truth.

An opt-out is "unpropagated" while an outbox item that takes consent away (anything but a subscribe:
unsubscribe, erase, re-permission tag) is still open or was refused by the vendor; its age is what an
operator alerts on (R25).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from sync_worker.outbox import ITEMS, OPEN, UNPROPAGATED_OPTOUT


def outbox_depth(engine: Engine) -> Callable[[], float]:
    def depth() -> float:
        with engine.connect() as conn:
            return float(conn.execute(select(func.count()).where(ITEMS.c.state.in_(OPEN))).scalar_one())

    return depth


def oldest_optout_age(engine: Engine, clock: Callable[[], datetime]) -> Callable[[], float]:
    def age() -> float:
        query = select(func.min(ITEMS.c.created_at)).where(UNPROPAGATED_OPTOUT)
        with engine.connect() as conn:
            oldest: datetime | None = conn.execute(query).scalar_one()
        if oldest is None:
            return 0.0
        # SQLite hands timezone-aware columns back naive; they were written in UTC.
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        return max(0.0, (clock() - oldest).total_seconds())

    return age
