"""HTTP calls to the Shopify Admin GraphQL API, and the one place its errors are mapped.

Shopify answers GraphQL requests with HTTP 200 even when they fail: a throttled request carries a top-level
error with ``extensions.code == "THROTTLED"`` and the bucket's ``throttleStatus``; per-mutation problems come
back as ``userErrors`` inside ``data``. Bad credentials are a 401 with ``{"errors": "..."}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors.errors import ConnectorError, RateLimitedError, RejectedError, TransientError
from connectors.http import Sleep, VendorHTTP
from connectors.shopify.mapping import SYSTEM

GRAPHQL_PATH = "graphql.json"  # relative to {base}/admin/api/{version}
MARGIN_POINTS = 1.0


def _errors_text(errors: Any) -> str:
    if isinstance(errors, str):
        return errors
    if isinstance(errors, Mapping):
        return "; ".join(f"{key}: {value}" for key, value in errors.items())
    if isinstance(errors, list):
        return "; ".join(str(e.get("message", e)) if isinstance(e, Mapping) else str(e) for e in errors)
    return ""


def describe(response: httpx.Response) -> str:
    """The vendor's own reason from a Shopify error body (``{"errors": str | dict | list}``)."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    text = _errors_text(body.get("errors")) if isinstance(body, Mapping) else ""
    return text or f"HTTP {response.status_code}"


