"""How many attempts a change has left across runs, and the opt-outs that have not reached a system.

A subscribe a run does not finish is superseded by the next run (never pushed on an old decision, R27),
which plans it afresh. The fresh item continues the count of the ones before it since the slot's last
accepted subscribe, so a subscribe a vendor keeps failing is parked after ``MAX_ATTEMPTS`` and no longer
planned, instead of being retried with a new count by every run. Changes that take consent away are
never given up (R25): while one has not reached its system, every run reports it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, and_, func, or_, select

from sync_worker.outbox import ITEMS, MAX_ATTEMPTS, SUBSCRIBE
from sync_worker.plan import PlannedChange
from sync_worker.snapshot import aware

Slot = tuple[str, str, str]  # system, email, slot


@dataclass
class Budget:
    """The changes still worth planning, the attempts already spent on them, and the subscribes given up."""

    planned: list[PlannedChange]
    spent: dict[str, int] = field(default_factory=dict)  # outbox key -> attempts carried over
    given_up: list[PlannedChange] = field(default_factory=list)


def with_retry_budget(conn: Connection, planned: Sequence[PlannedChange]) -> Budget:
    """Carry earlier attempts over to the subscribes planned again; drop those that used them all."""
    subscribes = [p for p in planned if p.change.action.value == SUBSCRIBE]
    if not subscribes:
        return Budget(list(planned))
    used = attempts_used(conn, sorted({p.change.email for p in subscribes}))
    budget = Budget([])
    for item in planned:
        spent = used.get((item.change.system, item.change.email, item.slot), 0)
        if item.change.action.value != SUBSCRIBE or spent == 0:
            budget.planned.append(item)
        elif spent >= MAX_ATTEMPTS:
            budget.given_up.append(item)
        else:
            budget.planned.append(item)
            budget.spent[item.change.key] = spent
    return budget


def attempts_used(conn: Connection, emails: Sequence[str]) -> dict[Slot, int]:
    """Attempts spent on each slot's subscribe since it was last accepted (MAX once one was parked).

    Each subscribe starts from the count of the one before it, so the latest carries the count; an operator's
    retry (sync_worker.outbox_attention) renews the budget by setting it back to 0. A subscribe an operator
    dismissed stays given up.
    """
    query = (
        select(
            ITEMS.c.system, ITEMS.c.email, ITEMS.c.slot, ITEMS.c.state, ITEMS.c.attempts, ITEMS.c.created_at
        )
        .where(
            ITEMS.c.email.in_(list(emails)),
            ITEMS.c.action == SUBSCRIBE,
            ITEMS.c.state.in_(("superseded", "parked", "dismissed", "done")),
        )
        .order_by(ITEMS.c.created_at, ITEMS.c.key)
    )
    used: dict[Slot, int] = {}
    for system, email, slot, state, attempts, _created in conn.execute(query):
        key = (system, email, slot)
        if state == "done":
            used.pop(key, None)  # accepted: the count starts again
        elif state in ("parked", "dismissed"):
            used[key] = MAX_ATTEMPTS  # refused by the vendor, or out of attempts: given up
        else:
            used[key] = int(attempts)
    return used


@dataclass(frozen=True, slots=True)
class StuckOptOut:
    """Changes taking consent away that have not reached one system: failing past the bound, or refused."""

    system: str
    failing: int
    refused: int
    oldest: datetime


def stuck_optouts(conn: Connection) -> list[StuckOptOut]:
    """Per system: opt-outs still failing after MAX_ATTEMPTS, and refused ones not yet read back."""
    failing = and_(ITEMS.c.state == "failed", ITEMS.c.attempts >= MAX_ATTEMPTS)
    refused = and_(ITEMS.c.state == "parked", ITEMS.c.verified.is_(None))
    query = (
        select(ITEMS.c.system, ITEMS.c.state, func.count(), func.min(ITEMS.c.created_at))
        .where(ITEMS.c.action != SUBSCRIBE, or_(failing, refused))
        .group_by(ITEMS.c.system, ITEMS.c.state)
    )
    counts: Counter[tuple[str, str]] = Counter()
    oldest: dict[str, datetime] = {}
    for system, state, count, first in conn.execute(query):
        counts[system, state] += int(count)
        oldest[system] = min(oldest.get(system, first), first)
    return [
        StuckOptOut(system, counts[system, "failed"], counts[system, "parked"], aware(oldest[system]))
        for system in sorted(oldest)
    ]
