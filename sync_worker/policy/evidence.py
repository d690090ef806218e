"""Grading of grant evidence: `proven`, `attested` or `unproven` (RULES.md R5, R7, R8, R31).

A grant from a known collection point inherits what the operator declared about that point; the
event's own evidence wins where it says something.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from typing import TypeVar

from sync_worker.policy.facts import ConsentFact, Evidence, EvidenceLevel, Point, Policy

T = TypeVar("T")

# R5: the fields a grant must carry to be `proven` (besides time, method and form, checked apart).
PROVEN_FIELDS = (
    "controller",
    "purpose_version",
    "notice_version",
    "language",
    "privacy_notice_version",
    "affirmative_action",
    "jurisdiction",
    "withdrawal_method",
)


def applicable_point(fact: ConsentFact, policy: Policy) -> Point | None:
    """The catalog entry of the fact's collection point, if it was in use at the event's time."""
    point = policy.point(fact.collection_point)
    return point if point_in_use(point, fact.occurred_at) else None


def point_in_use(point: Point | None, occurred_at: datetime | None) -> bool:
    """Whether a catalog entry applies to an event of that time (an entry with ``since`` needs a time)."""
    if point is None:
        return False
    return point.since is None or (occurred_at is not None and occurred_at >= point.since)


def effective_evidence(fact: ConsentFact, policy: Policy) -> Evidence:
    """The event's evidence, with gaps filled from its collection point."""
    return point_and_evidence(fact, policy)[1]


def point_and_evidence(fact: ConsentFact, policy: Policy) -> tuple[Point | None, Evidence]:
    """``applicable_point`` and ``effective_evidence`` at once: judging a grant reads both several times."""
    point = applicable_point(fact, policy)
    return point, (fact.evidence if point is None else _filled(fact.evidence, point))


@lru_cache(maxsize=4096)
def _filled(own: Evidence, point: Point) -> Evidence:
    # Asked several times per grant, and grants from one point mostly carry the same evidence.
    return replace(
        own,
        wording=_or(own.wording, point.wording or None),
        notice_version=_or(own.notice_version, point.notice_version or None),
        language=_or(own.language, point.language or None),
        checkbox_prechecked=_or(own.checkbox_prechecked, point.prechecked),
        bundled=_or(own.bundled, point.bundled),
        was_required=_or(own.was_required, point.was_required),
        double_opt_in=_or(own.double_opt_in, point.double_opt_in),
        authenticated=_or(own.authenticated, point.authenticated),
    )


def _or(value: T | None, default: T | None) -> T | None:
    return default if value is None else value


def is_foreign(evidence: Evidence, policy: Policy) -> bool:
    """R7: consent collected by another party counts only if it names our controller."""
    return bool(evidence.third_party) and (not policy.controller or evidence.controller != policy.controller)


def grade(fact: ConsentFact, policy: Policy) -> EvidenceLevel:
    """R5 evidence level of a grant; `unproven` never allows mailing (R1, R7, R8, R31)."""
    return graded(fact, policy, *point_and_evidence(fact, policy))


def graded(fact: ConsentFact, policy: Policy, point: Point | None, evidence: Evidence) -> EvidenceLevel:
    """``grade`` with the fact's ``point_and_evidence`` already at hand."""
    if fact.occurred_at is None:  # R31: a grant without a source time is unproven
        return "unproven"
    if is_foreign(evidence, policy) or not fact.method:
        return "unproven"
    has_form = bool(fact.collection_point or evidence.form_url)
    if has_form and evidence.was_required is False and all(getattr(evidence, name) for name in PROVEN_FIELDS):
        return "proven"
    if point is not None:
        return "attested"
    return "unproven"
