"""Liveness and readiness.

Ready means: the database answers, its schema is at the newest migration, and a run finished recently
enough (or the process started recently enough to not have had one yet). The last-run lookup is
injected: in-process by default, from the runs table when several replicas share PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from sync_worker import db


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    detail: str


@dataclass
class Readiness:
    engine: Engine
    last_run_at: Callable[[], datetime | None]
    max_run_age: timedelta
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
        if checks["database"].ok:
            current, head = db.current_revision(self.engine), db.head_revision()
            checks["migrations"] = Check(current == head, f"at {current or 'empty'}, head {head}")
        checks["last_run"] = self._last_run()
        return checks

    def _last_run(self) -> Check:
        now = self.clock()
        last = self.last_run_at()
        if last is None:
            waited = now - self.started_at
            ok = waited <= self.max_run_age
            return Check(ok, f"no run yet, started {int(waited.total_seconds())} s ago")
        age = now - last
        return Check(
            age <= self.max_run_age,
            f"last run {int(age.total_seconds())} s ago (limit {int(self.max_run_age.total_seconds())} s)",
        )
