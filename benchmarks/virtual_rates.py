"""Runs the sandboxes' rate limits and the connectors' pacing on one virtual clock (``--virtual-clock``).

What becomes virtual: the monotonic clocks of Shopify's cost bucket, HubSpot's rolling windows and
Klaviyo's rate windows in the sandboxes, and on the worker's side every connector's retry back-off,
request budget (Klaviyo, HubSpot) and Shopify's cost pacer. They all read ``VirtualClock`` and wait on it,
so every vendor limit is kept exactly as in real time (a request early by the clock is refused and waited
for as over the network), but the time nobody works is skipped instead of slept; ``skipped`` says how much.
What stays real: the sandboxes' dates (``last_changed``, ``updatedAt``), the ledger's timestamps, and all
CPU work. The runner is unchanged: the connectors it builds are rewired as they are built.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from connectors.http import RateBudget, VendorHTTP
from connectors.registry import connector_class
from connectors.sandbox import Sandbox
from connectors.shopify.client import Pacer
from connectors.virtual_time import VirtualClock
from sync_worker import runner


def virtualise_sandboxes(boxes: list[Sandbox], clock: VirtualClock) -> None:
    for box in boxes:
        bucket = getattr(box, "bucket", None)  # Shopify's cost bucket
        if bucket is not None:
            bucket.ticker = clock
            bucket._at = clock()
        for window in (getattr(box, "ten_secondly", None), getattr(box, "search_limit", None)):  # HubSpot
            if window is not None:
                window.monotonic = clock
        limits = getattr(box, "limits", None)  # Klaviyo's rate windows
        if limits is not None and hasattr(limits, "ticks"):
            limits.ticks = clock


def _parts(holder: object, depth: int = 0) -> Iterator[object]:
    """The objects a connector holds, a few levels down (client, its VendorHTTPs, budgets, pacer)."""
    yield holder
    if depth >= 3 or not hasattr(holder, "__dict__"):
        return
    for value in vars(holder).values():
        if type(value).__module__.startswith(("connectors.", "benchmarks.")):
            yield from _parts(value, depth + 1)


def virtualise_connector(connector: object, clock: VirtualClock) -> None:
    for part in _parts(connector):
        if isinstance(part, VendorHTTP):
            part.retry = dataclasses.replace(part.retry, sleep=clock.sleep)
        if isinstance(part, RateBudget):
            part.clock, part.sleep = clock, clock.sleep
        if isinstance(part, Pacer):
            part.ticker, part.sleep = clock, clock.sleep


def virtualise_runner(clock: VirtualClock) -> None:
    """Every connector the runner builds from now on runs its pacing on ``clock``."""

    class Virtual:
        def __init__(self, real: Any) -> None:
            self.real = real

        def from_settings(self, *args: Any, **kwargs: Any) -> Any:
            connector = self.real.from_settings(*args, **kwargs)
            virtualise_connector(connector, clock)
            return connector

    runner.connector_class = lambda name: Virtual(connector_class(name))  # type: ignore[assignment]
