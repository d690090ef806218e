"""The decision for one person and purpose, in the order of RULES.md Part B.

(1) suppression hit -> DENY (R22); (2) withdrawal/objection newer than the last valid grant -> DENY
(R16-R21, R23, R29, R30); (3) valid, confirmed consent -> ALLOW(consent) (R2-R11, R37);
(4) promotions and soft opt-in holds -> ALLOW(soft_opt_in) (R12-R15); (5) otherwise DENY (R1, or the
rule that invalidated the person's grant; an unproven grant quarantines the person, R8).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from sync_worker.policy.facts import (
    ALL_PURPOSES,
    GLOBAL_ACTIONS,
    NEGATIVE_ACTIONS,
    ConsentFact,
    Decision,
    PersonFacts,
    Policy,
    PurchaseFact,
)
from sync_worker.policy.grants import Grant, event_time, judge_grants, shows_minor
from sync_worker.policy.months import add_months

NEGATIVE_RULES = {"withdraw": "R16", "object": "R17", "complaint": "R18", "erasure": "R21"}
EVIDENCE_RULES = frozenset({"R5", "R7", "R8", "R31"})  # defects that quarantine the person
# Why a voided grant does not count, where its code alone says too little to a person reading ``explain``.
REASONS = {
    "R11": "The grant does not count: its evidence shows a person under the age of consent without"
    " parental consent",
}
TICK = timedelta(microseconds=1)  # "after" a deadline: the rules compare with ``now > deadline``


def decide(facts: PersonFacts, purpose: str, policy: Policy, now: datetime) -> Decision:
    """Decide whether ``purpose`` mail may go to the person at ``now``; see the module docstring.

    The decision also says until when it holds on these facts (``valid_until``), so that a run re-decides
    the people whose decision time alone may have changed without re-reading everyone.
    """
    return _decide(facts, purpose, policy, now, concerning(facts.events, purpose))


def decide_all(facts: PersonFacts, policy: Policy, now: datetime) -> tuple[Decision, ...]:
    # The person's events are sorted out by purpose once, not scanned again for every purpose.
    if facts.suppressed:
        return tuple(_decide(facts, purpose, policy, now, []) for purpose in policy.purposes)
    by_purpose = concerning_by_purpose(facts.events, policy.purposes)
    purchases = facts.purchases
    decisions = []
    for purpose in policy.purposes:
        # ``_decide``, its shortcut taken here without a call (most purposes of most people take it).
        relevant = by_purpose[purpose]
        if relevant or (purchases and purpose == "promotions"):
            decisions.append(decide_on_record(facts, purpose, policy, now, relevant))
        else:
            decisions.append(_no_basis(purpose))
    return tuple(decisions)


def concerns(fact: ConsentFact, purpose: str) -> bool:
    """Whether an event can bear on ``purpose``: it names it, claims all purposes, or stops all marketing.

    Every rule of ``decide`` reads only such events, so the others can be left out beforehand.
    """
    return fact.action in GLOBAL_ACTIONS or fact.purpose in (purpose, ALL_PURPOSES)


def concerning(events: tuple[ConsentFact, ...], purpose: str) -> list[ConsentFact]:
    return [e for e in events if concerns(e, purpose)]


def concerning_by_purpose(
    events: tuple[ConsentFact, ...], purposes: tuple[str, ...]
) -> dict[str, list[ConsentFact]]:
    """``concerning`` for every purpose in one pass over the events."""
    by_purpose: dict[str, list[ConsentFact]] = {purpose: [] for purpose in purposes}
    for event in events:
        if event.action in GLOBAL_ACTIONS or event.purpose == ALL_PURPOSES:
            for bucket in by_purpose.values():
                bucket.append(event)
        elif event.purpose in by_purpose:
            by_purpose[event.purpose].append(event)
    return by_purpose


def _decide(
    facts: PersonFacts, purpose: str, policy: Policy, now: datetime, relevant: list[ConsentFact]
) -> Decision:
    """``decide`` on the person's events that concern the purpose (``relevant``, in any order)."""
    suppressed = deny_if_suppressed_r22(facts, purpose)
    if suppressed is not None:
        return suppressed  # R22 holds whatever the time
    if not relevant and (purpose != "promotions" or not facts.purchases):
        # Nothing on record bears on this purpose: no grant to judge, no objection, no purchase window,
        # nothing time could change. The common case for most purposes of most people.
        return deny_without_basis_r1(purpose, [])
    return decide_on_record(facts, purpose, policy, now, relevant)


