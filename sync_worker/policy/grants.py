"""Grants judged for one purpose: valid, or voided by the rule named (RULES.md R2-R8, R10, R31, R37)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sync_worker.policy.evidence import graded, point_and_evidence
from sync_worker.policy.facts import ALL_PURPOSES, ConsentFact, Evidence, EvidenceLevel, Point, Policy


@dataclass(frozen=True, slots=True)
class Grant:
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
    defect = form_defect_r2_r3_r4_r37(fact, purpose, point, evidence) or version_defect_r10(
        purpose, policy, evidence
    )
    if defect is None:
        defect = evidence_defect_r5_r7_r8(fact, level, policy, evidence)
    if defect is not None:
        return Grant(fact, event_time(fact), level, *defect)
    return confirm_r6(Grant(fact, event_time(fact), level), confirms, policy, now, evidence)


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
