"""Observe: what changed in one system since we last looked, and what that means for consent.

Pure: previous snapshot + the new record + what we pushed there -> ledger events, echo confirmations and
the new snapshot. An echo (a state we pushed, read back) confirms delivery and is never the person's act.
A subscribed flag without evidence never becomes a grant (R8); an unsubscribed flag is always honoured
as a withdrawal (R20), whatever its evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import NamedTuple

from connectors.base import ContactRecord, GlobalState, Status
from sync_worker.ledger_port import EventKind, ObservedEvent

ACCOUNT = "*"  # the slot of account-wide state (GlobalState) in snapshots and the outbox
TAG_PREFIX = "tag:"
RESTRICTIVE_VALUES = frozenset(
    {Status.UNSUBSCRIBED.value, Status.NOT_SUBSCRIBED.value, GlobalState.ERASED.value}
)


def tag_slot(tag: str) -> str:
    return TAG_PREFIX + tag


class Seen(NamedTuple):
    """What one system showed of one person the last time we looked.

    An immutable named tuple rather than a frozen dataclass: planning reads one per system and person (4
    million at 1M people), and a frozen dataclass sets each field through ``object.__setattr__``."""

    external_id: str | None
    statuses: Mapping[str, Status] = MappingProxyType({})
    global_state: GlobalState = GlobalState.ACTIVE
    tags: frozenset[str] = frozenset()

    def slot_value(self, slot: str) -> str:
        """The value of a slot as the outbox records pushed values: a status, a global state or a tag flag."""
        if slot == ACCOUNT:
            return self.global_state.value
        if slot.startswith(TAG_PREFIX):
            return "tagged" if slot[len(TAG_PREFIX) :] in self.tags else "untagged"
        return self.statuses.get(slot, Status.NOT_SUBSCRIBED).value


@dataclass(frozen=True, slots=True)
class Observation:
    events: tuple[ObservedEvent, ...]
    echoes: frozenset[str]  # slots whose pushed value was read back: delivery confirmed
    mismatches: frozenset[str]  # slots we pushed that now show something else: the push is not confirmed
    seen: Seen


# Account-wide states that are consent facts, and the rule that makes them so.
GLOBAL_EVENTS: dict[GlobalState, tuple[EventKind, str]] = {
    GlobalState.UNSUBSCRIBED_ALL: (EventKind.OBJECT, "R17"),
    GlobalState.COMPLAINED: (EventKind.COMPLAINT, "R18"),
    # A deletion in the vendor (Shopify REDACTED, HubSpot privacy deletion) is an erasure there, and
    # an erasure request counts as an objection (R21 -> R17). Bounces and other suppressions are not
    # consent facts either way.
    GlobalState.ERASED: (EventKind.OBJECT, "R21"),
}


def seen_of(record: ContactRecord) -> Seen:
    return Seen(
        external_id=record.external_id,
        statuses={state.purpose: state.status for state in record.purposes},
        global_state=record.global_state,
        tags=record.tags,
    )


def carried_over(previous: Seen | None, record: ContactRecord) -> Seen | None:
    """What a snapshot read with another purpose mapping still says about ``record``'s earlier state.

    The account-wide state and the tags belong to no purpose mapping: they stay the earlier state. A
    purpose's status there may be another list's or interest's, so it counts only where the record shows
    the same status: that status is on record already (observed then, or our own push read back). Read
    as new, it would be recorded again at the record's newer time (or when read): an objection or a
    withdrawal the person never made again, later than what they did since. Any other status is a first
    look: the missing purpose reads as never joined. A snapshot of another record (another shop or
    account now read under the same system name) tells nothing of this one.
    """
    if previous is None or previous.external_id != record.external_id:
        return None
    shown = {state.purpose: state.status for state in record.purposes}
    same = {purpose: status for purpose, status in previous.statuses.items() if shown.get(purpose) == status}
    return previous._replace(statuses=same)


def observe(
    previous: Seen | None, record: ContactRecord, pushed: Mapping[str, str], now: datetime
) -> Observation:
    """Diff ``record`` against ``previous``; ``pushed`` maps slots to values we pushed and await."""
    seen = seen_of(record)
    events: list[ObservedEvent] = []
    echoes: set[str] = set()
    mismatches: set[str] = set()
    for slot, value in pushed.items():
        (echoes if seen.slot_value(slot) == value else mismatches).add(slot)
    # Vendors couple flags: unsubscribing the one purpose mapped to a member's status also shows as
    # "unsubscribed from all" and unsubscribes every purpose on that status; subscribing one does the
    # reverse. A change stamped with the same vendor time as a push we see confirmed is a side effect of
    # that push: part of its echo, never the person's act. A change at another time is the person's.
    ours = _echo_times(record, pushed, echoes)

    before_global = previous.global_state if previous else GlobalState.ACTIVE
    global_when = record.global_changed_at or record.updated_at
    if (
        ACCOUNT not in echoes
        and seen.global_state != before_global
        and seen.global_state in GLOBAL_EVENTS
        and not (seen.global_state != GlobalState.COMPLAINED and global_when in ours[RESTRICT])
    ):
        kind, rule = GLOBAL_EVENTS[seen.global_state]
        when = record.global_changed_at or record.updated_at
        events.append(
            _event(record, None, kind=kind, rule=rule, when=when, now=now, value=seen.global_state.value)
        )

    for state in record.purposes:
        if state.purpose in echoes:
            continue
        before = previous.statuses.get(state.purpose, Status.NOT_SUBSCRIBED) if previous else None
        if state.status == before:
            continue
        meaning = _meaning(record, state.status, before)
        if meaning is not None and not _side_effect(meaning[0], state.changed_at, ours):
            kind, rule, when = meaning
            when = when or state.changed_at or record.updated_at
            events.append(
                _event(
                    record, state.purpose, kind=kind, rule=rule, when=when, now=now, value=state.status.value
                )
            )
    return Observation(tuple(events), frozenset(echoes), frozenset(mismatches), seen)


RESTRICT, WIDEN = "restrict", "widen"


def _echo_times(
    record: ContactRecord, pushed: Mapping[str, str], echoes: set[str]
) -> dict[str, set[datetime]]:
    """Vendor times of the echoed purpose changes, by direction of our push."""
    out: dict[str, set[datetime]] = {RESTRICT: set(), WIDEN: set()}
    for state in record.purposes:
        if state.purpose in echoes and state.changed_at is not None:
            direction = RESTRICT if pushed[state.purpose] in RESTRICTIVE_VALUES else WIDEN
            out[direction].add(state.changed_at)
    return out


def _side_effect(kind: EventKind, when: datetime | None, ours: Mapping[str, set[datetime]]) -> bool:
    if when is None:
        return False
    return (kind == EventKind.WITHDRAW and when in ours[RESTRICT]) or (
        kind == EventKind.UNPROVEN and when in ours[WIDEN]
    )


def _meaning(
    record: ContactRecord, status: Status, before: Status | None
) -> tuple[EventKind, str, datetime | None] | None:
    """What a purpose's new status means: (kind, rule, time if the evidence gives one), or no fact."""
    if status == Status.UNSUBSCRIBED or (status == Status.NOT_SUBSCRIBED and before == Status.SUBSCRIBED):
        # Any channel counts and a withdrawal needs no evidence (R20); leaving the purpose's list is
        # read the restrictive way.
        return EventKind.WITHDRAW, "R20", None
    if status == Status.SUBSCRIBED:
        evidence = record.evidence
        if evidence is not None and evidence.consent_at is not None:
            # The ledger grades the evidence (R5, R7); a bare import still ends up unproven there.
            return EventKind.GRANT, "R5", evidence.consent_at
        return EventKind.UNPROVEN, "R8", None
    # PENDING: a double opt-in not yet confirmed is no grant (R6); NOT_SUBSCRIBED first seen: no fact.
    return None


def _event(
    record: ContactRecord,
    purpose: str | None,
    *,
    kind: EventKind,
    rule: str,
    when: datetime | None,
    now: datetime,
    value: str,
) -> ObservedEvent:
    occurred = when or now  # R31: a negative event without a source time takes effect when read
    slot = purpose or ACCOUNT
    # Deterministic id: the same vendor state read twice is one ledger event (R32).
    source_event_id = f"{record.system}:{record.external_id}:{slot}:{value}:{occurred.isoformat()}"
    evidence = record.evidence if kind == EventKind.GRANT else None
    return ObservedEvent(
        email=record.email,
        purpose=purpose,
        kind=kind,
        occurred_at=occurred,
        source=record.system,
        source_event_id=source_event_id,
        rule=rule,
        external_id=record.external_id,
        method=(evidence.method if evidence else None) or f"{record.system}_{value}",
        reason=record.reason if kind != EventKind.GRANT else None,
        evidence=evidence,
        time_from_source=when is not None,
    )