def _is_throttled(body: Any) -> bool:
    errors = body.get("errors") if isinstance(body, Mapping) else None
    return isinstance(errors, list) and any(
        isinstance(e, Mapping) and (e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors
    )


class ShopifyHTTP(VendorHTTP):
    """VendorHTTP that also treats a 200 carrying THROTTLED as a rate limit for the shared retry policy,
    and that has every attempt, retries included, reserve its query cost from the shared pacer first
    (``cost=`` on ``request``). The pacer alone waits for the bucket: the throttled answer's
    ``throttleStatus`` updates it, and the retry's reservation waits exactly as long as the bucket
    needs, counting what concurrent requests reserved (the policy's own back-off would wait again)."""

    def __init__(self, *args: Any, pacer: Pacer, concurrency: int = 10, **kwargs: Any) -> None:
        super().__init__(*args, concurrency=concurrency, **kwargs)
        self.pacer = pacer
        # Only a request about to be sent reserves its cost, not one still queued for a connection.
        self.slots = asyncio.Semaphore(concurrency)

    async def _send_once(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        cost = float(kwargs.pop("cost", 0.0))
        async with self.slots:
            await self.pacer.reserve(cost)
            try:
                return await super()._send_once(method, url, **kwargs)
            except BaseException:
                self.pacer.release(cost)
                raise

    def raise_for(self, response: httpx.Response) -> ConnectorError | None:
        failure = super().raise_for(response)
        if failure is not None or response.status_code != 200:
            return failure
        if not response.content.lstrip().startswith(b"{"):
            # A proxy's HTML page is no GraphQL answer: try again.
            return TransientError(SYSTEM, f"answer is not a JSON object: {response.text[:200]}", status=200)
        if b"THROTTLED" not in response.content:
            return None  # only a body naming THROTTLED is worth parsing here as well
        try:
            body = response.json()
        except ValueError:
            return TransientError(SYSTEM, f"answer is not JSON: {response.text[:200]}", status=200)
        if _is_throttled(body):
            # The bucket's state now; this attempt's reservation is given back as it fails. Retry at once:
            # the retry's reservation waits for the bucket, or the error if the shop reported no state.
            known = self.pacer.observe(body)
            return RateLimitedError(SYSTEM, "Throttled", retry_after=0.0 if known else None, status=200)
        return None


@dataclass
class Pacer:
    """Our estimate of the shop's cost bucket, shared by every request of one client.

    Concurrent requests race for the same bucket, so each attempt reserves its cost before it is sent:
    ``available`` is what the shop last reported, restored since at its rate, minus what requests still in
    flight have reserved. When the bucket is too low the reservation waits, holding the lock, so requests
    queue up one by one instead of all being throttled and spending their retries.
    """

    sleep: Sleep
    ticker: Callable[[], float] = time.monotonic
    available: float | None = None
    maximum: float = 0.0
    restore_rate: float = 0.0
    seen_at: float = 0.0
    pending: float = 0.0  # cost reserved by requests whose answer has not come back
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def reserve(self, cost: float) -> None:
        """Wait until the bucket should hold ``cost`` on top of every earlier reservation, then take it."""
        async with self._lock:
            others, self.pending = self.pending, self.pending + cost
            if self.available is None or self.restore_rate <= 0:
                return  # nothing known yet: the first answer tells the bucket's size and rate
            now = self.ticker()
            # The shop's bucket fills up to its maximum; what others reserved is not ours to take.
            # seen_at lies ahead of now after a reservation that waited: the bucket is in debt until then.
            restored = self.available + (now - self.seen_at) * self.restore_rate
            expected = min(self.maximum - others, restored)
            # One point more than the estimate: the shop rounds its figures, and a request sent a hair early
            # is throttled and has to wait again.
            short = cost - expected
            wait = (short + MARGIN_POINTS) / self.restore_rate if short > 0 else 0.0
            if wait > 0:
                await self.sleep(wait)
            # Counted from the moment of asking, so the estimate holds whether or not the clock moved.
            self.available = expected + wait * self.restore_rate - cost
            self.seen_at = now + wait

    def release(self, cost: float) -> None:
        """The request was not charged (throttled, refused or failed): give its reservation back."""
        self.pending = max(0.0, self.pending - cost)
        if self.available is not None:
            self.available += cost

    def charged(self, cost: float, body: Mapping[str, Any]) -> None:
        """The request was answered and charged: the shop's own figure replaces our estimate."""
        self.pending = max(0.0, self.pending - cost)
        self.observe(body)

    def observe(self, body: Mapping[str, Any]) -> bool:
        """Take the bucket's state from ``extensions.cost.throttleStatus``; False when the body has none."""
        status = ((body.get("extensions") or {}).get("cost") or {}).get("throttleStatus") or {}
        try:
            available = float(status["currentlyAvailable"])
            self.maximum = float(status["maximumAvailable"])
            self.restore_rate = float(status["restoreRate"])
        except (KeyError, TypeError, ValueError):
            return False
        # Requests still in flight have not been charged in this figure yet.
        self.available = available - self.pending
        self.seen_at = self.ticker()
        return True


@dataclass(frozen=True)
class GraphQLResult:
    data: Mapping[str, Any]
    errors: list[Mapping[str, Any]] = field(default_factory=list)

    def error_for(self, alias: str) -> str | None:
        """The field errors whose path starts at ``alias`` (e.g. an invalid id in one aliased mutation)."""
        messages = [str(e.get("message")) for e in self.errors if (e.get("path") or [None])[0] == alias]
        return "; ".join(messages) or None


class ShopifyClient:
    def __init__(self, http: ShopifyHTTP) -> None:
        self.http = http
        self.pacer = http.pacer

    async def execute(self, document: str, variables: Mapping[str, Any], cost: float) -> GraphQLResult:
        """Run one document; raise RejectedError when Shopify answered with errors and no data at all."""
        response = await self.http.request(
            "POST", GRAPHQL_PATH, json={"query": document, "variables": dict(variables)}, cost=cost
        )
        try:
            body = response.json()
        except ValueError as error:
            self.pacer.charged(cost, {})
            raise TransientError(SYSTEM, f"answer is not JSON: {response.text[:200]}", status=200) from error
        self.pacer.charged(cost, body if isinstance(body, Mapping) else {})
        errors = [e for e in body.get("errors") or [] if isinstance(e, Mapping)]
        if body.get("data") is None:
            raise RejectedError(SYSTEM, _errors_text(body.get("errors")) or "no data in answer", status=200)
        return GraphQLResult(body["data"], errors)

    async def aclose(self) -> None:
        await self.http.aclose()
