"""End to end over real HTTP: the Shopify sandbox served on 127.0.0.1 next to an in-memory second system,
reconciled into the real SQL ledger. Opt-outs cross in one run, echoes are no evidence, runs converge."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import structlog
from sqlalchemy import Engine

from config import Settings
from connectors.base import Status
from connectors.sandbox import served
from sync_worker import db
from sync_worker.demo import settings_for
from sync_worker.ledger.ingest import append_events
from sync_worker.ledger.records import ConsentEventIn
from sync_worker.policy import Evidence
from sync_worker.rulebook import policy_from_settings, secret_of
from sync_worker.runner import Reconciliation, RunReport
from sync_worker.sql_ledger import SqlLedger
from tests.contract.vendors import VENDORS
from tests.runs.fakes import FakeVendor, ledger_actions

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        "shopify" not in VENDORS, reason="the Shopify sandbox needs Shopify's published schema"
    ),
]
JAN = "jan@example.nl"


class Stage:
    def __init__(self, shop: object, settings: Settings, engine: Engine) -> None:
        self.shop = shop
        self.settings = settings
        self.engine = engine
        self.other = FakeVendor("klaviyo", ["newsletter"])
        self.other.clock = datetime.now(UTC) - timedelta(minutes=30)  # its acts come after Jan's signup

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def run(self, **kw: object) -> RunReport:
        from connectors.shopify.connector import ShopifyConnector

        shopify = ShopifyConnector.from_settings(self.settings)
        ledger = SqlLedger(policy_from_settings(self.settings), secret_of(self.settings), self.now)
        try:
            reconciliation = Reconciliation(
                self.engine,
                {"shopify": shopify, "klaviyo": self.other.connector()},
                ledger,
                ("newsletter",),
                b"e2e",
                self.now,
            )
            return await reconciliation.run(trigger="manual", **kw)  # type: ignore[arg-type]
        finally:
            await shopify.aclose()

    def actions(self) -> list[tuple[str, str]]:
        return ledger_actions(self.engine, JAN)


@pytest.fixture
def stage(tmp_path: object) -> Iterator[Stage]:
    from connectors.shopify.sandbox import ShopifySandbox
    from connectors.shopify.sandbox_data import CostBucket

    structlog.reset_defaults()
    shop = ShopifySandbox(bucket=CostBucket(maximum=1e9, restore_rate=1e9))
    # The shop's clock runs an hour behind and moves only when told: each change gets its own second.
    shop.clock.set(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
    url = f"sqlite:///{tmp_path}/e2e.db"
    with served(shop.app) as base_url:
        settings = settings_for(shop.settings_env(base_url), url)
        engine = db.make_engine(url)
        db.upgrade(engine)
        # Jan's newsletter consent from our own double opt-in form.
        at = datetime.now(UTC) - timedelta(days=30)
        grant = ConsentEventIn(
            email=JAN, source="website", source_event_id="f-1", purpose="newsletter", action="grant",
            occurred_at=at, method="web_form", collection_point="website:newsletter-form",
            evidence=Evidence(checkbox_prechecked=False, was_required=False),
        )  # fmt: skip
        confirm = grant.model_copy(
            update={"action": "confirm", "source_event_id": "f-1:c", "occurred_at": at}
        )
        with engine.begin() as conn:
            append_events(
                conn, [grant, confirm], policy=policy_from_settings(settings), secret=secret_of(settings),
                now=datetime.now(UTC),
            )  # fmt: skip
        shop.add_contact(JAN, {"newsletter": Status.SUBSCRIBED})
        stage = Stage(shop, settings, engine)
        stage.other.add(JAN, Status.SUBSCRIBED)
        yield stage
        engine.dispose()


async def test_unsubscribe_in_shopify_reaches_the_other_system_in_one_run(stage: Stage) -> None:
    first = await stage.run()
    assert first.status == "success", first.summary()
    assert stage.shop.status(JAN, "newsletter") == Status.SUBSCRIBED  # type: ignore[attr-defined]
    stage.shop.clock.advance(60)  # type: ignore[attr-defined]
    stage.shop.set_status(JAN, "newsletter", Status.UNSUBSCRIBED)  # type: ignore[attr-defined]
    await stage.run()
    assert stage.other.status(JAN, "newsletter") == Status.UNSUBSCRIBED
    assert stage.actions().count(("shopify", "withdraw")) == 1


async def test_unsubscribe_elsewhere_is_pushed_to_shopify_and_its_echo_is_no_evidence(stage: Stage) -> None:
    await stage.run()
    stage.other.set_status(JAN, "newsletter", Status.UNSUBSCRIBED)
    stage.shop.clock.advance(60)  # type: ignore[attr-defined]
    pushed = await stage.run()
    assert pushed.counts["shopify"].pushed == 1
    assert stage.shop.status(JAN, "newsletter") == Status.UNSUBSCRIBED  # type: ignore[attr-defined]
    events = stage.actions()
    echo = await stage.run()
    assert echo.counts["shopify"].echoes == 1
    assert stage.actions() == events  # no withdrawal "by Jan in Shopify": that was us
    quiet = await stage.run()
    assert quiet.planned == 0
    assert sum(c.pushed for c in quiet.counts.values()) == 0


async def test_dry_run_changes_nothing_remotely(stage: Stage) -> None:
    await stage.run()
    stage.other.set_status(JAN, "newsletter", Status.UNSUBSCRIBED)
    dry = await stage.run(dry_run=True)
    assert dry.planned == 1
    assert stage.shop.status(JAN, "newsletter") == Status.SUBSCRIBED  # type: ignore[attr-defined]
