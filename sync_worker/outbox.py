"""The outbox: planned changes are committed before any push, pushed in vendor-sized batches, and settled.

States: ``pending`` (planned) -> ``in_flight`` (claimed by a run) -> ``done`` | ``failed`` (retried by
later runs) | ``parked`` (the vendor refused it; reported). A subscribe is given up (``parked``) after
``MAX_ATTEMPTS``; a change that takes consent away is never given up while it fails (R25: a withdrawal
must reach every system), and once past ``MAX_ATTEMPTS`` it is reported by every run. A ``superseded``
item was a subscribe left over from an earlier run, or one whose person's decision no longer allowed it
when its push was claimed (sync_worker.push_vet): it is never pushed without a fresh decision (R27), so
its person is decided again at once, and the new subscribe continues its count of attempts
(sync_worker.retry_budget), so a subscribe a vendor keeps failing is parked, not retried forever.

Crash safety: a claim is a committed ``in_flight`` mark with a time; a claim older than the lease is
taken over by the next run, which drains the outbox before pulling. A run that holds the system's
connector lease (sync_worker.lease) takes over every claim of that system at once: every pusher holds
that lease, so a claim it finds was left by a process that died (kill -9) mid-push. Pushing a change twice is harmless
(each change states a target state, not a toggle). On PostgreSQL claims use ``FOR UPDATE SKIP LOCKED``
so replicas never claim the same item.

Echo detection: a ``done`` item keeps the value the vendor should show (``pushed_value``) until a pull
reads that slot again and marks it ``verified`` (echo) or ``differs``.

Gone: a vendor that answers that it no longer holds the person (deleted there by the shop's staff or by a
privacy deletion of its own) settles the item ``done`` with ``verified`` "gone": no echo will come, an
opt-out is satisfied (nobody there to mail) and nothing is created there again. In the same transaction that
system's snapshot row of the person goes, so planning no longer aligns them there (sync_worker.plan only
aligns people a system holds) until a pull finds them there again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Index,
    Text,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlmodel import Field, SQLModel

from connectors.base import Action, Basis, Change, Connector, Outcome, PushResult, Status
from sync_worker import due, snapshot
from sync_worker.ledger.bulk import insert_rows
from sync_worker.plan import PlannedChange

MAX_ATTEMPTS = 5
LEASE = timedelta(minutes=5)
DEFAULT_BATCH = 100
OPEN = ("pending", "in_flight", "failed")
SUBSCRIBE = Action.SUBSCRIBE.value
STATUS_VALUES = frozenset(s.value for s in Status)
GONE = Outcome.GONE.value  # the ``verified`` mark of an item settled because its person is gone there


class OutboxItem(SQLModel, table=True):
    __tablename__ = "outbox_item"
    # Planning asks per batch of people for their open or unconfirmed items (email IN ... AND state IN
    # ...). With only single-column indexes SQLite takes the state index, which during a first run holds
    # every pending item: each batch then reads the whole outbox. The pair serves both constraints.
    # A push claims a system's open items (system = ? AND state IN ...): (system, state) reads those alone,
    # where the system index read every item the system ever had (migration 0008). A pull's echo checks
    # ask for one person's items in one system: (email, state, system) serves all three constraints, so
    # SQLite does not take (system, state) and read the system's whole history per record (migration 0009).
    __table_args__ = (
        Index("ix_outbox_item_email_state_system", "email", "state", "system"),
        Index("ix_outbox_item_system_state", "system", "state"),
    )

    key: str = Field(primary_key=True)
    run_id: str = Field(index=True)
    system: str  # indexed first in (system, state) above, which serves reads by system alone too
    email: str  # indexed first in (email, state, system) above, which serves reads by email alone too
    slot: str
    action: str
    change: str = Field(sa_column=Column(Text, nullable=False))  # the Change as JSON
    state: str = Field(default="pending", index=True)
    attempts: int = 0
    last_error: str | None = None
    pushed_value: str | None = None  # what the vendor should show after the push: the echo to expect
    # None: awaiting the echo; "echo" or "differs" once read back; GONE: the vendor no longer holds the person
    verified: str | None = None
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    claimed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


ITEMS: Any = OutboxItem.__table__  # type: ignore[attr-defined]
# Opt-outs (anything but a subscribe) their system has not applied: still open, or refused by the vendor
# and not read back since. What R25's alert ages; the stored state ``parked`` alone would hide refusals.
UNPROPAGATED_OPTOUT = and_(
    ITEMS.c.action != SUBSCRIBE,
    or_(ITEMS.c.state.in_(OPEN), and_(ITEMS.c.state == "parked", ITEMS.c.verified.is_(None))),
)


# The change's fields in key order: its JSON is read back by ``change_from_json`` and must not differ from
# one run to the next. Read field by field, without copying: every field here is a plain value, and a deep
# copy of each change (``dataclasses.asdict``) cost a fifth of a first run's planning pass (docs/benchmarks.md).
_CHANGE_FIELDS = tuple(sorted(Change._fields))


def change_to_json(change: Change) -> str:
    data = {name: getattr(change, name) for name in _CHANGE_FIELDS}
    data["consent_at"] = change.consent_at.isoformat() if change.consent_at else None
    return json.dumps(data)


def change_from_json(text: str) -> Change:
    data = json.loads(text)
    data["action"] = Action(data["action"])
    data["basis"] = Basis(data["basis"])
    data["consent_at"] = datetime.fromisoformat(data["consent_at"]) if data["consent_at"] else None
    return Change(**data)


def enqueue(
    conn: Connection,
    run_id: str,
    planned: Sequence[PlannedChange],
    now: datetime,
    spent: Mapping[str, int] | None = None,
) -> None:
    """Commit planned changes; ``spent``: attempts earlier items for the same change already used."""
    spent = spent or {}
    rows = [
        {
            "key": item.change.key,
            "run_id": run_id,
            "system": item.change.system,
            "email": item.change.email,
            "slot": item.slot,
            "action": item.change.action.value,
            "change": change_to_json(item.change),
            "state": "pending",
            "attempts": spent.get(item.change.key, 0),
            "pushed_value": item.after,
            "created_at": now,
            "updated_at": now,
        }
        for item in planned
    ]
    insert_rows(conn, ITEMS, rows)  # DB-API speed: a first run writes some 3 changes per person


def supersede_subscribes(conn: Connection, run_id: str, now: datetime) -> int:
    """Subscribes left by an earlier run wait for a fresh decision: a leftover never re-subscribes (R27).

    Their people are due at once, so this run decides them again rather than leaving them until they change.
    """
    leftover = and_(ITEMS.c.action == SUBSCRIBE, ITEMS.c.state.in_(OPEN), ITEMS.c.run_id != run_id)
    return superseded(conn, leftover, now)


def superseded(conn: Connection, which: ColumnElement[bool], now: datetime, **values: Any) -> int:
    """Close the items ``which`` selects as ``superseded`` (with ``values``), their people due at once;
    returns how many. Every superseding write goes through here: due times first, then the items, so two
    runs (or a run and the operator) never take the two in opposite orders and deadlock on PostgreSQL."""
    due.decide_again(conn, select(ITEMS.c.email).where(which), now)
    result = conn.execute(update(ITEMS).where(which).values(state="superseded", updated_at=now, **values))
    return int(result.rowcount or 0)


def in_flight(conn: Connection, emails: Sequence[str]) -> dict[str, set[tuple[str, str]]]:
    """(system, slot) per person that a push is still working on (pending, claimed or to be retried).

    Pushes done and not yet read back do not hold their slot: planning sees them as applied
    (sync_worker.awaited), so a later decision for that slot is pushed at once.
    """
    query = select(ITEMS.c.email, ITEMS.c.system, ITEMS.c.slot).where(
        ITEMS.c.email.in_(list(emails)), ITEMS.c.state.in_(OPEN)
    )
    out: dict[str, set[tuple[str, str]]] = {}
    for email, system, slot in conn.execute(query):
        out.setdefault(email, set()).add((system, slot))
    return out


def slots_of(conn: Connection, keys: Sequence[str]) -> dict[str, tuple[str, str]]:
    """key -> (slot, action) of outbox items: pushes are counted by purpose and logged by action."""
    out: dict[str, tuple[str, str]] = {}
    for start in range(0, len(keys), 1000):  # bounded parameter lists (SQLite caps them)
        chunk = list(keys[start : start + 1000])
        rows = conn.execute(select(ITEMS.c.key, ITEMS.c.slot, ITEMS.c.action).where(ITEMS.c.key.in_(chunk)))
        out.update((str(key), (str(slot), str(action))) for key, slot, action in rows)
    return out


def awaiting_echo(conn: Connection, system: str, emails: Sequence[str]) -> dict[str, dict[str, str]]:
    """email -> slot -> value we pushed to ``system`` and have not read back yet (also parked ones)."""
    query = (
        select(ITEMS.c.email, ITEMS.c.slot, ITEMS.c.pushed_value, ITEMS.c.state)
        .where(
            ITEMS.c.system == system,
            ITEMS.c.email.in_(list(emails)),
            ITEMS.c.state.in_(("done", "parked")),
            ITEMS.c.verified.is_(None),
        )
        .order_by(ITEMS.c.updated_at)
    )
    out: dict[str, dict[str, str]] = {}
    for email, slot, value, state in conn.execute(query):
        # A parked item was never applied: whatever is read back settles it, never as an echo.
        out.setdefault(email, {})[slot] = value if state == "done" else "\x00parked"
    return out


def verify(
    conn: Connection, system: str, email: str, slots: Sequence[str], *, outcome: str, now: datetime
) -> None:
    if slots:
        conn.execute(
            update(ITEMS)
            .where(
                ITEMS.c.system == system,
                ITEMS.c.email == email,
                ITEMS.c.slot.in_(list(slots)),
                ITEMS.c.state.in_(("done", "parked")),
                ITEMS.c.verified.is_(None),
            )
            .values(verified=outcome, updated_at=now)
        )


@dataclass(frozen=True, slots=True)
class Claimed:
    key: str
    change: Change


def claim(
    conn: Connection,
    system: str,
    now: datetime,
    limit: int,
    actions: Sequence[Action] | None = None,
    *,
    leased: bool = False,
) -> list[Claimed]:
    """Take up to ``limit`` pushable items of ``system``; the caller commits before pushing.

    ``leased``: the caller holds ``system``'s connector lease, so no live pusher owns an ``in_flight``
    item of it (claims made earlier by this same run are settled before it claims again).
    """
    stale = now - LEASE
    orphaned = ITEMS.c.state == "in_flight"
    if not leased:
        orphaned = and_(orphaned, ITEMS.c.claimed_at < stale)
    query = (
        select(ITEMS.c.key, ITEMS.c.change)
        .where(
            ITEMS.c.system == system,
            # Implied by the states below; stated so that the (system, state) index reads the open items alone.
            ITEMS.c.state.in_(OPEN),
            # A change that takes consent away keeps trying (R25); only subscribes are given up.
            or_(ITEMS.c.attempts < MAX_ATTEMPTS, ITEMS.c.action != SUBSCRIBE),
            or_(
                ITEMS.c.state == "pending",
                # Failed items are retried by later runs, not again by the run that saw them fail.
                and_(ITEMS.c.state == "failed", ITEMS.c.updated_at < now),
                orphaned,
            ),
        )
        .order_by(ITEMS.c.created_at, ITEMS.c.key)
        .limit(limit)
    )
    if actions is not None:
        query = query.where(ITEMS.c.action.in_([a.value for a in actions]))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(conn.execute(query))
    if rows:
        conn.execute(
            update(ITEMS)
            .where(ITEMS.c.key.in_([key for key, _ in rows]))
            .values(state="in_flight", claimed_at=now, updated_at=now)
        )
    return [Claimed(key, change_from_json(text)) for key, text in rows]


# What a push vet may stop: a subscribe (it gives consent-based mail); never what takes consent away (R25).
VETTED = frozenset({Action.SUBSCRIBE})


def supersede(conn: Connection, why: Mapping[str, str], now: datetime) -> None:
    """Claimed items that are not to be pushed after all (key -> why): never pushed, and not retried;
    their people are decided again by the next run."""
    keys_by_reason: dict[str, list[str]] = {}
    for key, reason in why.items():
        keys_by_reason.setdefault(reason, []).append(key)
    for reason, keys in keys_by_reason.items():
        superseded(conn, ITEMS.c.key.in_(keys), now, last_error=reason)


def settle(conn: Connection, results: Sequence[PushResult], now: datetime) -> None:
    """Record each vendor answer: accepted -> done, gone -> done and settled (no echo awaited), rejected ->
    parked with the vendor's reason, retry later -> failed (retried by later runs; a subscribe is parked
    after MAX_ATTEMPTS)."""
    for result in results:
        values: dict[str, Any] = {"updated_at": now, "last_error": result.reason}
        if result.outcome == Outcome.GONE:
            values["state"] = "done"
            values["verified"] = GONE
        elif result.outcome == Outcome.ACCEPTED:
            values["state"] = "done"
            # The vendor holds another state than asked (Mailchimp keeps a former unsubscriber `pending`):
            # that is the echo to expect. Vendors' own words for the asked state change nothing.
            held = (result.vendor_state or "").lower()
            if held in STATUS_VALUES:
                values["pushed_value"] = held
        elif result.outcome == Outcome.REJECTED:
            values["state"] = "parked"
        else:
            values["attempts"] = ITEMS.c.attempts + 1
            values["state"] = "failed"
        conn.execute(update(ITEMS).where(ITEMS.c.key == result.key).values(**values))
    conn.execute(
        update(ITEMS)
        .where(ITEMS.c.state == "failed", ITEMS.c.attempts >= MAX_ATTEMPTS, ITEMS.c.action == SUBSCRIBE)
        .values(state="parked", updated_at=now)
    )


def all_done(conn: Connection, email: str) -> bool:
    """Every change for this person was accepted (and there was at least one)."""
    states = set(conn.execute(select(ITEMS.c.state).where(ITEMS.c.email == email).distinct()).scalars())
    return bool(states) and states <= {"done", "superseded"}


def forget(conn: Connection, email: str) -> None:
    """Erasure (R21): the outbox keeps no address once every system has been told."""
    conn.execute(delete(ITEMS).where(ITEMS.c.email == email))


def items(conn: Connection, keys: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    rows = conn.execute(select(ITEMS).where(ITEMS.c.key.in_(list(keys)))).mappings()
    return {row["key"]: dict(row) for row in rows}


def counts(conn: Connection) -> dict[str, int]:
    query = select(ITEMS.c.state, func.count()).group_by(ITEMS.c.state)
    return {state: int(n) for state, n in conn.execute(query)}


async def push_system(
    engine: Engine,
    connector: Connector,
    now: datetime,
    *,
    actions: Sequence[Action] | None = None,
    claim_size: int = 2000,
    on_batch: Callable[[int], None] | None = None,
    leased: bool = False,
    vet: Callable[[Connection, Sequence[Change]], Mapping[str, str]] | None = None,
) -> list[PushResult]:
    """Drain ``connector``'s outbox: claim, push in vendor-sized batches (bounded concurrency), settle.

    ``on_batch`` hears the size of each batch once the vendor has answered it (progress bars). ``vet``
    names, among the claimed subscribes, those that must not go after all (key -> why): they are superseded
    instead (``sync_worker.push_vet``). An opt-out is never stopped (R25).
    """
    caps = connector.capabilities()
    gate = asyncio.Semaphore(max(1, caps.max_concurrency))
    settled: list[PushResult] = []

    async def send(batch: list[Change]) -> list[PushResult]:
        async with gate:
            try:
                answered = await connector.push(batch)
            except Exception as error:  # any failure of a batch: each item is retried later
                reason = f"{type(error).__name__}: {error}"
                return [PushResult(c.key, Outcome.RETRY_LATER, reason) for c in batch]
            finally:
                if on_batch is not None:
                    on_batch(len(batch))
        by_key = {r.key: r for r in answered}
        # A change the connector did not answer for is not done: retry it later.
        return [by_key.get(c.key) or PushResult(c.key, Outcome.RETRY_LATER, "no answer") for c in batch]

    while True:
        with engine.begin() as conn:
            claimed = claim(conn, connector.name, now, claim_size, actions, leased=leased)
        if not claimed:
            return settled
        stopped: Mapping[str, str] = {}
        subscribes = [item.change for item in claimed if item.change.action in VETTED]
        if vet is not None and subscribes:
            # After the claim's commit, in a transaction of its own: the claimed items are this pusher's
            # (in_flight), and no row lock of the claim is held while ``superseded`` takes the due times.
            with engine.begin() as conn:
                asked = {change.key for change in subscribes}
                stopped = {key: why for key, why in vet(conn, subscribes).items() if key in asked}
                supersede(conn, stopped, now)
        batches: list[list[Change]] = []
        # Actions with the same batch limit share batches: a vendor call that takes any mix of them (e.g.
        # HubSpot's status batch, Shopify's aliased mutations) is then never sent half full per action.
        by_size: dict[int, list[Change]] = {}
        for item in (item for item in claimed if item.key not in stopped):
            size = max(1, caps.batch_max.get(item.change.action, DEFAULT_BATCH))
            by_size.setdefault(size, []).append(item.change)
        for size, changes in by_size.items():
            batches.extend(changes[i : i + size] for i in range(0, len(changes), size))
        answers = await asyncio.gather(*(send(batch) for batch in batches))
        results = [result for answer in answers for result in answer]
        email_of = {item.key: item.change.email for item in claimed}
        gone = sorted({email_of[r.key] for r in results if r.outcome == Outcome.GONE and r.key in email_of})
        with engine.begin() as conn:
            settle(conn, results, now)
            snapshot.drop(conn, connector.name, gone)
        settled.extend(results)
        if len(claimed) < claim_size:
            return settled
