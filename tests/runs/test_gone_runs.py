"""A contact deleted in a vendor: pushes to it end as "gone" (done, not stuck), that system's snapshot row
goes, and the person is no longer planned there. Other errors (5xx, validation) still fail or are refused.

Mailchimp, HubSpot and Shopify are their sandboxes in process; the person opts out in a fourth system (a
fake).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select

from config.hubspot import HubSpotSettings
from config.mailchimp import MailchimpSettings
from config.shopify import ShopifySettings
from connectors.base import Connector, Status
from connectors.http import RetryPolicy
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.mailchimp.connector import MailchimpConnector
from connectors.mailchimp.sandbox import MailchimpSandbox
from connectors.sandbox import Clock
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.mapping import CONSENT
from connectors.shopify.sandbox import ShopifySandbox
from sync_worker import runlog, snapshot
from sync_worker.outbox import ITEMS
from sync_worker.runner import Reconciliation, RunReport
from tests.runs.fakes import FakeLedger, FakeVendor

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
JAN = "jan@example.nl"
PURPOSES = ["newsletter"]
VENDORS = ("mailchimp", "hubspot", "shopify")


async def no_sleep(_: float) -> None:
    return None


class Shop:
    """Mailchimp, HubSpot and Shopify sandboxes, a fake fourth system, one ledger; the clock moves a minute
    per run."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.clock = Clock(START)
        self.mailchimp = MailchimpSandbox(self.clock, purposes={"newsletter": "status"})
        self.hubspot = HubSpotSandbox(self.clock, monotonic=lambda: 0.0)
        self.hubspot.ten_secondly.limit = self.hubspot.search_limit.limit = 100_000
        self.shopify = ShopifySandbox(clock=self.clock, purposes={"newsletter": CONSENT})
        # Shopify's requests all go to one GraphQL path: its documents tell reads from writes.
        self.shopify_documents: list[str] = []
        execute = self.shopify.execute

        def recorded(query: str, variables: Any = None, operation_name: str | None = None) -> dict[str, Any]:
            self.shopify_documents.append(query)
            return execute(query, variables, operation_name)

        self.shopify.execute = recorded  # type: ignore[method-assign]
        self.elsewhere = FakeVendor("klaviyo", PURPOSES)
        self.ledger = FakeLedger()

    def connectors(self) -> dict[str, Connector]:
        retry = RetryPolicy(max_attempts=2, max_total_wait=1e6, sleep=no_sleep, rng=random.Random(3))
        mailchimp = MailchimpSettings(
            api_key=SecretStr(self.mailchimp.api_key),
            list_id=self.mailchimp.audience.list_id,
            base_url="http://mailchimp.sandbox/3.0",
            purposes={"newsletter": "status"},
        )
        hubspot = HubSpotSettings(
            access_token=SecretStr(self.hubspot.token),
            base_url="http://hubspot.sandbox",
            subscriptions={"newsletter": str(self.hubspot.purposes["newsletter"])},
            requests_per_10s=100_000,
            searches_per_second=100_000,
        )
        shopify = ShopifySettings(
            shop=self.shopify.shop,
            access_token=SecretStr(self.shopify.token),
            base_url=f"http://shopify.sandbox/admin/api/{self.shopify.api_version}",
            purposes={"newsletter": CONSENT},
        )
        return {
            "mailchimp": MailchimpConnector.from_settings(
                mailchimp,
                transport=httpx.ASGITransport(app=self.mailchimp.app),
                retry=retry,
                clock=self.clock,
            ),
            "hubspot": HubSpotConnector.from_settings(
                hubspot, transport=httpx.ASGITransport(app=self.hubspot.app), retry=retry, clock=self.clock
            ),
            "shopify": ShopifyConnector.from_settings(
                shopify, transport=httpx.ASGITransport(app=self.shopify.app), retry=retry, clock=self.clock
            ),
            "klaviyo": self.elsewhere.connector(),
        }

    async def run(self) -> RunReport:
        self.clock.advance(60)  # vendor-side changes after a run are stamped later than its pushes
        connectors = self.connectors()
        report = await Reconciliation(
            engine=self.engine,
            connectors=connectors,
            ledger=self.ledger,
            purposes=PURPOSES,
            secret=b"test-secret",
            clock=self.clock.now,
        ).run(trigger="manual")
        for connector in connectors.values():
            await connector.aclose()
        self.clock.advance(60)
        return report

    def box(self, name: str) -> Any:
        return {"mailchimp": self.mailchimp, "hubspot": self.hubspot, "shopify": self.shopify}[name]

    def systems_holding(self, email: str) -> set[str]:
        with self.engine.begin() as conn:
            return set(snapshot.load_seen(conn, [email]).get(email, {}))

    def items(self, system: str) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            rows = conn.execute(select(ITEMS).where(ITEMS.c.system == system)).mappings()
            return [dict(row) for row in rows]


