"""The Shopify connector's pacing against the in-process sandbox and its default cost bucket (2000 points,
restoring 100 a second): a few hundred pushes, four requests at a time, all complete in one push call.

Time is virtual: the bucket and the pacer read one clock, and the injected sleep moves it on instead of
sleeping."""

from __future__ import annotations

import asyncio

import httpx

from config.shopify import ShopifySettings
from connectors.base import Action, Basis, Change, Outcome, Status
from connectors.http import RetryPolicy
from connectors.shopify.client import Pacer
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.sandbox import ShopifySandbox
from connectors.shopify.sandbox_data import CostBucket


class VirtualTime:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def _connector(sandbox: ShopifySandbox, time: VirtualTime) -> ShopifyConnector:
    settings = ShopifySettings(
        shop=sandbox.shop,
        access_token=sandbox.token,
        base_url=f"http://shopify.sandbox/admin/api/{sandbox.api_version}",
        purposes=sandbox.purposes,
    )
    connector = ShopifyConnector.from_settings(
        settings,
        transport=httpx.ASGITransport(app=sandbox.app),
        retry=RetryPolicy(sleep=time.sleep),  # the default bounds: 6 attempts, 120 s of waiting
    )
    connector.client.pacer.ticker = time
    return connector


async def test_250_consent_changes_are_all_accepted_in_one_push_without_being_throttled() -> None:
    time = VirtualTime()
    default = CostBucket()
    sandbox = ShopifySandbox(bucket=CostBucket(default.maximum, default.restore_rate, ticker=time))
    changes = []
    for n in range(250):
        email = f"person{n}@example.nl"
        gid = sandbox.add_contact(email, {"newsletter": Status.SUBSCRIBED})
        # Half are known by id, half only by e-mail address, as after a first sync.
        changes.append(
            Change(
                f"k{n}",
                "shopify",
                email,
                Action.UNSUBSCRIBE,
                "newsletter",
                gid if n % 2 else None,
                Basis.NONE,
            )
        )
    connector = _connector(sandbox, time)
    try:
        results = await connector.push(changes)
    finally:
        await connector.aclose()
    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 250, {r.reason for r in results}
    assert all(
        sandbox.status(f"person{n}@example.nl", "newsletter") == Status.UNSUBSCRIBED for n in range(250)
    )
    counters = connector.client.http.counters
    assert (counters.rate_limited, counters.requests) == (0, 20)  # 10 lookups + 10 mutations, none throttled
    assert sum(time.waits) > 0  # more than one bucket's worth of cost: the pacer had to wait for it


async def test_concurrent_requests_reserve_their_cost_so_the_second_waits_for_restore() -> None:
    time = VirtualTime()
    pacer = Pacer(sleep=time.sleep, ticker=time)
    status = {"maximumAvailable": 2000.0, "currentlyAvailable": 400.0, "restoreRate": 100.0}
    pacer.observe({"extensions": {"cost": {"throttleStatus": status}}})
    await asyncio.gather(pacer.reserve(300), pacer.reserve(300))
    # 400 held: the first takes 300; the second waits for the missing 200 points at 100 a second.
    assert time.waits == [2.0]
    assert pacer.pending == 600
