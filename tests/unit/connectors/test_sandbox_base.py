"""The sandbox base: injected faults reach the client as the vendor's errors or dropped connections."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.errors import RateLimitedError, TransientError
from connectors.http import RetryPolicy, VendorHTTP, make_client
from connectors.sandbox import Clock, FaultInjector, Faults, VendorDate, served


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


def test_answers_carry_the_sandbox_clock_in_their_date_over_real_http() -> None:
    """uvicorn's own Date would be the real time; a vendor's answer carries the vendor's clock."""
    clock = Clock(datetime(2026, 3, 1, 9, 0, 5, tzinfo=UTC))
    with served(VendorDate(_app(Faults()), clock)) as base, httpx.Client(base_url=base) as client:
        response = client.get("/x")
    assert response.headers.get_list("date") == ["Sun, 01 Mar 2026 09:00:05 GMT"]


async def test_vendor_http_keeps_the_date_of_its_latest_answer() -> None:
    clock = Clock(datetime(2026, 3, 1, 9, 0, 5, tzinfo=UTC))
    transport = httpx.ASGITransport(app=VendorDate(_app(Faults()), clock))
    http = VendorHTTP("v", make_client("http://sandbox.test", transport=transport), lambda r: r.text)
    assert http.vendor_date is None
    await http.request("GET", "/x")
    assert http.vendor_date == datetime(2026, 3, 1, 9, 0, 5, tzinfo=UTC)
    clock.advance(60)
    await http.request("GET", "/x")
    assert http.vendor_date == datetime(2026, 3, 1, 9, 1, 5, tzinfo=UTC)
    await http.aclose()