@pytest.fixture
async def shop(engine: Engine) -> Shop:
    built = Shop(engine)
    built.ledger.grant(JAN, "newsletter")
    built.mailchimp.add_contact(JAN, {"newsletter": Status.SUBSCRIBED})
    built.hubspot.add_contact(JAN, {"newsletter": Status.SUBSCRIBED})
    built.shopify.add_contact(JAN, {"newsletter": Status.SUBSCRIBED})
    built.elsewhere.add(JAN, Status.SUBSCRIBED)
    first = await built.run()
    assert first.status == "success", first.summary()
    assert built.systems_holding(JAN) == {*VENDORS, "klaviyo"}
    return built


def delete_in(shop: Shop, where: str) -> None:
    if where == "mailchimp":
        shop.mailchimp.delete_contact(JAN, permanently=True)
    elif where == "hubspot":
        shop.hubspot.delete_contact(JAN)
    else:
        shop.shopify.delete_customer(JAN)


@pytest.mark.parametrize("where", VENDORS)
async def test_an_opt_out_to_a_contact_deleted_in_the_vendor_ends_as_gone(shop: Shop, where: str) -> None:
    others = [name for name in VENDORS if name != where]
    delete_in(shop, where)
    shop.elsewhere.set_status(JAN, "newsletter", Status.UNSUBSCRIBED)

    report = await shop.run()

    assert report.status == "success", report.summary()
    assert report.counts[where].gone == 1
    assert report.counts[where].failed == 0
    [item] = [i for i in shop.items(where) if i["action"] == "unsubscribe"]
    assert (item["state"], item["verified"]) == ("done", "gone")
    assert shop.systems_holding(JAN) == {*others, "klaviyo"}
    for other in others:  # the others are told as usual
        assert shop.box(other).status(JAN, "newsletter") == Status.UNSUBSCRIBED
    with shop.engine.begin() as conn:
        [logged] = [c for c in runlog.changes(conn, report.run_id) if c["system"] == where]
    assert logged["push_result"].startswith("gone: the system no longer holds this person")
    # The vendor's words name the address; the log keeps people masked (and outlives an erasure, R21).
    assert JAN not in logged["push_result"]

    sent, documents = len(shop.box(where).requests), len(shop.shopify_documents)
    after = await shop.run()
    assert after.status == "success", after.summary()
    assert after.counts[where].planned == 0
    assert [i for i in shop.items(where) if i["action"] == "unsubscribe"] == [item]
    # Nothing pushed there again: the next run only reads (one listing or search, with their reads).
    if where == "shopify":
        assert not [d for d in shop.shopify_documents[documents:] if d.lstrip().startswith("mutation")]
    else:
        pushes = [r for r in shop.box(where).requests[sent:] if r[0] in ("POST", "PUT", "PATCH")]
        assert all("/search" in path or "/batch/read" in path for _method, path in pushes), pushes


async def test_a_server_error_for_a_deleted_contact_is_retried_not_gone(shop: Shop) -> None:
    shop.mailchimp.delete_contact(JAN, permanently=True)
    shop.elsewhere.set_status(JAN, "newsletter", Status.UNSUBSCRIBED)
    shop.mailchimp.faults.rate_5xx = 1.0

    report = await shop.run()

    assert report.status == "partial"
    assert report.counts["mailchimp"].gone == 0
    [item] = [i for i in shop.items("mailchimp") if i["action"] == "unsubscribe"]
    assert (item["state"], item["verified"]) == ("failed", None)
    assert "mailchimp" in shop.systems_holding(JAN)


async def test_an_opt_out_to_an_address_hubspot_blocked_after_a_gdpr_delete_ends_as_gone(shop: Shop) -> None:
    """HubSpot refuses a status for an address a GDPR delete blocked (VALIDATION_ERROR) and holds nobody
    there: the opt-out is met (R25), not stuck, and no run is partial for it."""
    shop.hubspot.state.erase(JAN, "email")
    shop.elsewhere.set_status(JAN, "newsletter", Status.UNSUBSCRIBED)

    report = await shop.run()

    assert report.status == "success", report.summary()
    assert report.counts["hubspot"].gone == 1
    [item] = [i for i in shop.items("hubspot") if i["action"] == "unsubscribe"]
    assert (item["state"], item["verified"]) == ("done", "gone")
    assert item["last_error"].startswith("the address is blocked in HubSpot (VALIDATION_ERROR")
    assert "hubspot" not in shop.systems_holding(JAN)
    after = await shop.run()
    assert after.status == "success", after.summary()
    assert after.counts["hubspot"].planned == 0
