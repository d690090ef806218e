"""Liveness and readiness.

Ready means: the database answers, its schema is at the newest migration, and a reconciliation run
finished recently enough (or the process started recently enough to not have had one yet). The last run
is read from the shared runs table, so every replica on one database gives the same answer: a standby
whose peer holds the connector leases and does the runs is as ready as that peer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from sync_worker import db, runlog


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    detail: str


def shared_last_run(engine: Engine) -> Callable[[], datetime | None]:
    """The end of the newest finished scheduled or manual run in the database, by any replica."""

    def last_run_at() -> datetime | None:
        with engine.connect() as connection:
            return runlog.last_reconciliation_at(connection)

    return last_run_at


@dataclass
class Readiness:
    engine: Engine
    last_run_at: Callable[[], datetime | None]
    max_run_age: timedelta  # also the start-up grace: how long a fresh process may wait for a first run
    started_at: datetime
    clock: Callable[[], datetime]

    def check(self) -> dict[str, Check]:
        """Blocking (database I/O): call it from a worker thread."""
        checks: dict[str, Check] = {}
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            checks["database"] = Check(True, "reachable")
        except SQLAlchemyError as error:
            checks["database"] = Check(False, f"unreachable: {type(error).__name__}")
            checks["migrations"] = Check(False, "unknown: database unreachable")
            checks["last_run"] = Check(False, "unknown: database unreachable")
            return checks
        current, head = db.current_revision(self.engine), db.head_revision()
        checks["migrations"] = Check(current == head, f"at {current or 'empty'}, head {head}")
        if current != head:
            # The runs table may not exist yet, or not in the shape this code reads.
            checks["last_run"] = Check(False, "unknown: migrations not applied")
            return checks
        checks["last_run"] = self._last_run()
        return checks

    def _last_run(self) -> Check:
        now = self.clock()
        limit = int(self.max_run_age.total_seconds())
        try:
            last = self.last_run_at()
        except SQLAlchemyError as error:
            return Check(False, f"unknown: the runs table could not be read ({type(error).__name__})")
        if last is None:
            waited = int((now - self.started_at).total_seconds())
            if waited <= limit:
                return Check(True, f"no run yet, started {waited} s ago (start-up grace {limit} s)")
            return Check(False, f"no run yet, started {waited} s ago, past the start-up grace of {limit} s")
        age = int((now - last).total_seconds())
        if age <= limit:
            return Check(True, f"last run finished {age} s ago (limit {limit} s)")
        return Check(False, f"last run too old: finished {age} s ago (limit {limit} s)")


def not_ready_reasons(checks: dict[str, Check], accepting_work: bool) -> list[str]:
    """One line per failed check, and the shutdown, for the /readyz body."""
    reasons = [f"{name}: {check.detail}" for name, check in checks.items() if not check.ok]
    return reasons if accepting_work else [*reasons, "shutting down: not accepting work"]
