"""Outbox items an operator has to look at, and the two things an operator may do with them.

Needing attention: subscribes given up (``parked``), changes still ``failed`` (retried by every run), and
opt-outs the vendor refused that no pull has read back since (``parked``, R25 reports them every run).

``retry`` puts items back with a renewed attempt budget. A change that takes consent away is pushed again
as it is: a withdrawal never expires. A subscribe is never pushed on its old decision (R27): its person is
decided again by the next run, which plans a fresh subscribe only if consent still allows it.

``dismiss`` closes an item as ``dismissed``: it no longer makes runs partial, ages the R25 alert or waits
for an echo, and a dismissed subscribe stays given up. The row is kept. Neither action touches the consent
ledger: a withdrawal still governs every later plan, so a vendor that still shows the person subscribed
gets the opt-out planned again. Every action is written to the reconciliation log as a run with trigger
``operator``: one row per item with who, why and when, the person masked as in every run log.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, update

from sync_worker import runlog
from sync_worker.identity import mask_email
from sync_worker.logs import mask_emails_in
from sync_worker.outbox import ITEMS, MAX_ATTEMPTS, SUBSCRIBE, superseded
from sync_worker.snapshot import aware

OPERATOR = "operator"  # the trigger of the log entries these actions write
REFUSED_OPTOUT = and_(ITEMS.c.action != SUBSCRIBE, ITEMS.c.state == "parked", ITEMS.c.verified.is_(None))
GIVEN_UP_SUBSCRIBE = and_(ITEMS.c.action == SUBSCRIBE, ITEMS.c.state == "parked")
NEEDS_ATTENTION = or_(ITEMS.c.state == "failed", REFUSED_OPTOUT, GIVEN_UP_SUBSCRIBE)
RETRYABLE = ("parked", "failed", "dismissed")
DISMISSABLE = ("parked", "failed")


class OutboxKeyError(LookupError):
    """Keys that name no outbox item, or an item the action does not apply to; nothing was changed."""


@dataclass(frozen=True, slots=True)
class Attention:
    key: str
    system: str
    person: str  # masked address
    slot: str
    action: str
    state: str
    attempts: int
    reason: str | None  # the vendor's last answer
    age_seconds: float
    makes_runs_partial: bool  # R25: an opt-out failing past the bound, or refused

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "system": self.system,
            "person": self.person,
            "slot": self.slot,
            "action": self.action,
            "state": self.state,
            "attempts": self.attempts,
            "vendor_reason": self.reason,
            "age_seconds": round(self.age_seconds),
            "makes_runs_partial": self.makes_runs_partial,
        }


def needing_attention(conn: Connection, now: datetime) -> list[Attention]:
    query = select(ITEMS).where(NEEDS_ATTENTION).order_by(ITEMS.c.created_at, ITEMS.c.key)
    out = []
    for row in conn.execute(query).mappings():
        optout = row["action"] != SUBSCRIBE
        stuck = optout and (row["state"] == "parked" or row["attempts"] >= MAX_ATTEMPTS)
        out.append(
            Attention(
                key=row["key"],
                system=row["system"],
                person=mask_email(row["email"]),
                slot=row["slot"],
                action=row["action"],
                state=row["state"],
                attempts=int(row["attempts"]),
                # The vendor's words may quote the address (Mailchimp, HubSpot): shown masked like person.
                reason=mask_emails_in(row["last_error"]) if row["last_error"] else row["last_error"],
                age_seconds=max(0.0, (now - aware(row["created_at"])).total_seconds()),
                makes_runs_partial=stuck,
            )
        )
    return out


def parked_keys(conn: Connection) -> list[str]:
    """Every parked item that needs attention: given-up subscribes and refused opt-outs."""
    query = select(ITEMS.c.key).where(or_(REFUSED_OPTOUT, GIVEN_UP_SUBSCRIBE)).order_by(ITEMS.c.created_at)
    return [str(key) for key in conn.execute(query).scalars()]


def retry(
    conn: Connection, keys: Sequence[str], *, actor: str, secret: bytes, now: datetime
) -> list[Mapping[str, Any]]:
    """Put parked, failed or dismissed items back for the next run, with a renewed attempt budget."""
    found = _checked(conn, keys, RETRYABLE, "retry")
    optouts = [k for k, row in found.items() if row["action"] != SUBSCRIBE]
    subscribes = [k for k, row in found.items() if row["action"] == SUBSCRIBE]
    if optouts:
        conn.execute(
            update(ITEMS)
            .where(ITEMS.c.key.in_(optouts))
            .values(state="pending", attempts=0, claimed_at=None, verified=None, updated_at=now)
        )
    if subscribes:
        # R27: the old decision is not pushed; a superseded subscribe with no attempts spent lets the next
        # run plan a fresh one with a whole budget (sync_worker.retry_budget), if consent still allows it.
        superseded(conn, ITEMS.c.key.in_(subscribes), now, attempts=0, claimed_at=None)
    after = {k: "pending" if k in optouts else "decided again" for k in found}
    _log(conn, found, after, f"retried by {actor}", actor=actor, secret=secret, now=now)
    return list(found.values())


def dismiss(
    conn: Connection, keys: Sequence[str], *, reason: str, actor: str, secret: bytes, now: datetime
) -> list[Mapping[str, Any]]:
    """Close parked or failed items as dismissed by ``actor`` for ``reason``; the rows stay."""
    if not reason.strip():
        raise ValueError("a dismissal needs a reason")
    found = _checked(conn, keys, DISMISSABLE, "dismiss")
    conn.execute(update(ITEMS).where(ITEMS.c.key.in_(list(found))).values(state="dismissed", updated_at=now))
    after = dict.fromkeys(found, "dismissed")
    _log(conn, found, after, f"dismissed by {actor}: {reason}", actor=actor, secret=secret, now=now)
    return list(found.values())


def _checked(
    conn: Connection, keys: Sequence[str], states: Sequence[str], verb: str
) -> dict[str, Mapping[str, Any]]:
    """The items of ``keys``; every key unknown or in another state is named, and nothing is changed."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    rows = conn.execute(select(ITEMS).where(ITEMS.c.key.in_(wanted))).mappings()
    found: dict[str, Mapping[str, Any]] = {str(row["key"]): dict(row) for row in rows}
    problems = [f"{key}: no such outbox item" for key in wanted if key not in found]
    problems += [
        f"{key}: is {found[key]['state']}, only {' or '.join(states)} items can be {verb}ed"
        for key in wanted
        if key in found and found[key]["state"] not in states
    ]
    if problems:
        raise OutboxKeyError("; ".join(problems))
    return found


def _log(
    conn: Connection,
    items: Mapping[str, Mapping[str, Any]],
    after: Mapping[str, str],
    why: str,
    *,
    actor: str,
    secret: bytes,
    now: datetime,
) -> None:
    """One operator run in the reconciliation log; its rows name the outbox key, never the address."""
    if not items:
        return
    run_id = f"{OPERATOR}-{uuid.uuid4().hex[:12]}"
    runlog.start_run(conn, run_id, OPERATOR, False, now)
    rows = [
        {
            "run_id": run_id,
            "person": mask_email(row["email"]),
            "person_key": runlog.person_key(secret, row["email"]),
            "system": row["system"],
            "slot": row["slot"],
            "action": row["action"],
            "before": row["state"],
            "after": after[key],
            "rule": "R25" if row["action"] != SUBSCRIBE else "R27",
            "reason": f"{why} (outbox item {key})",
            "event_ids": [],
            # No outbox key: push results of a retried item belong to the run that pushes it.
            "outbox_key": None,
            "push_result": f"{OPERATOR}: {actor}",
        }
        for key, row in items.items()
    ]
    conn.execute(insert(runlog.CHANGES), rows)
    runlog.finish_run(conn, run_id, status="success", counts={}, now=now, error=None)
