"""The sandbox base: injected faults reach the client as the vendor's errors or dropped connections."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.errors import RateLimitedError, TransientError
from connectors.http import RetryPolicy, VendorHTTP, make_client
from connectors.sandbox import Clock, FaultInjector, Faults, served


def _error(status: int, title: str, retry_after: float | None) -> Response:
    headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
    return JSONResponse({"title": title, "status": status}, status_code=status, headers=headers)


def _app(faults: Faults) -> FaultInjector:
    async def ok(_request: object) -> Response:
        return JSONResponse({"ok": True})

    return FaultInjector(Starlette(routes=[Route("/x", ok)]), faults, _error)


@pytest.mark.parametrize("kind", ["429", "5xx", "drop"])
async def test_each_fault_surfaces_as_a_transient_error(kind: str) -> None:
    faults = Faults(**{f"rate_{kind}": 1.0})  # type: ignore[arg-type]
    client = make_client("http://sandbox.test", transport=httpx.ASGITransport(app=_app(faults)))

    async def no_sleep(_s: float) -> None:
        return None

    http = VendorHTTP("v", client, lambda r: r.text, retry=RetryPolicy(max_attempts=2, sleep=no_sleep))
    expected = RateLimitedError if kind == "429" else TransientError
    with pytest.raises(expected):
        await http.request("GET", "/x")
    assert faults.injected[kind] == 2


def test_fault_rates_are_repeatable_and_near_the_asked_fraction() -> None:
    faults = Faults()
    faults.set_all(0.2)
    draws = [faults.draw() for _ in range(5000)]
    failed = sum(1 for d in draws if d is not None) / len(draws)
    assert 0.17 < failed < 0.23
    again = Faults()
    again.set_all(0.2)
    assert [again.draw() for _ in range(5000)] == draws


def test_dropped_connection_over_real_http() -> None:
    faults = Faults(rate_drop=1.0)
    with served(_app(faults)) as base_url, pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{base_url}/x", timeout=5)
    faults.rate_drop = 0.0


def test_clock_can_be_frozen_and_advanced() -> None:
    clock = Clock()
    from datetime import UTC, datetime

    clock.set(datetime(2026, 1, 1, tzinfo=UTC))
    assert clock.advance(60).minute == 1
