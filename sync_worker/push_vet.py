"""A subscribe goes out only while the person's decision still allows it: withdrawal always wins (R16-R21).

A planning pass decides a batch and commits its changes; their push comes later. Meanwhile another run may
record that person's withdrawal: a webhook's facts are recorded, planned and pushed at once, without waiting
for the scheduled run's leases (``sync_worker.service``). A subscribe planned before that withdrawal would
then undo it in the vendor. So each claimed subscribe is decided again, at the moment of its push and in the
transaction that claims it: one no longer allowed is superseded instead of pushed, and its line in the
reconciliation log names the rule that stopped it.

Left: a withdrawal recorded while the subscribe is already with the vendor (the time of one request). The
subscribe's echo marks the person for planning and the next run pushes the opt-out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection

from connectors.base import Action, Change
from sync_worker.ledger_port import LedgerPort


class Stale(NamedTuple):
    """Why a claimed subscribe must not go: the rule of the decision that no longer allows it."""

    rule: str
    text: str  # for the reconciliation log's push result


def stale_subscribes(
    conn: Connection,
    ledger: LedgerPort,
    changes: Sequence[Change],
    *,
    purposes: Sequence[str],
    requires: Mapping[str, str],
    now: datetime,
) -> dict[str, Stale]:
    """Key -> why, for each subscribe among ``changes`` that the person's decision at ``now`` no longer
    allows (for a purpose the system mails only through another one's flag, that one's too: R27)."""
    subscribes = [c for c in changes if c.action == Action.SUBSCRIBE and c.purpose is not None]
    if not subscribes:
        return {}
    decisions = ledger.decide(conn, sorted({c.email for c in subscribes}), purposes, now)
    stale: dict[str, Stale] = {}
    for change in subscribes:
        assert change.purpose is not None  # filtered above
        theirs = decisions.get(change.email, {})
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
