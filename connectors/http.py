"""The one HTTP client factory and retry policy every connector uses.

Retries: 429, 5xx, time-outs and dropped connections, with exponential backoff and jitter, honouring the
vendor's ``Retry-After``; bounded by attempts and by the total time spent waiting. The sleep function is
injectable so tests never sleep.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from connectors.errors import ConnectorError, RateLimitedError, TransientError, error_for_status
from sync_worker import __version__

USER_AGENT = f"sync-worker/{__version__} (+consent sync)"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=30.0, pool=60.0)

Sleep = Callable[[float], Awaitable[None]]
Describe = Callable[[httpx.Response], str]


def error_body(response: httpx.Response) -> dict[str, Any] | str:
    """A failed response's JSON object for a client's ``describe``, or ``HTTP <status>: <text>`` without one."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    return body if isinstance(body, dict) else f"HTTP {response.status_code}: {str(body)[:200]}"


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, float(parsedate_to_datetime(value).timestamp()) - time.time())
    except (TypeError, ValueError):
        return None


def date_of(response: httpx.Response) -> datetime | None:
    """The answer's ``Date`` header as an aware datetime, or None when it has none or a bad one."""
    value = response.headers.get("Date")
    if value is None:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    max_total_wait: float = 120.0  # seconds spent sleeping between attempts, at most
    initial_wait: float = 0.5
    max_wait: float = 30.0
    sleep: Sleep = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)

    def wait_for(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            return min(error.retry_after, self.max_wait)
        backoff = min(self.max_wait, self.initial_wait * 2.0 ** (state.attempt_number - 1))
        return backoff / 2 + self.rng.uniform(0, backoff / 2)  # "equal jitter"

    def should_stop(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self.max_attempts:
            return True
        return state.idle_for + self.wait_for(state) > self.max_total_wait

    def retrying(self, on_retry: Callable[[BaseException | None], None] | None = None) -> AsyncRetrying:
        def before_sleep(state: RetryCallState) -> None:
            if on_retry is not None:
                on_retry(state.outcome.exception() if state.outcome else None)

        return AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            stop=self.should_stop,
            wait=self.wait_for,
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )


class RateBudget:
    """Sliding-window request budget, e.g. ``[(75, 1.0), (750, 60.0)]`` for Klaviyo's burst and steady limits."""

    def __init__(
        self,
        windows: list[tuple[int, float]],
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.windows = [(limit, period, deque[float]()) for limit, period in windows]
        self.clock = clock
        self.sleep = sleep
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self.clock()
                wait = 0.0
                for limit, period, stamps in self.windows:
                    while stamps and stamps[0] <= now - period:
                        stamps.popleft()
                    if len(stamps) >= limit:
                        wait = max(wait, stamps[0] + period - now)
                if wait <= 0:
                    for _, _, stamps in self.windows:
                        stamps.append(now)
                    return
                await self.sleep(wait)


@dataclass
class Counters:
    """What the metrics endpoint reports per connector."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0


def make_client(
    base_url: str,
    *,
    headers: Mapping[str, str] | None = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
    max_connections: int = 10,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The one place an httpx.AsyncClient is made: explicit timeouts, User-Agent, bounded connections."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        auth=auth,
        timeout=timeout,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        transport=transport,
    )


class VendorHTTP:
    """A vendor's AsyncClient with its retry policy, concurrency bound, rate budget and error mapping."""

    def __init__(
        self,
        system: str,
        client: httpx.AsyncClient,
        describe: Describe,
        *,
        retry: RetryPolicy | None = None,
        concurrency: int = 10,
        budget: RateBudget | None = None,
    ) -> None:
        self.system = system
        self.client = client
        self.describe = describe
        self.retry = retry or RetryPolicy()
        self.semaphore = asyncio.Semaphore(concurrency)
        self.budget = budget
        self.counters = Counters()
        # The vendor's clock: the Date header of the latest answer. Read right after awaiting a request,
        # it is that request's own answer's (nothing else runs in between): a pull seals its watermark
        # with it (pagination.Watermark.sealed_by).
        self.vendor_date: datetime | None = None

    def _count_retry(self, error: BaseException | None) -> None:
        self.counters.retries += 1
        if isinstance(error, RateLimitedError):
            self.counters.rate_limited += 1

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send with retries; return a 2xx/3xx response or raise a ConnectorError."""
        async for attempt in self.retry.retrying(self._count_retry):
            with attempt:
                return await self._send_once(method, url, **kwargs)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _send_once(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if self.budget is not None:
            await self.budget.acquire()
        async with self.semaphore:
            self.counters.requests += 1
            try:
                response = await self.client.request(method, url, **kwargs)
            except httpx.TimeoutException as error:
                raise TransientError(self.system, f"time-out: {error!r}") from error
            except httpx.TransportError as error:
                raise TransientError(self.system, f"connection failed: {error!r}") from error
        self.vendor_date = date_of(response)
        failure = self.raise_for(response)
        if failure is not None:
            raise failure
        return response

    def raise_for(self, response: httpx.Response) -> ConnectorError | None:
        if response.status_code < 400:
            return None
        return error_for_status(
            self.system, response.status_code, self.describe(response), retry_after_seconds(response)
        )

    async def aclose(self) -> None:
        await self.client.aclose()


def counters_of(holder: object) -> Counters:
    """The summed counters of every ``VendorHTTP`` an API client holds (one per endpoint budget)."""
    total = Counters()
    for part in vars(holder).values():
        if isinstance(part, VendorHTTP):
            total.requests += part.counters.requests
            total.retries += part.counters.retries
            total.rate_limited += part.counters.rate_limited
    return total
