"""Fixtures of the contract suite: one sandbox and connector per vendor entry in vendors.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from config import load_settings
from connectors.base import Connector
from connectors.http import RetryPolicy
from connectors.registry import connector_class, sandbox_class
from tests.contract.vendors import VENDORS, VendorFixture

SANDBOX_URL = "http://sandbox.test"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def _no_sleep(_seconds: float) -> None:
    return None


# Generous attempts, no real waiting: with 20% injected faults a request may fail several times in a row.
PATIENT = RetryPolicy(max_attempts=15, max_total_wait=1e9, sleep=_no_sleep)


@pytest.fixture(params=sorted(VENDORS))
def vendor(request: pytest.FixtureRequest) -> VendorFixture:
    return VENDORS[request.param]


@pytest.fixture
def sandbox(vendor: VendorFixture) -> Any:
    box = sandbox_class(vendor.name)()
    box.clock.set(T0)
    return box


ConnectorFactory = Callable[[], Connector]


@pytest.fixture
async def connect(
    vendor: VendorFixture, sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ConnectorFactory]:
    """Makes fresh connectors (as a new run would) talking in process to the vendor's sandbox."""
    for name, value in {**sandbox.settings_env(SANDBOX_URL), **vendor.env}.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    made: list[Connector] = []

    def make() -> Connector:
        connector: Connector = connector_class(vendor.name).from_settings(
            settings, transport=httpx.ASGITransport(app=sandbox.app), retry=PATIENT
        )
        vendor.tiny_pages(connector)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        await connector.aclose()
