"""The shared HTTP client: retries, Retry-After, bounded attempts and waits, error mapping."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import respx

from connectors.errors import AuthError, NotFoundError, RateLimitedError, RejectedError, TransientError
from connectors.http import (
    RateBudget,
    RetryPolicy,
    VendorHTTP,
    counters_of,
    date_of,
    make_client,
    retry_after_seconds,
)

BASE = "https://vendor.test"


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _vendor(sleeps: Sleeps, **policy: float) -> VendorHTTP:
    retry = RetryPolicy(sleep=sleeps, **policy)  # type: ignore[arg-type]
    return VendorHTTP("vendor", make_client(BASE), lambda r: r.text, retry=retry)


async def test_429_then_200_waits_the_retry_after(respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/x").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"), httpx.Response(200)]
    )
    sleeps = Sleeps()
    http = _vendor(sleeps)
    response = await http.request("GET", "/x")
    assert response.status_code == 200
    assert sleeps.waits == [7.0]
    assert (http.counters.retries, http.counters.rate_limited, http.counters.requests) == (1, 1, 2)


async def test_counters_of_a_client_sum_every_endpoint_budget(respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/x").mock(side_effect=[httpx.Response(429), httpx.Response(200)])

    class Client:
        def __init__(self) -> None:
            self.profiles = _vendor(Sleeps())
            self.lists = _vendor(Sleeps())

    client = Client()
    await client.profiles.request("GET", "/x")
    assert (counters_of(client).retries, counters_of(client).rate_limited) == (1, 1)


async def test_401_is_not_retried(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(f"{BASE}/x").mock(return_value=httpx.Response(401, text="API Key Invalid"))
    sleeps = Sleeps()
    with pytest.raises(AuthError, match="API Key Invalid"):
        await _vendor(sleeps).request("GET", "/x")
    assert route.call_count == 1
    assert sleeps.waits == []


async def test_5xx_is_retried_until_attempts_are_exhausted(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(f"{BASE}/x").mock(return_value=httpx.Response(503, text="down"))
    sleeps = Sleeps()
    with pytest.raises(TransientError, match="down"):
        await _vendor(sleeps, max_attempts=4).request("GET", "/x")
    assert route.call_count == 4
    assert len(sleeps.waits) == 3
    # exponential backoff with equal jitter: each wait lies in [b/2, b] for b = 0.5, 1, 2
    for wait, backoff in zip(sleeps.waits, (0.5, 1.0, 2.0), strict=True):
        assert backoff / 2 <= wait <= backoff


async def test_total_wait_is_bounded(respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/x").mock(return_value=httpx.Response(429, headers={"Retry-After": "20"}))
    sleeps = Sleeps()
    with pytest.raises(RateLimitedError):
        await _vendor(sleeps, max_total_wait=45.0, max_attempts=10).request("GET", "/x")
    assert sleeps.waits == [20.0, 20.0]  # a third wait would pass 45 s


async def test_connection_errors_and_timeouts_are_transient(respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/x").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.Response(200, json={})]
    )
    assert (await _vendor(Sleeps()).request("GET", "/x")).status_code == 200


async def test_client_errors_map_onto_the_error_tree(respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/missing").mock(return_value=httpx.Response(404, text="no such list"))
    respx_mock.post(f"{BASE}/bad").mock(return_value=httpx.Response(400, text="invalid email"))
    http = _vendor(Sleeps())
    with pytest.raises(NotFoundError):
        await http.request("GET", "/missing")
    with pytest.raises(RejectedError, match="invalid email") as caught:
        await http.request("POST", "/bad")
    assert caught.value.status == 400


async def test_client_sends_user_agent(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(f"{BASE}/x").mock(return_value=httpx.Response(200))
    await _vendor(Sleeps()).request("GET", "/x")
    assert route.calls[0].request.headers["User-Agent"].startswith("sync-worker/")


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "3"})) == 3.0
    assert (
        retry_after_seconds(httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
        == 0.0
    )
    assert retry_after_seconds(httpx.Response(429)) is None


async def test_rate_budget_waits_when_a_window_is_full() -> None:
    now = [0.0]
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    budget = RateBudget([(2, 1.0), (3, 60.0)], clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        await budget.acquire()
    assert sleeps == [1.0]  # third call waited for the 1-second window
    await budget.acquire()
    assert sleeps[-1] == pytest.approx(59.0)  # fourth waited for the 60-second window


def test_date_of_reads_the_vendors_clock_and_ignores_what_is_not_one() -> None:
    answer = httpx.Response(200, headers={"Date": "Sun, 01 Mar 2026 09:00:05 GMT"})
    assert date_of(answer) == datetime(2026, 3, 1, 9, 0, 5, tzinfo=UTC)
    assert date_of(httpx.Response(200)) is None
    assert date_of(httpx.Response(200, headers={"Date": "yesterday"})) is None
    assert (
        date_of(httpx.Response(200, headers={"Date": "Sun, 01 Mar 2026 09:00:05 -0000"})) is None
    )  # no zone
