"""HTTP calls to the Shopify Admin GraphQL API, and the one place its errors are mapped.

Shopify answers GraphQL requests with HTTP 200 even when they fail: a throttled request carries a top-level
error with ``extensions.code == "THROTTLED"`` and the bucket's ``throttleStatus``; per-mutation problems come
back as ``userErrors`` inside ``data``. Bad credentials are a 401 with ``{"errors": "..."}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors.errors import ConnectorError, RateLimitedError, RejectedError, TransientError
from connectors.http import Sleep, VendorHTTP
from connectors.shopify.mapping import SYSTEM

GRAPHQL_PATH = "graphql.json"  # relative to {base}/admin/api/{version}


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


def _throttle_wait(body: Mapping[str, Any]) -> float | None:
    """Seconds until the bucket holds the requested cost, from ``extensions.cost`` of a THROTTLED answer."""
    cost = (body.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    try:
        needed = float(cost["requestedQueryCost"]) - float(status["currentlyAvailable"])
        return max(0.0, needed / float(status["restoreRate"]))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def _is_throttled(body: Any) -> bool:
    errors = body.get("errors") if isinstance(body, Mapping) else None
    return isinstance(errors, list) and any(
        isinstance(e, Mapping) and (e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors
    )


class ShopifyHTTP(VendorHTTP):
    """VendorHTTP that also treats a 200 carrying THROTTLED as a rate limit, so the shared policy retries
    it after the wait the bucket's own numbers give."""

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
            return RateLimitedError(SYSTEM, "Throttled", retry_after=_throttle_wait(body), status=200)
        return None


@dataclass
class Pacer:
    """Our estimate of the shop's cost bucket, from the last ``throttleStatus``: a request waits until the
    bucket should hold its cost instead of asking and being throttled."""

    sleep: Sleep
    ticker: Callable[[], float] = time.monotonic
    available: float | None = None
    maximum: float = 0.0
    restore_rate: float = 0.0
    seen_at: float = 0.0

    def observe(self, body: Mapping[str, Any]) -> None:
        status = ((body.get("extensions") or {}).get("cost") or {}).get("throttleStatus") or {}
        try:
            self.available = float(status["currentlyAvailable"])
            self.maximum = float(status["maximumAvailable"])
            self.restore_rate = float(status["restoreRate"])
        except (KeyError, TypeError, ValueError):
            return
        self.seen_at = self.ticker()

    async def wait_for(self, cost: float) -> None:
        if self.available is None or self.restore_rate <= 0:
            return
        elapsed = self.ticker() - self.seen_at
        expected = min(self.maximum, self.available + elapsed * self.restore_rate)
        if expected < cost:
            await self.sleep((cost - expected) / self.restore_rate)


@dataclass(frozen=True)
class GraphQLResult:
    data: Mapping[str, Any]
    errors: list[Mapping[str, Any]] = field(default_factory=list)

    def error_for(self, alias: str) -> str | None:
        """The field errors whose path starts at ``alias`` (e.g. an invalid id in one aliased mutation)."""
        messages = [str(e.get("message")) for e in self.errors if (e.get("path") or [None])[0] == alias]
        return "; ".join(messages) or None


class ShopifyClient:
    def __init__(self, http: VendorHTTP, pacer: Pacer) -> None:
        self.http = http
        self.pacer = pacer

    async def execute(self, document: str, variables: Mapping[str, Any], cost: float) -> GraphQLResult:
        """Run one document; raise RejectedError when Shopify answered with errors and no data at all."""
        await self.pacer.wait_for(cost)
        response = await self.http.request(
            "POST", GRAPHQL_PATH, json={"query": document, "variables": dict(variables)}
        )
        try:
            body = response.json()
        except ValueError as error:
            raise TransientError(SYSTEM, f"answer is not JSON: {response.text[:200]}", status=200) from error
        self.pacer.observe(body)
        errors = [e for e in body.get("errors") or [] if isinstance(e, Mapping)]
        if body.get("data") is None:
            raise RejectedError(SYSTEM, _errors_text(body.get("errors")) or "no data in answer", status=200)
        return GraphQLResult(body["data"], errors)

    async def aclose(self) -> None:
        await self.http.aclose()
