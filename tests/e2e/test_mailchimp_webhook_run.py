"""A Mailchimp unsubscribe webhook's targeted run against the in-process Mailchimp sandbox over real HTTP,
for a person listed for re-permission (R8) whose tag push has not been read back yet: the run leaves Mailchimp
converged, and a person whose withdrawal ends the quarantine untagged."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import structlog

from config import Settings
from connectors.base import Status
from connectors.mailchimp.sandbox import MailchimpSandbox
from connectors.webhook_sender import Build, Subscription
from sync_worker import db
from sync_worker.demo import grant_newsletter, serve_all, settings_for
from sync_worker.ledger.ingest import append_events
from sync_worker.ledger.records import ConsentEventIn
from sync_worker.plan import REPERMISSION_TAG
from sync_worker.rulebook import policy_from_settings, secret_of
from sync_worker.runner import RunReport, run_once
from sync_worker.trigger import WebhookFact
from sync_worker.web.webhooks.delivery import Delivery
from sync_worker.web.webhooks.mailchimp import parse_mailchimp

pytestmark = pytest.mark.slow
JAN = "jan@example.nl"
HOOK_SECRET = "mailchimp-hook-secret"


class World:
    def __init__(self, box: MailchimpSandbox, settings: Settings) -> None:
        self.box = box
        self.settings = settings
        self.hooks: list[WebhookFact] = []
        box.webhooks.fire = self._deliver  # type: ignore[method-assign]

    def _deliver(self, _topic: str, build: Build) -> int:
        """What the worker's endpoint makes of the delivery: the Mailchimp parser's facts."""
        hook = build(Subscription("http://worker", HOOK_SECRET))
        url = urlsplit(hook.url)
        delivery = Delivery(hook.method, hook.url, {}, hook.body or b"", dict(parse_qsl(url.query)))
        self.hooks.extend(parse_mailchimp(delivery).facts)
        return 1

    def run(self, **kw: Any) -> RunReport:
        report = run_once(self.settings, **kw)
        self.box.clock.advance(60)  # the person's next act gets a later stamp than our pushes
        return report

    def webhook_run(self) -> RunReport:
        facts, self.hooks = tuple(self.hooks), []
        assert facts, "the sandbox fired no webhook"
        return self.run(trigger="webhook", facts=facts)

    def tags(self) -> set[str]:
        member = self.box.audience.find(JAN)
        assert member is not None
        return {str(t["name"]) for t in member["tags"]}


def unproven_promotions_import(settings: Settings, at: datetime) -> None:
    """A CRM import says Jan wants promotions, with no time or evidence: unproven, so quarantined (R8, R31)."""
    engine = db.make_engine(settings.database_url)
    event = ConsentEventIn(
        email=JAN, source="crm-import", source_event_id="imp-1", purpose="promotions", action="grant",
        method="import",
    )  # fmt: skip
    with engine.begin() as conn:
        append_events(
            conn, [event], policy=policy_from_settings(settings), secret=secret_of(settings), now=at
        )
    engine.dispose()


@contextmanager
def mailchimp_world(tmp_path: Path, statuses: dict[str, Status], *, unproven_import: bool) -> Iterator[World]:
    structlog.reset_defaults()
    box = MailchimpSandbox()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    box.clock.set(start)
    box.add_contact(JAN, statuses)
    with serve_all([box]) as env:
        settings = settings_for(env, f"sqlite:///{tmp_path}/ledger.db")
        grant_newsletter(settings, [JAN], start)
        if unproven_import:
            unproven_promotions_import(settings, start)
        made = World(box, settings)
        first = made.run(trigger="manual")
        assert first.status == "success", first.summary()
        assert made.run(trigger="manual").planned == 0
        # Jan is listed for re-permission; Mailchimp has not shown the tag back to a pull yet (adding a tag
        # does not move the member's last_changed), so the tag push still awaits its echo.
        assert REPERMISSION_TAG in made.tags()
        yield made


def test_unsubscribe_webhook_run_untags_a_person_whose_withdrawal_ends_the_quarantine(tmp_path: Path) -> None:
    """Quarantined by an unproven import of promotions, which Mailchimp does not show: the audience
    unsubscribe withdraws promotions there too (R20), so Jan is no longer one to ask for re-permission."""
    with mailchimp_world(tmp_path, {"newsletter": Status.SUBSCRIBED}, unproven_import=True) as world:
        world.box.set_status(JAN, "newsletter", Status.UNSUBSCRIBED)
        hooked = world.webhook_run()
        assert hooked.status == "success", hooked.summary()
        assert world.box.status(JAN, "newsletter") == Status.UNSUBSCRIBED
        assert REPERMISSION_TAG not in world.tags()
        later = [world.run(trigger="manual") for _ in range(2)]
        assert [r.status for r in later] == ["success", "success"]
        assert later[-1].planned == 0
        assert REPERMISSION_TAG not in world.tags()


def test_unsubscribe_webhook_run_does_not_take_the_awaited_tag_for_a_missing_one(tmp_path: Path) -> None:
    """A webhook says nothing about tags: the tag push still awaiting its echo is not judged by it, so the
    run does not tag Jan a second time (``untagged -> tagged``) and Mailchimp stays converged."""
    statuses = {"newsletter": Status.SUBSCRIBED, "promotions": Status.SUBSCRIBED}
    with mailchimp_world(tmp_path, statuses, unproven_import=False) as world:
        assert world.box.status(JAN, "promotions") != Status.SUBSCRIBED  # closed (R27)
        world.box.set_status(JAN, "newsletter", Status.UNSUBSCRIBED)
        hooked = world.webhook_run()
        assert hooked.status == "success", hooked.summary()
        assert hooked.planned == 0, hooked.summary()
        assert world.box.status(JAN, "newsletter") == Status.UNSUBSCRIBED
        later = [world.run(trigger="manual") for _ in range(2)]
        assert later[-1].planned == 0
