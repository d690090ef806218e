"""A subscribe goes out only while the person's decision still allows it: withdrawal always wins.

A planning pass decides a batch and commits its changes; their push comes later. Meanwhile another run may
record that person's withdrawal, objection or erasure (R16-R22): a webhook's facts are recorded, planned and
pushed at once, without waiting for the scheduled run's leases (``sync_worker.service``). A subscribe planned
before it would then undo it in the vendor. So each claimed subscribe is decided again at the moment of its
push: one no longer allowed is superseded instead of pushed, and its line in the reconciliation log names
the rule that stopped it. Opt-outs (unsubscribes, erasures, re-permission tags) are never stopped (R25).

Left: a withdrawal recorded while the subscribe is already with the vendor (the time of its batch's requests),
or dated by the vendor ahead of this worker's clock. The subscribe's echo marks the person for planning, and a
run after the withdrawal's time pushes the opt-out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection

from connectors.base import Change
from sync_worker.ledger_port import LedgerPort


class Stopped(NamedTuple):
    """Why a claimed subscribe must not go: the rule of the decision that no longer allows it."""

    rule: str
    text: str  # for the reconciliation log's push result


def no_longer_allowed(
    conn: Connection,
    ledger: LedgerPort,
    subscribes: Sequence[Change],
    *,
    purposes: Sequence[str],
    requires: Mapping[str, str],
    now: datetime,
) -> dict[str, Stopped]:
    """Key -> why, for each subscribe whose purpose the person's decision at ``now`` no longer allows (for a
    purpose the system mails only through another one's flag, that one's too: R27)."""
    if not subscribes:
        return {}
    decisions = ledger.decide(conn, sorted({c.email for c in subscribes}), purposes, now)
    stopped: dict[str, Stopped] = {}
    for change in subscribes:
        decided = decisions.get(change.email, {})
        for purpose in (change.purpose, requires.get(change.purpose or "")):
            if purpose is None:
                continue
            decision = decided.get(purpose)
            if decision is None or not decision.allowed:
                rule, reason = (decision.rule, decision.reason) if decision else ("R1", "no decision")
                text = f"not pushed: {purpose} was no longer allowed when its push came ({rule}: {reason})"
                stopped[change.key] = Stopped(rule, text)
                break
    return stopped
