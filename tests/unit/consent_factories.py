"""Small builders for policy facts, so each rule test reads as the situation it describes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sync_worker.policy import ConsentFact, Evidence, PersonFacts, Point, Policy, PurchaseFact

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CONTROLLER = "Winkel B.V."

FOOTER = Point(
    purposes=("newsletter", "promotions", "events"),
    wording="Ja, stuur mij...",
    notice_version="v1",
    authenticated=True,
)
POLICY = Policy(
    collection_points=(
        ("website:footer", FOOTER),
        ("website:doi", Point(purposes=("newsletter",), notice_version="v1", double_opt_in=True)),
        ("website:ebook", Point(purposes=("lead_magnet",), notice_version="v1")),
    ),
    related_categories=(("phones", ("phone-cases",)),),
    controller=CONTROLLER,
)


def at(minutes: float = 0, days: float = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, days=days)


def grant(
    event_id: int,
    purpose: str = "newsletter",
    when: datetime | None = T0,
    point: str | None = "website:footer",
    method: str = "web_form",
    source: str = "website",
    **evidence: Any,
) -> ConsentFact:
    recorded = when or T0
    return ConsentFact(
        event_id, purpose, "grant", when, recorded, source, method, point, Evidence(**evidence)
    )


def confirm(event_id: int, when: datetime, purpose: str = "newsletter") -> ConsentFact:
    return ConsentFact(event_id, purpose, "confirm", when, when, "website", "double_opt_in_click")


def negative(
    event_id: int,
    action: str = "withdraw",
    when: datetime | None = T0,
    purpose: str = "*",
    source: str = "website",
    recorded: datetime | None = None,
) -> ConsentFact:
    return ConsentFact(event_id, purpose, action, when, recorded or when or T0, source, "unsubscribe_link")  # type: ignore[arg-type]


def purchase(
    event_id: int,
    when: datetime = T0,
    paid: bool = True,
    categories: tuple[str, ...] = ("phones",),
    **kw: Any,
) -> PurchaseFact:
    return PurchaseFact(event_id, when, paid, categories, **kw)


def person(*items: ConsentFact | PurchaseFact, suppressed: bool = False) -> PersonFacts:
    events = tuple(i for i in items if isinstance(i, ConsentFact))
    purchases = tuple(i for i in items if isinstance(i, PurchaseFact))
    return PersonFacts("jan@example.nl", events, purchases, suppressed)


PROVEN = {
    "controller": CONTROLLER,
    "purpose_version": "1",
    "language": "nl",
    "privacy_notice_version": "2026-01",
    "affirmative_action": "checkbox_unticked_default",
    "jurisdiction": "NL",
    "withdrawal_method": "link in every mail",
    "was_required": False,
}
