"""What each system accepted from us and no pull has read back yet: planning counts it as shown there.

A pushed change awaits its echo until a pull reads that slot again. Planning against the last snapshot
alone would see the old state; holding the slot back until the echo comes would hold back every later
change of it too, and an echo can fail to come (a vendor that keeps the record's stamp at or before the
pull's watermark): a withdrawal must still reach that system (R25). So planning sees the snapshot with
the accepted changes applied: nothing is pushed twice, and a new decision is pushed at once. A change the
vendor refused (``parked``) is not planned again until a pull has read that slot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from sync_worker.observe import Seen
from sync_worker.outbox import ITEMS, change_from_json
from sync_worker.plan import PlannedChange, apply

Refused = tuple[str, str, str]  # system, slot, action


@dataclass
class Unconfirmed:
    """Per person: the accepted pushes not yet read back (in push order), and the refused changes."""

    accepted: dict[str, dict[str, list[PlannedChange]]] = field(default_factory=dict)  # email -> system
    refused: dict[str, set[Refused]] = field(default_factory=dict)


def unconfirmed(conn: Connection, emails: Sequence[str]) -> Unconfirmed:
    query = (
        select(
            ITEMS.c.email, ITEMS.c.system, ITEMS.c.slot, ITEMS.c.state, ITEMS.c.change, ITEMS.c.pushed_value
        )
        .where(
            ITEMS.c.email.in_(list(emails)),
            ITEMS.c.state.in_(("done", "parked")),
            ITEMS.c.verified.is_(None),
        )
        .order_by(ITEMS.c.updated_at, ITEMS.c.key)
    )
    out = Unconfirmed()
    for email, system, slot, state, text, value in conn.execute(query):
        change = change_from_json(text)
        if state == "parked":
            out.refused.setdefault(email, set()).add((system, slot, change.action.value))
        elif value is not None:
            pushed = PlannedChange(change, slot, before="", after=value, rule="", reason="")
            out.accepted.setdefault(email, {}).setdefault(system, []).append(pushed)
    return out


def as_shown(seen: Mapping[str, Seen], accepted: Mapping[str, Sequence[PlannedChange]]) -> dict[str, Seen]:
    """The snapshot of one person with what each system accepted since applied."""
    return {system: apply(shown, accepted.get(system, ())) for system, shown in seen.items()}


def not_refused(planned: Sequence[PlannedChange], refused: Mapping[str, set[Refused]]) -> list[PlannedChange]:
    """Drop the changes a vendor refused and no pull has read that slot since."""
    return [
        item
        for item in planned
        if (item.change.system, item.slot, item.change.action.value)
        not in refused.get(item.change.email, set())
    ]
