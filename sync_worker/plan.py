"""Plan: the desired state of each system minus what it shows = the changes to push.

Pure. Desired state comes from the policy core's decisions through each system's purpose mapping
(``Capabilities.purposes``). Fail closed (R27): anything not allowed is pushed as not subscribed.
Convergence: no change where the observed state already is the desired one, and none for a slot whose
earlier push still awaits its echo, so two systems that disagree never ping-pong.

We align people who exist in a system; we never create a person in a system that does not hold them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from connectors.base import Action, Basis, Capabilities, Change, GlobalState, Status
from sync_worker.ledger_port import DecisionLike, Verdict, basis_of
from sync_worker.observe import ACCOUNT, Seen, tag_slot

REPERMISSION_TAG = "sync-worker:re-permission"

# Looked up for every cell planned: the members once, and their values by dictionary (``.value`` is a
# descriptor call on an enum member).
_SUBSCRIBED, _NOT_SUBSCRIBED, _ACTIVE = Status.SUBSCRIBED, Status.NOT_SUBSCRIBED, GlobalState.ACTIVE
_PENDING, _UNSUBSCRIBED = Status.PENDING, Status.UNSUBSCRIBED
_SUBSCRIBE, _UNSUBSCRIBE, _NONE = Action.SUBSCRIBE, Action.UNSUBSCRIBE, Basis.NONE
_SHOWN_SUBSCRIBED = frozenset({Status.SUBSCRIBED, Status.PENDING})
_VALUE: dict[Status, str] = {status: status.value for status in Status}
# An action as ``change_key`` formats it (formatting an enum member costs more than the rest of the text).
_ACTION_TEXT: dict[str, str] = {action: f"{action}" for action in Action}


class PlannedChange(NamedTuple):
    """One change with what the log shows about it: before -> after, the rule and the reason.

    An immutable named tuple rather than a frozen dataclass: some 3 million are built at 1M people, and a
    frozen dataclass sets each field through ``object.__setattr__`` (about three times the cost)."""

    change: Change
    slot: str  # purpose, "*" for the account, "tag:<name>" for a tag
    before: str
    after: str  # the value the system should show once the push is applied (the echo to expect)
    rule: str
    reason: str
    event_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Person:
    """Everything planning needs to know about one person."""

    email: str
    decisions: Mapping[str, DecisionLike]  # purpose -> decision
    seen: Mapping[str, Seen]  # system -> what it shows
    quarantined: bool = False
    erasure: bool = False
    in_flight: Set[tuple[str, str]] = frozenset()  # (system, slot) pushed and not yet confirmed


def change_key(run_id: str, system: str, email: str, slot: str, action: Action) -> str:
    text = _ACTION_TEXT.get(action) or f"{action}"
    digest = hashlib.sha256(f"{system}\x00{email}\x00{slot}\x00{text}".encode()).hexdigest()[:24]
    return f"{run_id}:{digest}"


def plan_person(person: Person, capabilities: Mapping[str, Capabilities], run_id: str) -> list[PlannedChange]:
    changes: list[PlannedChange] = []
    decisions, in_flight = person.decisions, person.in_flight
    for system, seen in sorted(person.seen.items()):
        caps = capabilities.get(system)
        if caps is None:
            continue
        if person.erasure:
            changes.extend(_erase(person, system, seen, caps, run_id))
            continue
        statuses, requires, active = seen.statuses, caps.requires, seen.global_state == _ACTIVE
        for purpose in _ordered(caps.purposes):
            decision = decisions.get(purpose)
            if decision is None:
                continue
            # The settled slots, told inline (16 per person): the system already shows what the decision
            # asks, or shows something we never push over (see ``_align``). A purpose mailed through
            # another purpose's flag (R27) always takes the full path.
            status = statuses.get(purpose, _NOT_SUBSCRIBED)
            if decision.allowed:
                if (status in _SHOWN_SUBSCRIBED or not active) and purpose not in requires:
                    continue
            elif status != _SUBSCRIBED:
                continue
            if in_flight and (system, purpose) in in_flight:
                continue
            if decision.allowed and purpose in requires:
                decision = _representable(purpose, decision, decisions, caps)
            planned = _align(person.email, system, seen, status, purpose, decision, caps, run_id)
            if planned is not None:
                changes.append(planned)
        if person.quarantined or REPERMISSION_TAG in seen.tags:  # else no tag to add or remove
            tag = _repermission(person, system, seen, caps, run_id)
            if tag is not None:
                changes.append(tag)
    return changes


@lru_cache(maxsize=256)
def _ordered(purposes: frozenset[str]) -> list[str]:
    return sorted(purposes)


def _representable(
    purpose: str, decision: DecisionLike, decisions: Mapping[str, DecisionLike], caps: Capabilities
) -> DecisionLike:
    """R27: where the vendor mails a purpose only through another purpose's flag, that purpose is
    allowed there only if the other one is too; otherwise it would mail for a purpose not allowed."""
    if not decision.allowed or purpose not in caps.requires:
        return decision  # no coupling to check
    needed = caps.requires[purpose]
    other = decisions.get(needed)
    if other is not None and other.allowed:
        return decision
    return Verdict(
        allowed=False,
        basis="none",
        rule="R27",
        reason=f"{caps.system} can mail {purpose} only through {needed}, which is not allowed",
        event_ids=tuple(str(i) for i in decision.event_ids),
    )


def _align(  # noqa: PLR0917 - positional: called for every change, 3 million times at 1M people
    email: str,
    system: str,
    seen: Seen,
    status: Status,
    purpose: str,
    decision: DecisionLike,
    caps: Capabilities,
    run_id: str,
) -> PlannedChange | None:
    """The change that makes ``system`` show ``decision`` for ``purpose``, where it shows ``status``."""
    mailable = status == _SUBSCRIBED and seen.global_state == _ACTIVE
    if decision.allowed:
        # PENDING is the vendor's own confirmation flow (Mailchimp re-subscribes that way): leave it be.
        # A vendor-side block (bounced, suppressed, unsubscribed from all) is a fact we cannot push over.
        if mailable or status == _PENDING or seen.global_state != _ACTIVE:
            return None
        if _SUBSCRIBE not in caps.actions:
            return None
        action, after, basis = _SUBSCRIBE, _SUBSCRIBED, basis_of(decision)
        reason = decision.reason
    else:
        if status != _SUBSCRIBED or _UNSUBSCRIBE not in caps.actions:
            return None
        action, after, basis = _UNSUBSCRIBE, _UNSUBSCRIBED, _NONE
        reason = f"{decision.reason} (R27: not allowed is pushed as unsubscribed)"
    # Positional (key, system, email, action, purpose, external_id, basis), and enum values by dictionary:
    # built once per change, some 3 million times at 1M people.
    change = Change(
        change_key(run_id, system, email, purpose, action),
        system,
        email,
        action,
        purpose,
        seen.external_id,
        basis,
    )
    return PlannedChange(
        change,
        purpose,
        _VALUE[status],
        _VALUE[after],
        decision.rule,
        reason,
        tuple(map(str, ids)) if (ids := decision.event_ids) else (),
    )


def _erase(person: Person, system: str, seen: Seen, caps: Capabilities, run_id: str) -> list[PlannedChange]:
    """Art. 17 + Art. 19: delete where the vendor can, else unsubscribe every purpose it shows (R21)."""
    if Action.ERASE in caps.actions:
        if seen.global_state == GlobalState.ERASED or (system, ACCOUNT) in person.in_flight:
            return []
        change = Change(
            key=change_key(run_id, system, person.email, ACCOUNT, Action.ERASE),
            system=system,
            email=person.email,
            action=Action.ERASE,
            external_id=seen.external_id,
        )
        return [
            PlannedChange(
                change, ACCOUNT, seen.global_state.value, GlobalState.ERASED.value, "R21", "erasure request"
            )
        ]
    out = []
    for purpose, status in sorted(seen.statuses.items()):
        if status != Status.SUBSCRIBED or (system, purpose) in person.in_flight:
            continue
        if Action.UNSUBSCRIBE not in caps.actions:
            continue
        change = Change(
            key=change_key(run_id, system, person.email, purpose, Action.UNSUBSCRIBE),
            system=system,
            email=person.email,
            action=Action.UNSUBSCRIBE,
            purpose=purpose,
            external_id=seen.external_id,
        )
        reason = "erasure request; this system cannot delete, so every purpose is unsubscribed"
        out.append(PlannedChange(change, purpose, status.value, Status.UNSUBSCRIBED.value, "R21", reason))
    return out


def _repermission(
    person: Person, system: str, seen: Seen, caps: Capabilities, run_id: str
) -> PlannedChange | None:
    """Quarantined people are tagged for re-permission where the vendor has tags (R8), and untagged once
    they have a basis again or are no longer quarantined."""
    slot = tag_slot(REPERMISSION_TAG)
    if (system, slot) in person.in_flight or seen.global_state != GlobalState.ACTIVE:
        return None
    tagged = REPERMISSION_TAG in seen.tags
    if person.quarantined and not tagged and Action.TAG in caps.actions:
        action, after, rule = Action.TAG, "tagged", "R8"
        reason = "subscribed without evidence: quarantined and listed for re-permission"
    elif not person.quarantined and tagged and Action.UNTAG in caps.actions:
        action, after, rule = Action.UNTAG, "untagged", "R8"
        reason = "no longer quarantined"
    else:
        return None
    change = Change(
        key=change_key(run_id, system, person.email, slot, action),
        system=system,
        email=person.email,
        action=action,
        external_id=seen.external_id,
        tag=REPERMISSION_TAG,
    )
    before = "tagged" if tagged else "untagged"
    return PlannedChange(change, slot, before, after, rule, reason)


def plan(
    people: Sequence[Person], capabilities: Mapping[str, Capabilities], run_id: str
) -> list[PlannedChange]:
    return [change for person in people for change in plan_person(person, capabilities, run_id)]


def apply(seen: Seen, planned: Sequence[PlannedChange]) -> Seen:
    """What a system shows once ``planned`` changes for it are applied (used to check convergence)."""
    statuses = dict(seen.statuses)
    tags = set(seen.tags)
    global_state = seen.global_state
    for item in planned:
        change = item.change
        if change.action == Action.ERASE:
            global_state = GlobalState.ERASED
        elif change.action == Action.TAG and change.tag:
            tags.add(change.tag)
        elif change.action == Action.UNTAG and change.tag:
            tags.discard(change.tag)
        elif change.purpose is not None:
            statuses[change.purpose] = Status(item.after)
    return Seen(seen.external_id, statuses, global_state, frozenset(tags))
