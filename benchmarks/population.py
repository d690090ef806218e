"""Synthetic people for the scale benchmarks: the seed article's cases in a realistic mix.

One person is one case. What the ledger holds of them (our forms' grants and confirmations, checkout
ticks, imports, purchases, complaints, erasures) is written set-based through ``append_events`` /
``append_purchases`` in chunks; what each vendor shows of them is either seeded into the sandboxes
(``seed_vendors``) or written as the runner's snapshot of four systems (``seen_of``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine

from connectors.base import GlobalState, Status
from connectors.sandbox import Sandbox
from sync_worker.demo import form_grant
from sync_worker.ledger.erasure import erase
from sync_worker.ledger.ingest import append_events, append_purchases
from sync_worker.ledger.records import ConsentEventIn, PurchaseIn
from sync_worker.observe import Seen
from sync_worker.policy import Evidence, Policy

# case -> weight (per cent of the list); the shares are a plausible small-shop list, not measured data.
MIX = {
    "double_opt_in": 34,  # newsletter (some also events) with a confirmed double opt-in
    "lead_magnet": 12,  # e-book only, yet put on the newsletter in the vendors (R37)
    "prechecked_checkout": 10,  # pre-ticked box at checkout (R3)
    "paying_customer": 16,  # paid order in the last months: soft opt-in for related products (R12)
    "unsubscribed_in_one": 8,  # confirmed, then unsubscribed in one system only (R16, R20)
    "imported": 12,  # a list import without evidence (R8)
    "complaint": 3,  # spam complaint (R18)
    "erasure": 1,  # Art. 17 request (R21)
    "never_asked": 4,  # in the vendors, nothing in the ledger (R1)
}
CATALOG = {
    "website:newsletter-form": {"purposes": ["newsletter"], "double_opt_in": True, "wording": "Newsletter", "notice_version": "2026-01"},
    "website:events-form": {"purposes": ["events"], "double_opt_in": True, "wording": "Event invitations", "notice_version": "2026-01"},
    "website:ebook-form": {"purposes": ["lead_magnet"], "double_opt_in": True, "wording": "E-book and follow-ups", "notice_version": "2026-01"},
    "shopify:checkout": {"purposes": ["newsletter"], "prechecked": True, "authenticated": True, "wording": "Keep me informed (pre-ticked)", "notice_version": "2025-06"},
}  # fmt: skip
RELATED = {"shoes": ["shoes", "socks"], "socks": ["socks", "shoes"]}
DAY = timedelta(days=1)


def email_of(index: int) -> str:
    return f"person{index:07d}@example.nl"


def cases(n: int, seed: int = 7) -> list[str]:
    """The case of each of ``n`` people, drawn once with a fixed seed so runs are comparable."""
    return random.Random(seed).choices(list(MIX), weights=list(MIX.values()), k=n)


def records_of(index: int, case: str, now: datetime) -> tuple[list[ConsentEventIn], list[PurchaseIn]]:
    """What the ledger holds of one person before any run (deterministic in ``index``)."""
    email, at = email_of(index), now - (5 + index % 300) * DAY
    if case in ("double_opt_in", "unsubscribed_in_one"):
        events = form_grant(email, "newsletter", "website:newsletter-form", at, f"f{index}")
        if index % 3 == 0:
            events += form_grant(email, "events", "website:events-form", at, f"e{index}")
        if case == "unsubscribed_in_one":
            # What a run records once it has seen the vendor's unsubscribe: the person's own withdrawal.
            events.append(
                ConsentEventIn(email=email, source="mailchimp", source_event_id=f"u{index}", purpose="newsletter",
                               action="withdraw", occurred_at=now - DAY, method="unsubscribe_link")
            )  # fmt: skip
        return events, []
    if case == "lead_magnet":
        return form_grant(email, "lead_magnet", "website:ebook-form", at, f"b{index}"), []
    if case == "prechecked_checkout":
        tick = form_grant(email, "newsletter", "shopify:checkout", at, f"k{index}", confirm=False)
        return [
            e.model_copy(update={"source": "shopify", "method": "checkout", "evidence": Evidence()})
            for e in tick
        ], []
    if case == "paying_customer":
        order = PurchaseIn(
            email=email, source="shopify", source_event_id=f"o{index}", occurred_at=now - (index % 150) * DAY,
            paid=True, order_id=str(index), categories=["shoes" if index % 2 else "socks"],
        )  # fmt: skip
        return [], [order]
    if case == "imported":
        bare = ConsentEventIn(email=email, source="import", source_event_id=f"i{index}", purpose="newsletter",
                              action="grant", occurred_at=None, method="import")  # fmt: skip
        return [bare], []
    if case in ("complaint", "erasure"):
        events = form_grant(email, "newsletter", "website:newsletter-form", at, f"f{index}")
        if case == "complaint":
            events.append(
                ConsentEventIn(email=email, source="postmaster", source_event_id=f"fbl{index}", action="complaint",
                               occurred_at=now - 2 * DAY, method="feedback_loop")
            )  # fmt: skip
        return events, []
    return [], []


def write_ledger(
    engine: Engine, kinds: Sequence[str], *, policy: Policy, secret: bytes, now: datetime, chunk: int = 20_000
) -> None:
    """Every person's records, set-based in chunks (one transaction each); erasures through ``erase``."""
    for start in range(0, len(kinds), chunk):
        events: list[ConsentEventIn] = []
        purchases: list[PurchaseIn] = []
        for index in range(start, min(start + chunk, len(kinds))):
            more, bought = records_of(index, kinds[index], now)
            events += more
            purchases += bought
        with engine.begin() as conn:
            append_events(conn, events, policy=policy, secret=secret, now=now)
            append_purchases(conn, purchases, secret=secret, now=now)
    with engine.begin() as conn:
        for index, kind in enumerate(kinds):
            if kind == "erasure":
                erase(conn, email_of(index), secret=secret, now=now, reason="Art. 17 request")


def vendor_statuses(index: int, case: str, purposes: Sequence[str]) -> dict[str, Status]:
    """What every vendor shows before the first run: most lists mail everyone on the newsletter."""
    on = {"newsletter"}
    if case == "lead_magnet":
        on |= {"lead_magnet"}  # the zap that put e-book readers on the newsletter
    elif case in ("double_opt_in", "unsubscribed_in_one") and index % 3 == 0:
        on |= {"events"}
    elif case == "paying_customer":
        on = set() if index % 4 else {"newsletter"}
    return {p: Status.SUBSCRIBED if p in on else Status.NOT_SUBSCRIBED for p in purposes}


def seed_vendors(boxes: Sequence[Sandbox], kinds: Sequence[str], purposes_of: dict[str, list[str]]) -> None:
    for index, kind in enumerate(kinds):
        email = email_of(index)
        for box in boxes:
            box.add_contact(email, vendor_statuses(index, kind, purposes_of[box.name]))
        if kind == "unsubscribed_in_one":
            boxes[index % len(boxes)].set_status(email, "newsletter", Status.UNSUBSCRIBED)


def seen_of(index: int, case: str, systems: dict[str, list[str]]) -> Iterator[tuple[str, Seen]]:
    """The runner's snapshot of one person in each system, as after a first pull of the seeded vendors."""
    for number, (system, purposes) in enumerate(systems.items()):
        statuses = vendor_statuses(index, case, purposes)
        if case == "unsubscribed_in_one" and index % len(systems) == number:
            statuses["newsletter"] = Status.UNSUBSCRIBED
        yield system, Seen(f"{system}-{index}", statuses, GlobalState.ACTIVE)
