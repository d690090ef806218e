"""The Shopify connector's pacing against the in-process sandbox and its default cost bucket (2000 points,
restoring 100 a second): a few hundred pushes, four requests at a time, all complete in one push call.

Time is virtual: the bucket and the pacer read one clock, which moves on to the next waiter's deadline
whenever nothing else can run (connectors.virtual_time)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from config.shopify import ShopifySettings
from connectors.base import Action, Basis, Change, Outcome, Status
from connectors.http import RetryPolicy
from connectors.shopify.client import MARGIN_POINTS, Pacer
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.sandbox import ShopifySandbox
from connectors.shopify.sandbox_data import CostBucket
from connectors.virtual_time import VirtualClock


class VirtualTime(VirtualClock):
    """The virtual clock, also keeping the list of waits asked for."""

    def __init__(self) -> None:
        super().__init__(start=1000.0)
        self.waits: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        await super().sleep(seconds)


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
    # Four batches of at most 76 (one query's cost): a lookup and a mutation each, none throttled.
    assert (counters.rate_limited, counters.requests) == (0, 8)
    assert sum(time.waits) > 0  # more than one bucket's worth of cost: the pacer had to wait for it


async def test_concurrent_requests_reserve_their_cost_so_the_second_waits_for_restore() -> None:
    time = VirtualTime()
    pacer = Pacer(sleep=time.sleep, ticker=time)
    status = {"maximumAvailable": 2000.0, "currentlyAvailable": 400.0, "restoreRate": 100.0}
    pacer.observe({"extensions": {"cost": {"throttleStatus": status}}})
    await asyncio.gather(pacer.reserve(300), pacer.reserve(300))
    # 400 held: the first takes 300; the second waits for the missing 200 points (and the one-point
    # margin) at 100 a second.
    assert time.waits == [pytest.approx((200 + MARGIN_POINTS) / 100)]
    assert pacer.pending == 600