def decide_on_record(
    facts: PersonFacts, purpose: str, policy: Policy, now: datetime, relevant: list[ConsentFact]
) -> Decision:
    """Steps (2) to (5) of the module docstring on the events that concern the purpose.

    ``relevant`` may hold other events too (every rule reads only those that concern the purpose); the
    policy properties pass all of them here to check that ``decide``'s sorting-out and shortcut change
    nothing."""
    events = _effective_events(relevant, now)
    grants = judge_grants(events, purpose, policy, now)
    # Purchases are read for promotions only (R12: soft opt-in is for promotions only).
    purchases = _in_order(facts.purchases) if purpose == "promotions" else ()
    decision = _decide_at(events, purchases, purpose, policy, now=now, grants=grants)
    until = next_change_by_time(
        relevant, facts.purchases, purpose, policy, now, effective=events, grants=grants
    )
    if decision.quarantined and any(shows_minor(e, policy) for e in facts.events if e.action == "grant"):
        # A re-permission mail asks for consent: never send one to someone any grant of theirs shows a
        # minor (R11), whatever purpose or time; a later adult grant lifts no quarantine it never set.
        decision = decision._replace(quarantined=False)
    # Most decisions never change by time alone: copy only the others.
    return decision if until is None else decision._replace(valid_until=until)


def _effective_events(events: list[ConsentFact], now: datetime) -> tuple[ConsentFact, ...]:
    """The events that have happened by ``now``, in the person's order."""
    # Sorted by the person's time, not arrival (R29), so the outcome never depends on arrival order.
    return tuple(
        sorted((e for e in events if event_time(e) <= now), key=lambda e: (event_time(e), e.event_id))
    )


def _in_order(purchases: tuple[PurchaseFact, ...]) -> tuple[PurchaseFact, ...]:
    return tuple(sorted(purchases, key=lambda p: (p.occurred_at, p.event_id)))


def _decide_at(
    events: tuple[ConsentFact, ...],
    purchases: tuple[PurchaseFact, ...],
    purpose: str,
    policy: Policy,
    *,
    now: datetime,
    grants: list[Grant],
) -> Decision:
    """``purchases`` in the person's order (only promotions reads them)."""
    valid = [g for g in grants if g.rule is None]
    # Ties are broken by content before event id (ids follow arrival order, R29/R32).
    last_valid = max(
        valid, key=lambda g: (g.effective_at, g.level, g.fact.source, g.fact.event_id), default=None
    )
    withdrawn = deny_if_withdrawn_r16_to_r23(events, purpose, valid, policy)
    if withdrawn is not None:
        return name_soft_opt_in_end_r15(withdrawn, purchases, events)
    if last_valid is not None:
        return allow_consent_r5(purpose, last_valid)
    soft = decide_soft_opt_in_r12_to_r14(purchases, purpose, policy, now)
    if soft is not None:
        return soft
    return deny_without_basis_r1(purpose, grants)


def next_change_by_time(
    relevant: list[ConsentFact],
    purchases: tuple[PurchaseFact, ...],
    purpose: str,
    policy: Policy,
    now: datetime,
    *,
    effective: tuple[ConsentFact, ...],
    grants: list[Grant],
) -> datetime | None:
    """The earliest instant after ``now`` at which time alone may change the decision, or None.

    Each is the first moment a time comparison in the rules turns: a future-dated event or purchase
    takes effect at its time (R29), a pending double opt-in lapses just after its deadline (R6), a
    soft opt-in purchase leaves the window just after its last day (R14). Early is safe (the person is
    only decided again); late is not, so every time comparison of ``decide`` has its moment here.
    ``relevant`` are the person's events that concern the purpose, ``effective`` those up to ``now`` and
    ``grants`` the judged grants, as ``decide`` has them.
    """
    moments: list[datetime] = []
    if len(effective) < len(relevant):  # some events lie ahead of ``now``
        moments += [event_time(e) for e in relevant if event_time(e) > now and concerns(e, purpose)]
    for grant in grants:
        if grant.code == "double_opt_in_pending":
            moments.append(grant.effective_at + timedelta(days=policy.pending_expiry_days) + TICK)
    if purpose == "promotions" and purchases:
        months = policy.soft_opt_in_months
        recent = now - timedelta(days=31 * months + 1)  # older purchases' windows ended before ``now``
        for p in purchases:
            if not p.paid:
                continue
            if p.occurred_at > now:
                moments.append(p.occurred_at)
            if p.opt_out_offered and not p.opt_out_used and p.occurred_at >= recent:
                end = add_months(p.occurred_at, months)
                if end >= now:
                    moments.append(end + TICK)
    return min(moments, default=None)


