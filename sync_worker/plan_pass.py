"""Planning one batch of people: decide, plan, log and enqueue, all in the batch's own transaction.

The same function serves a run's own process and the processes of a pooled pass (``sync_worker.plan_pool``).
A batch reads and writes only its own people's rows (their ledger facts, snapshot, outbox items, decision
times), so batches of different people commit independently and in any order: a pass cut short leaves
every committed batch whole and every other person still dirty for the next run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from connectors.base import Capabilities
from sync_worker import awaited, due, outbox, runlog, snapshot
from sync_worker.ledger_port import LedgerPort
from sync_worker.plan import Person, plan
from sync_worker.retry_budget import with_retry_budget
from sync_worker.run_report import RunReport


@dataclass(frozen=True)
class PlanJob:
    """What planning any batch of one run needs; picklable when its ledger is, so a pool can take it."""

    ledger: LedgerPort
    purposes: tuple[str, ...]
    capabilities: Mapping[str, Capabilities]
    erasures: frozenset[str]  # people with an erasure request still to carry out (R21)
    secret: bytes = field(repr=False)  # keyed hashes in the run log: never shown
    run_id: str
    now: datetime
    dry_run: bool
    complete: bool  # every enabled connector is in this run (see ``Reconciliation.complete``)


@dataclass
class Tally:
    """What the run report needs from a batch: small, so a pool process sends back only this."""

    planned: Counter[str] = field(default_factory=Counter)  # per system
    given_up: Counter[str] = field(default_factory=Counter)  # subscribes out of attempts, per system

    def add_to(self, report: RunReport) -> None:
        for system, count in self.planned.items():
            counts = report.counts.get(system)
            if counts is not None:
                counts.planned += count
        report.subscribes_given_up.update(self.given_up)


def plan_batch(engine: Engine, job: PlanJob, batch: list[str]) -> Tally:
    with engine.begin() as conn:
        decisions = job.ledger.decide(conn, batch, job.purposes, job.now)
        seen = snapshot.load_seen(conn, batch)
        flying = outbox.in_flight(conn, batch)
        pushed = awaited.unconfirmed(conn, batch)
        people = [
            Person(
                email=email,
                decisions=decisions.get(email, {}),
                seen=awaited.as_shown(seen.get(email, {}), pushed.accepted.get(email, {})),
                quarantined=any(d.quarantined for d in decisions.get(email, {}).values()),
                erasure=email in job.erasures,
                in_flight=frozenset(flying.get(email, set())),
            )
            for email in batch
        ]
        fresh = awaited.not_refused(plan(people, job.capabilities, job.run_id), pushed.refused)
        budget = with_retry_budget(conn, fresh)
        planned = budget.planned
        runlog.log_changes(conn, job.run_id, planned, job.secret, job.dry_run)
        if not job.dry_run:
            outbox.enqueue(conn, job.run_id, planned, job.now, budget.spent)
            if job.complete:
                snapshot.mark_clean(conn, batch)
            due.save(conn, {e: due.earliest(decisions.get(e, {}).values()) for e in batch})
    return Tally(
        Counter(item.change.system for item in planned),
        Counter(item.change.system for item in budget.given_up),
    )
