"""Deciding and planning chunks of people from a ledger, for ``benchmarks.decide_plan``: in its own process,
or in each process of its pool. Imports no more than the runner's planning processes do
(``sync_worker.plan_pool``), so a pool process starts as fast as theirs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine

from connectors.base import Capabilities
from sync_worker import db, snapshot
from sync_worker.collector import tune_collector
from sync_worker.ledger_port import DecisionLike
from sync_worker.observe import Seen
from sync_worker.plan import Person, PlannedChange, plan
from sync_worker.sql_ledger import SqlLedger

Read = tuple[Mapping[str, Mapping[str, DecisionLike]], dict[str, dict[str, Seen]]]
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # fixed, so every run decides the same moment


@dataclass
class Planner:
    """What one process needs to decide and plan chunks of people; picklable until its engine is made."""

    url: str
    ledger: SqlLedger
    caps: Mapping[str, Capabilities]
    purposes: tuple[str, ...]
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = db.make_engine(self.url)
        return self._engine

    def read(self, conn: Connection, batch: list[str], stages: dict[str, float]) -> Read:
        """Decisions and snapshot of one chunk, as the runner reads them in one transaction."""
        mark = time.process_time()
        decisions = self.ledger.decide(conn, batch, self.purposes, NOW)
        stages["decide"] += time.process_time() - mark
        mark = time.process_time()
        seen = snapshot.load_seen(conn, batch)
        stages["load_seen"] += time.process_time() - mark
        return decisions, seen

    def plan(self, batch: list[str], read: Read, stages: dict[str, float]) -> list[PlannedChange]:
        """Plan one chunk read by ``read``, after its transaction (as the runner does)."""
        decisions, seen = read
        mark = time.process_time()
        chunk = [
            Person(
                email,
                decisions.get(email, {}),
                seen.get(email, {}),
                quarantined=any(d.quarantined for d in decisions.get(email, {}).values()),
            )
            for email in batch
        ]
        planned = plan(chunk, self.caps, "bench")
        stages["plan"] += time.process_time() - mark
        return planned


_planner: Planner | None = None


def start_worker(planner: Planner) -> None:
    global _planner  # noqa: PLW0603 - one planner per pool process
    tune_collector()
    _planner = planner


def pooled_chunk(batch: list[str]) -> tuple[int, int, dict[str, float]]:
    """Decide and plan one chunk in a pool process. Only the count goes back: in the runner's pool each
    process writes the changes it planned itself and sends back a small tally."""
    assert _planner is not None, "set by start_worker"
    stages = {"decide": 0.0, "load_seen": 0.0, "plan": 0.0}
    with _planner.engine.begin() as conn:
        read = _planner.read(conn, batch, stages)
    return len(batch), len(_planner.plan(batch, read, stages)), stages