def name_soft_opt_in_end_r15(
    denial: Decision, purchases: tuple[PurchaseFact, ...], events: tuple[ConsentFact, ...]
) -> Decision:
    """R15: a paid purchase after an objection does not revive soft opt-in; say so when it is the question."""
    if denial.purpose != "promotions" or denial.rule in ("R23", "R30"):
        return denial
    negatives = negatives_for(events, denial.purpose)
    if not negatives:
        return denial
    stopped = min(event_time(e) for e in negatives)
    later = [p for p in purchases if p.paid and p.occurred_at > stopped]
    if not later:
        return denial
    return denial._replace(
        rule="R15",
        code="soft_opt_in_ended",
        reason=f"Soft opt-in ended for good at the first objection ({stopped.isoformat()}); later purchases do not revive it.",
        purchase_ids=tuple(p.event_id for p in later),
    )


def deny_if_suppressed_r22(facts: PersonFacts, purpose: str) -> Decision | None:
    """R22 (with R21): the suppression list is checked before anything else."""
    if not facts.suppressed:
        return None
    return Decision(purpose, False, "none", "R22", "suppressed", "The address is on the suppression list.")


def negatives_for(events: tuple[ConsentFact, ...], purpose: str) -> list[ConsentFact]:
    """R16 withdrawals of this purpose, plus R17-R19, R21 events that stop all marketing."""
    return [
        e
        for e in events
        if e.action in NEGATIVE_ACTIONS
        and (e.action in GLOBAL_ACTIONS or e.purpose in (purpose, ALL_PURPOSES))
    ]


def negative_rule(fact: ConsentFact) -> str:
    if fact.action == "withdraw" and fact.purpose == ALL_PURPOSES:
        return "R17"  # R19: an unsubscribe without a resolvable purpose is an objection
    return NEGATIVE_RULES[fact.action]


def deny_if_withdrawn_r16_to_r23(
    events: tuple[ConsentFact, ...], purpose: str, valid: list[Grant], policy: Policy
) -> Decision | None:
    """R16-R21: the newest negative event blocks unless a later valid grant lifts it (R23, R29, R30)."""
    negatives = negatives_for(events, purpose)
    if not negatives:
        return None
    # Among equal times the global event names the rule: it is the stronger statement.
    last = max(
        negatives,
        key=lambda e: (
            event_time(e),
            e.action in GLOBAL_ACTIONS,
            e.action,
            e.purpose == ALL_PURPOSES,
            e.event_id,
        ),
    )
    stopped = event_time(last)
    skew = timedelta(seconds=policy.skew_window_seconds)

    def tied(grant: Grant) -> bool:  # R30
        return grant.effective_at == stopped or (
            grant.fact.source != last.source and grant.effective_at - stopped <= skew
        )

    later = [g for g in valid if g.effective_at >= stopped]
    untied = [g for g in later if not tied(g)]
    if any(g.fact.method in policy.self_service_methods for g in untied):
        return None  # R23: the person acted again after the withdrawal
    ids = (last.event_id, *(i for g in later for i in g.event_ids))
    if untied:
        method = untied[-1].fact.method
        return Decision(
            purpose, False, "none", "R23", "regrant_not_by_person",
            f"Only a new act by the person can lift a withdrawal; '{method}' cannot.",
            event_ids=ids,
        )  # fmt: skip
    if later:
        return Decision(
            purpose, False, "none", "R30", "tie_resolves_to_withdrawal",
            "A grant and a withdrawal at the same time (or within the skew window) resolve to withdrawal.",
            event_ids=ids,
        )  # fmt: skip
    return Decision(
        purpose, False, "none", negative_rule(last), "withdrawn", _withdrawn_reason(last), event_ids=ids
    )


