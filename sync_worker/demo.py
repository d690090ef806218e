"""The demo: every vendor sandbox served over real HTTP on 127.0.0.1, seeded with a small shop that holds
every case of the seed article, reconciled twice into a fresh SQLite ledger.

Vendor state is seeded through the Sandbox protocol only (``add_contact``), so every sandbox that exists
takes part; consent evidence from our own forms, purchases, a spam complaint and an erasure request
enter the ledger as ``sync-worker import`` would bring them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from config import Settings, load_settings
from connectors.base import Status
from connectors.registry import VENDORS, sandbox_class
from connectors.sandbox import Sandbox, served
from sync_worker import db
from sync_worker.ledger.erasure import erase
from sync_worker.ledger.ingest import append_events, append_purchases
from sync_worker.ledger.records import ConsentEventIn, PurchaseIn
from sync_worker.policy import Evidence
from sync_worker.rulebook import policy_from_settings, secret_of

SECRET = "demo-secret-key-not-for-production"  # noqa: S105  (a local demo ledger, no real data)
CATALOG = {
    "website:newsletter-form": {"purposes": ["newsletter"], "double_opt_in": True, "wording": "Yes, send me the newsletter", "notice_version": "2026-01"},
    "website:ebook-form": {"purposes": ["lead_magnet"], "double_opt_in": True, "wording": "Send me the e-book and the follow-up series", "notice_version": "2026-01"},
    "shopify:checkout": {"purposes": ["newsletter"], "prechecked": True, "authenticated": True, "wording": "Keep me informed (pre-ticked)", "notice_version": "2025-06"},
}  # fmt: skip
RELATED = {"shoes": ["shoes", "socks"], "socks": ["socks", "shoes"]}


@dataclass(frozen=True)
class Case:
    email: str
    story: str


CASES = (
    Case("dana@example.nl", "newsletter subscriber with double opt-in: stays subscribed"),
    Case("lena@example.nl", "lead-magnet sign-up only, put on the newsletter by a zap: newsletter off (R37)"),
    Case("piet@example.nl", "pre-ticked checkout box: no valid consent (R3), newsletter off"),
    Case("kees@example.nl", "recent paid order: promotions for related products only (soft opt-in, R12)"),
    Case("uma@example.nl", "unsubscribed in one system, subscribed elsewhere: off everywhere (R16, R20)"),
    Case(
        "ivo@example.nl",
        "imported list without evidence: never mailed (R8, R27); re-permission tag where the vendor only had a bare flag",
    ),
    Case("sam@example.nl", "spam complaint: all marketing off everywhere (R18)"),
    Case("eddy@example.nl", "erasure request: deleted or unsubscribed everywhere (R21)"),
)


def available_sandboxes(report: Callable[[str], None]) -> list[Sandbox]:
    boxes = []
    for name in VENDORS:
        try:
            box = sandbox_class(name)()
            box.app  # noqa: B018  (builds the app now: a sandbox that cannot start is left out here)
        except (ImportError, AttributeError, OSError) as error:
            report(f"  {name}: no sandbox in this build ({type(error).__name__}: {error}); left out")
            continue
        boxes.append(box)
    return boxes


@contextmanager
def serve_all(boxes: list[Sandbox]) -> Iterator[dict[str, str]]:
    """Serve each sandbox on its own 127.0.0.1 port; yields the SYNC_* variables pointing at them."""
    env: dict[str, str] = {}
    with ExitStack() as stack:
        for box in boxes:
            env.update(box.settings_env(stack.enter_context(served(box.app))))
        yield env


def settings_for(env: Mapping[str, str], database_url: str) -> Settings:
    """Settings from the sandboxes' variables plus the demo's catalog, without touching os.environ."""
    tree: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": SECRET,
        "collection_points": CATALOG,
        "policy": {"related_categories": RELATED},
        # The seed article's pre-ticked checkout box: checkout consent grants nothing (R3).
        "shopify": {"checkout_preselected": True},
    }
    for key, value in env.items():
        path = key.removeprefix("SYNC_").lower().split("__")
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = json.loads(value) if value[:1] in "{[" else value
    return load_settings(**tree)


def purposes_of(box: Sandbox) -> list[str]:
    mapped = getattr(box, "purposes", None)
    return list(mapped) if isinstance(mapped, Mapping) and mapped else ["newsletter"]


def seed_vendors(boxes: list[Sandbox], people: int, rng: random.Random) -> None:
    def everywhere(email: str, status: Status, only: set[str] | None = None) -> None:
        for box in boxes:
            wanted = purposes_of(box)
            box.add_contact(email, {p: status for p in wanted if only is None or p in only})

    everywhere("dana@example.nl", Status.SUBSCRIBED, {"newsletter"})
    everywhere("lena@example.nl", Status.SUBSCRIBED, {"newsletter", "lead_magnet"})
    everywhere("piet@example.nl", Status.SUBSCRIBED, {"newsletter"})
    everywhere("kees@example.nl", Status.NOT_SUBSCRIBED)
    everywhere("uma@example.nl", Status.SUBSCRIBED, {"newsletter"})
    boxes[0].set_status("uma@example.nl", "newsletter", Status.UNSUBSCRIBED)
    everywhere("ivo@example.nl", Status.SUBSCRIBED, {"newsletter"})
    everywhere("sam@example.nl", Status.SUBSCRIBED, {"newsletter"})
    everywhere("eddy@example.nl", Status.SUBSCRIBED, {"newsletter"})
    # The rest of the shop: mostly proper double opt-in subscribers, some bare imports, some never asked.
    for n in range(people):
        roll = rng.random()
        status = Status.NOT_SUBSCRIBED if roll > 0.85 else Status.SUBSCRIBED
        everywhere(f"customer{n:03d}@example.nl", status, {"newsletter"})


def form_grant(
    email: str, purpose: str, point: str, at: datetime, ref: str, *, confirm: bool = True
) -> list[ConsentEventIn]:
    """A grant from one of our own web forms, confirmed by the double opt-in click unless ``confirm`` is false."""
    base = ConsentEventIn(
        email=email, source="website", source_event_id=ref, purpose=purpose, action="grant",
        occurred_at=at, method="web_form", collection_point=point,
        evidence=Evidence(checkbox_prechecked=False, was_required=False),
    )  # fmt: skip
    if not confirm:
        return [base]
    click = base.model_copy(
        update={"action": "confirm", "source_event_id": f"{ref}:confirm", "occurred_at": at + timedelta(minutes=7),
                "method": "double_opt_in_click"}
    )  # fmt: skip
    return [base, click]


def grant_newsletter(settings: Settings, emails: Sequence[str], start: datetime) -> None:
    """Double opt-in newsletter grants from our own form a month before ``start``, in the ledger
    (tests and benchmarks whose people must stay subscribed through a first run)."""
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine)
    at = start - timedelta(days=30)
    events = [
        event
        for n, email in enumerate(emails)
        for event in form_grant(email, "newsletter", "website:newsletter-form", at, f"f-{n}")
    ]
    with engine.begin() as conn:
        append_events(
            conn, events, policy=policy_from_settings(settings), secret=secret_of(settings), now=start
        )
    engine.dispose()


def seed_ledger(settings: Settings, people: int, rng: random.Random, now: datetime) -> None:
    policy = policy_from_settings(settings)
    secret = SECRET.encode()

    month = timedelta(days=30)
    events = [
        *form_grant("dana@example.nl", "newsletter", "website:newsletter-form", now - 6 * month, "f-dana"),
        *form_grant("lena@example.nl", "lead_magnet", "website:ebook-form", now - 2 * month, "f-lena"),
        *form_grant("uma@example.nl", "newsletter", "website:newsletter-form", now - 9 * month, "f-uma"),
        *form_grant("sam@example.nl", "newsletter", "website:newsletter-form", now - 9 * month, "f-sam"),
        *form_grant("eddy@example.nl", "newsletter", "website:newsletter-form", now - 9 * month, "f-eddy"),
    ]
    checkout = form_grant(
        "piet@example.nl", "newsletter", "shopify:checkout", now - month, "c-piet", confirm=False
    )
    # What the checkout showed comes from the catalog: its box was pre-ticked (R3).
    events += [
        e.model_copy(update={"source": "shopify", "method": "checkout", "evidence": Evidence()})
        for e in checkout
    ]
    events.append(
        ConsentEventIn(email="sam@example.nl", source="postmaster", source_event_id="fbl-1", action="complaint",
                       occurred_at=now - timedelta(days=2), method="feedback_loop")
    )  # fmt: skip
    for n in range(people):
        if rng.random() < 0.6:
            at = now - timedelta(days=rng.randint(5, 300))
            events += form_grant(
                f"customer{n:03d}@example.nl", "newsletter", "website:newsletter-form", at, f"f-{n}"
            )
    purchases = [
        PurchaseIn(email="kees@example.nl", source="shopify", source_event_id="order-1001", occurred_at=now - month,
                   paid=True, order_id="1001", categories=["shoes"])
    ]  # fmt: skip
    engine = db.make_engine(settings.database_url)
    try:
        db.upgrade(engine)
        with engine.begin() as conn:
            append_events(conn, events, policy=policy, secret=secret, now=now)
            append_purchases(conn, purchases, secret=secret, now=now)
            erase(conn, "eddy@example.nl", secret=secret, now=now, reason="Art. 17 request by e-mail")
    finally:
        engine.dispose()


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
