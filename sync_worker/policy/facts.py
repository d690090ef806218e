"""Values the policy core works on: the facts about one person, the policy, and the decision.

All immutable. The shell (ledger, CLI, runner) builds them; the core only reads them. The values made
per person, event and decision are named tuples, the rest frozen dataclasses: a planning pass over 1M people
makes millions of the former, and a frozen dataclass sets each field through ``object.__setattr__``
(two to four times the cost of a named tuple).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Literal, NamedTuple

Action = Literal["grant", "confirm", "withdraw", "object", "complaint", "erasure"]
Basis = Literal["consent", "soft_opt_in", "none"]
EvidenceLevel = Literal["proven", "attested", "unproven"]

ALL_PURPOSES = "*"  # a withdrawal for "*" is an objection to all marketing (R17, R19)
NEGATIVE_ACTIONS: frozenset[str] = frozenset({"withdraw", "object", "complaint", "erasure"})
GLOBAL_ACTIONS: frozenset[str] = frozenset({"object", "complaint", "erasure"})

# R23: ways in which the person acts themselves. Imports, syncs and staff edits never lift a withdrawal.
DEFAULT_SELF_SERVICE_METHODS: frozenset[str] = frozenset(
    {"web_form", "double_opt_in_click", "preference_centre", "checkout", "account", "verbal_recorded"}
)


@dataclass(frozen=True)
class Evidence:
    """What the source said about how a grant was asked for (RULES.md R5). ``None`` = not stated."""

    wording: str | None = None
    notice_version: str | None = None
    language: str | None = None
    privacy_notice_version: str | None = None
    purpose_version: str | None = None
    controller: str | None = None
    jurisdiction: str | None = None
    affirmative_action: str | None = None
    withdrawal_method: str | None = None
    form_url: str | None = None
    checkbox_prechecked: bool | None = None
    bundled: bool | None = None
    was_required: bool | None = None
    double_opt_in: bool | None = None
    authenticated: bool | None = None
    third_party: bool | None = None
    ip: str | None = None
    user_agent: str | None = None
    # R11: what the source states about age. ``age`` is the age at the time of the grant as the form
    # stated it; ``parental_consent`` that the holder of parental responsibility gave or authorised it.
    age: int | None = None
    birth_date: date | None = None
    parental_consent: bool | None = None


@dataclass(frozen=True)
class Point:
    """A collection point of the catalog: how consent is asked there, declared once by the operator."""

    purposes: tuple[str, ...]
    wording: str = ""
    notice_version: str = ""
    language: str = "nl"
    prechecked: bool = False
    bundled: bool = False
    was_required: bool = False
    double_opt_in: bool = False
    authenticated: bool = False
    since: datetime | None = None


class ConsentFact(NamedTuple):
    """One ledger event of one person, as the core sees it."""

    event_id: int
    purpose: str  # a purpose name, or ALL_PURPOSES
    action: Action
    occurred_at: datetime | None  # source time; None when the source gave none (R31)
    recorded_at: datetime
    source: str
    method: str = ""
    collection_point: str | None = None
    evidence: Evidence = Evidence()


class PurchaseFact(NamedTuple):
    event_id: int
    occurred_at: datetime
    paid: bool
    categories: tuple[str, ...] = ()
    opt_out_offered: bool = True  # R12(b): the checkout offered a free, easy opt-out
    opt_out_used: bool = False  # R12(b): ... and the person ticked it


class PersonFacts(NamedTuple):
    email: str
    events: tuple[ConsentFact, ...] = ()
    purchases: tuple[PurchaseFact, ...] = ()
    suppressed: bool = False  # R21/R22: the keyed hash of the address is on the suppression list


@dataclass(frozen=True)
class Policy:
    purposes: tuple[str, ...] = ("newsletter", "promotions", "events", "lead_magnet")
    min_evidence: Literal["attested", "proven"] = "attested"
    soft_opt_in_months: int = 24
    related_categories: tuple[tuple[str, tuple[str, ...]], ...] = ()
    pending_expiry_days: int = 30
    skew_window_seconds: int = 300
    purpose_versions: tuple[tuple[str, str], ...] = ()
    material_changes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    collection_points: tuple[tuple[str, Point], ...] = ()
    controller: str = ""
    self_service_methods: frozenset[str] = DEFAULT_SELF_SERVICE_METHODS
    minor_age: int = 16  # R11: below this age a grant needs parental consent (Art. 8 GDPR: 13 to 16; NL 16)

    def point(self, name: str | None) -> Point | None:
        return self._points.get(name) if name else None

    @cached_property
    def _points(self) -> dict[str, Point]:
        # Looked up for every grant judged: built once per policy, not once per lookup.
        return dict(self.collection_points)

    def version_of(self, purpose: str) -> str | None:
        """The purpose's current version (R10), if the operator declared one."""
        return self._versions.get(purpose)

    def changes_of(self, purpose: str) -> tuple[str, ...]:
        """The purpose's versions that changed it materially (R10)."""
        return self._changes.get(purpose, ())

    @cached_property
    def _versions(self) -> dict[str, str]:
        return dict(self.purpose_versions)  # as ``_points``: read for every grant judged

    @cached_property
    def _changes(self) -> dict[str, tuple[str, ...]]:
        return dict(self.material_changes)


class Decision(NamedTuple):
    purpose: str
    allowed: bool
    basis: Basis
    rule: str  # the RULES.md rule id that decided
    code: str  # a stable reason code for machines (e.g. "withdrawn", "quarantined_unproven")
    reason: str  # one sentence for people
    categories: tuple[str, ...] = ()  # soft opt-in only: the product categories that may be promoted (R12c)
    event_ids: tuple[int, ...] = ()  # consent events the decision rests on
    purchase_ids: tuple[int, ...] = ()  # purchases it rests on (soft opt-in, R12-R15)
    quarantined: bool = False  # an unproven grant and nothing else: list for re-permission (R1, R7, R8)
    # The first instant at which the same facts may decide otherwise (a window ends, a pending double
    # opt-in lapses, a future-dated event takes effect); None when time alone never changes it.
    valid_until: datetime | None = None
