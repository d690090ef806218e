"""What a push gives goes out only while the person's decision still allows it: withdrawal always wins.

A planning pass decides a batch and commits its changes; their push comes later. Meanwhile another run may
record that person's withdrawal or objection (R16-R21): a webhook's facts are recorded, planned and pushed
at once, without waiting for the scheduled run's leases (``sync_worker.service``). A subscribe planned
before it would then undo it in the vendor, and a re-permission tag would list for a consent request someone
who has just said no. So each claimed subscribe and re-permission tag is decided again at the moment of
its push: one no longer allowed is superseded instead of pushed, and its line in the reconciliation log
names the rule that stopped it. Opt-outs are never stopped (R25).

Left: a withdrawal recorded while the change is already with the vendor (the time of its batch's requests),
or dated by the vendor ahead of this worker's clock. The change's echo marks the person for planning, and a
run after the withdrawal's time pushes the opt-out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection

from connectors.base import Action, Change
from sync_worker.ledger_port import LedgerPort
from sync_worker.plan import REPERMISSION_TAG


class Stale(NamedTuple):
    """Why a claimed change must not go: the rule of the decision that no longer allows it."""

    rule: str
    text: str  # for the reconciliation log's push result


def no_longer_allowed(
    conn: Connection,
    ledger: LedgerPort,
    changes: Sequence[Change],
    *,
    purposes: Sequence[str],
    requires: Mapping[str, str],
    now: datetime,
) -> dict[str, Stale]:
    """Key -> why, for each change among ``changes`` that gives what the person's decision at ``now`` no
    longer allows: a subscribe of a purpose not allowed (for a purpose the system mails only through another
    one's flag, that one's too: R27), or a re-permission tag for a person no longer quarantined (R8)."""
    givers = [c for c in changes if _gives(c)]
    if not givers:
        return {}
    decisions = ledger.decide(conn, sorted({c.email for c in givers}), purposes, now)
    stale: dict[str, Stale] = {}
    for change in givers:
        theirs = decisions.get(change.email, {})
        if change.purpose is None:  # the re-permission tag
            if not any(d.quarantined for d in theirs.values()):
                text = "not pushed: its person is no longer quarantined when its push came (R8)"
                stale[change.key] = Stale("R8", text)
            continue
        for purpose in (change.purpose, requires.get(change.purpose)):
            if purpose is None:
                continue
            decision = theirs.get(purpose)
            if decision is None or not decision.allowed:
                rule, reason = (decision.rule, decision.reason) if decision else ("R1", "no decision")
                text = f"not pushed: {purpose} is no longer allowed when its push came ({rule}: {reason})"
                stale[change.key] = Stale(rule, text)
                break
    return stale


def _gives(change: Change) -> bool:
    if change.action == Action.SUBSCRIBE:
        return change.purpose is not None
    return change.action == Action.TAG and change.tag == REPERMISSION_TAG
