"""Grants judged for one purpose: valid, or voided by the rule named (RULES.md R2-R8, R10, R11, R31, R37)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

from sync_worker.policy.evidence import graded, point_and_evidence
from sync_worker.policy.facts import ALL_PURPOSES, ConsentFact, Evidence, EvidenceLevel, Point, Policy


class Grant(NamedTuple):
    """A grant for the purpose, judged: valid when ``rule`` is None, else the rule that voids it."""

    fact: ConsentFact
    effective_at: datetime  # confirmation time for double opt-in (R6)
    level: EvidenceLevel
    rule: str | None = None
    code: str = ""
    confirm_id: int | None = None

    @property
    def event_ids(self) -> tuple[int, ...]:
        ids = (self.fact.event_id,)
        return (*ids, self.confirm_id) if self.confirm_id is not None else ids


def event_time(fact: ConsentFact) -> datetime:
    """R29/R31: the source time; a negative event without one takes effect at its receive time."""
    return fact.occurred_at if fact.occurred_at is not None else fact.recorded_at


def judge_grants(events: tuple[ConsentFact, ...], purpose: str, policy: Policy, now: datetime) -> list[Grant]:
    """Every grant naming this purpose (or claiming all of them), each with the rule that voids it."""
    confirms = [e for e in events if e.action == "confirm" and e.purpose in (purpose, ALL_PURPOSES)]
    return [
        judge_grant(e, purpose, confirms, policy, now)
        for e in events
        if e.action == "grant" and e.purpose in (purpose, ALL_PURPOSES)
    ]


def judge_grant(
    fact: ConsentFact, purpose: str, confirms: list[ConsentFact], policy: Policy, now: datetime
) -> Grant:
    point, evidence = point_and_evidence(fact, policy)  # once for all the rules below
    level = graded(fact, policy, point, evidence)
    # R11 is judged first and so named when other defects apply too: a minor cannot consent alone, so a
    # better form (R2-R4, R10) or fuller evidence (R5, R7, R8, R31) would not make the grant count; only
    # parental consent would.
    defect = (
        minor_defect_r11(fact, policy, evidence)
        or form_defect_r2_r3_r4_r37(fact, purpose, point, evidence)
        or version_defect_r10(purpose, policy, evidence)
    )
    if defect is None:
        defect = evidence_defect_r5_r7_r8(fact, level, policy, evidence)
    if defect is not None:
        return Grant(fact, event_time(fact), level, *defect)
    return confirm_r6(Grant(fact, event_time(fact), level), confirms, policy, now, evidence)


def minor_defect_r11(fact: ConsentFact, policy: Policy, evidence: Evidence) -> tuple[str, str] | None:
    """R11: a grant whose evidence shows the person under ``policy.minor_age`` needs parental consent.

    ``evidence`` is the grant's effective evidence."""
    if evidence.parental_consent or not shows_minor(fact, policy, evidence):
        return None
    return "R11", "minor_without_parental_consent"


def shows_minor(fact: ConsentFact, policy: Policy, evidence: Evidence | None = None) -> bool:
    """Whether a grant's evidence shows the person under ``policy.minor_age`` at the grant's time (R11).

    Age counts at the grant, not now: growing up does not make a child's grant valid. A stated age or a
    birth date showing a minor is enough; with neither stated, nothing is shown. Collection points declare
    no ages, so the event's own evidence serves when ``evidence`` is not given."""
    stated = fact.evidence if evidence is None else evidence
    if stated.age is not None and stated.age < policy.minor_age:
        return True
    born = stated.birth_date
    # The source time, else the receive time: the person was no older when they acted.
    return born is not None and age_on(born, event_time(fact).date()) < policy.minor_age


def age_on(birth_date: date, day: date) -> int:
    """Completed years on ``day`` (someone born on 29 February turns a year older on 1 March)."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def form_defect_r2_r3_r4_r37(
    fact: ConsentFact, purpose: str, point: Point | None, evidence: Evidence
) -> tuple[str, str] | None:
    """R2 one purpose per tick, R3 affirmative act only, R4 no conditional consent, R37 lead magnets.

    ``point`` and ``evidence`` are the fact's ``point_and_evidence``."""
    if fact.purpose == ALL_PURPOSES or evidence.bundled:
        return "R2", "bundled_purposes"
    if evidence.checkbox_prechecked:
        return "R3", "prechecked_box"
    if evidence.was_required:
        return "R4", "consent_was_required"
    if point is not None and purpose not in point.purposes:
        # A lead-magnet form grants the download sequence only, never the newsletter (R37).
        if "lead_magnet" in point.purposes:
            return "R37", "lead_magnet_form_only"
        return "R2", "purpose_not_asked_at_collection_point"
    return None


def version_defect_r10(purpose: str, policy: Policy, evidence: Evidence) -> tuple[str, str] | None:
    """R10: a grant given before a material change of the purpose does not cover the new version.

    ``evidence`` is the grant's effective evidence."""
    current = policy.version_of(purpose)
    changes = policy.changes_of(purpose)
    if current is None or not changes:
        return None
    given = evidence.purpose_version
    given_key = version_key(given) if given is not None else None
    for change in changes:
        if version_key(change) <= version_key(current) and (
            given_key is None or given_key < version_key(change)
        ):
            return "R10", "purpose_changed_materially"
    return None


@lru_cache(maxsize=256)
def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[^0-9A-Za-z]+", version) if p)


def evidence_defect_r5_r7_r8(
    fact: ConsentFact, level: EvidenceLevel, policy: Policy, evidence: Evidence
) -> tuple[str, str] | None:
    """R5 mandatory evidence, R7 third-party consent, R8 flags without evidence, R31 no source time."""
    if fact.occurred_at is None:
        return "R31", "grant_without_source_time"
    if level == "unproven":
        if evidence.third_party:
            return "R7", "third_party_consent_not_naming_controller"
        return "R8", "unproven_grant"
    if level == "attested" and policy.min_evidence == "proven":
        return "R5", "evidence_incomplete"
    return None


def confirm_r6(
    grant: Grant, confirms: list[ConsentFact], policy: Policy, now: datetime, evidence: Evidence
) -> Grant:
    """R6: a public-form double opt-in grant is pending until confirmed; pending too long lapses.

    ``evidence`` is the grant's effective evidence."""
    if not evidence.double_opt_in or evidence.authenticated:
        return grant
    deadline = grant.effective_at + timedelta(days=policy.pending_expiry_days)
    clicks = [c for c in confirms if grant.effective_at <= event_time(c) <= deadline]
    if clicks:
        first = min(clicks, key=lambda c: (event_time(c), c.event_id))
        return Grant(grant.fact, event_time(first), grant.level, confirm_id=first.event_id)
    code = "double_opt_in_lapsed" if now > deadline else "double_opt_in_pending"
    return Grant(grant.fact, grant.effective_at, grant.level, "R6", code)