def _withdrawn_reason(fact: ConsentFact) -> str:
    what = {
        "withdraw": "withdrew consent",
        "object": "objected to all marketing",
        "complaint": "reported a message as spam",
        "erasure": "asked for erasure",
    }[fact.action]
    scope = "for all marketing" if fact.purpose == ALL_PURPOSES and fact.action == "withdraw" else ""
    return f"The person {what}{' ' + scope if scope else ''} at {event_time(fact).isoformat()}."


def allow_consent_r5(purpose: str, grant: Grant) -> Decision:
    """R5 (with R2-R6): a valid, confirmed grant of this purpose allows mailing it."""
    when = grant.effective_at.isoformat()
    return Decision(
        purpose, True, "consent", "R5", "consent",
        f"Consent given at {when} ({grant.level} evidence, source {grant.fact.source}).",
        event_ids=grant.event_ids,
    )  # fmt: skip


def decide_soft_opt_in_r12_to_r14(
    purchases: tuple[PurchaseFact, ...],
    purpose: str,
    policy: Policy,
    now: datetime,
) -> Decision | None:
    """R12-R14: promotions to paying customers for similar products, within the window (R15 is in step 2)."""
    if purpose != "promotions":
        return None  # R12: soft opt-in is for promotions only (R38: events need consent)
    paid = sorted(
        (p for p in purchases if p.paid and p.occurred_at <= now), key=lambda p: (p.occurred_at, p.event_id)
    )  # R13: no payment, no customer
    if not paid:
        return None
    offered = [p for p in paid if p.opt_out_offered and not p.opt_out_used]
    if not offered:
        return Decision(
            purpose, False, "none", "R12", "opt_out_not_offered_or_used",
            "The purchase gave no free opt-out at checkout, or the person used it.",
            purchase_ids=tuple(p.event_id for p in paid),
        )  # fmt: skip
    current = [p for p in offered if now <= add_months(p.occurred_at, policy.soft_opt_in_months)]
    if not current:
        last = max(offered, key=lambda p: (p.occurred_at, p.event_id))
        return Decision(
            purpose, False, "none", "R14", "soft_opt_in_window_passed",
            f"The last paid purchase ({last.occurred_at.isoformat()}) is older than {policy.soft_opt_in_months} months.",
            purchase_ids=(last.event_id,),
        )  # fmt: skip
    related = dict(policy.related_categories)
    categories = sorted(
        {c for p in current for bought in p.categories for c in (bought, *related.get(bought, ()))}
    )
    return Decision(
        purpose, True, "soft_opt_in", "R12", "soft_opt_in",
        f"Paid customer within {policy.soft_opt_in_months} months; similar products only.",
        categories=tuple(categories),
        purchase_ids=tuple(p.event_id for p in current),
    )  # fmt: skip


def deny_without_basis_r1(purpose: str, grants: list[Grant]) -> Decision:
    """R1 default deny; when grants exist, the rule that voided the newest one is named."""
    if not grants:
        return _no_basis(purpose)
    newest = max(grants, key=lambda g: (g.effective_at, g.rule or "", g.code, g.fact.event_id))
    rule = newest.rule or "R1"
    quarantined = any(g.rule in EVIDENCE_RULES for g in grants)
    return Decision(
        purpose, False, "none", rule, newest.code or "no_basis",
        REASONS.get(rule, "The grant on record does not count") + f" ({newest.code}, {rule}).",
        event_ids=tuple(g.fact.event_id for g in grants),
        quarantined=quarantined,
    )  # fmt: skip


@lru_cache(maxsize=64)
def _no_basis(purpose: str) -> Decision:
    # The most frequent decision of all, and a frozen value: one per purpose serves every person.
    return Decision(purpose, False, "none", "R1", "no_basis", "No consent or soft opt-in on record.")
