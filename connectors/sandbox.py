"""What every vendor sandbox shares: fault injection, a settable clock, and serving over real HTTP.

A sandbox is a Starlette app that fakes one vendor's API subset faithfully (paths, auth, paging, error
bodies, limits, quirks: VENDOR-APIS.md). The same app runs in process (``httpx.ASGITransport``) for tests
and under uvicorn on 127.0.0.1 for the demo and end-to-end tests.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Protocol

import httpx
import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.base import Status
from connectors.webhook_sender import WebhookSender

ErrorResponse = Callable[[int, str, float | None], Response]


class DroppedConnectionError(httpx.ReadError):
    """Raised by the fault injector to drop a connection mid-response (in process and over uvicorn)."""


@dataclass
class Faults:
    """Fractions of requests that fail, each way. A seeded RNG keeps a test's faults repeatable."""

    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_slow: float = 0.0
    rate_drop: float = 0.0
    slow_seconds: float = 0.2
    retry_after: float = 1.0
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    injected: dict[str, int] = field(default_factory=dict)

    def set_all(self, rate: float) -> None:
        """Spread ``rate`` over 429, 5xx and dropped connections (e.g. 0.2 for the 20% contract case)."""
        self.rate_429 = self.rate_5xx = self.rate_drop = rate / 3

    def draw(self) -> str | None:
        roll = self.rng.random()
        for kind, rate in (("429", self.rate_429), ("5xx", self.rate_5xx), ("drop", self.rate_drop)):
            if roll < rate:
                self.injected[kind] = self.injected.get(kind, 0) + 1
                return kind
            roll -= rate
        if self.rng.random() < self.rate_slow:
            self.injected["slow"] = self.injected.get("slow", 0) + 1
            return "slow"
        return None


class FaultInjector:
    """ASGI middleware: answers a drawn fraction of requests with the vendor's own 429 / 5xx bodies."""

    def __init__(self, app: ASGIApp, faults: Faults, error_response: ErrorResponse) -> None:
        self.app = app
        self.faults = faults
        self.error_response = error_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        fault = self.faults.draw()
        if fault == "429":
            response = self.error_response(429, "Too Many Requests", self.faults.retry_after)
            await response(scope, receive, send)
        elif fault == "5xx":
            await self.error_response(503, "Service Unavailable", None)(scope, receive, send)
        elif fault == "drop":
            # Promise a body, then break off: uvicorn closes the socket, in process the client sees a ReadError.
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]}
            )
            raise DroppedConnectionError("connection dropped by the sandbox's fault injector")
        else:
            if fault == "slow":
                await asyncio.sleep(self.faults.slow_seconds)
            await self.app(scope, receive, send)


class VendorDate:
    """ASGI middleware: every answer carries a ``Date`` header from the sandbox's clock, as a vendor's
    carries its own clock's time (RFC 9110). Connectors seal their watermarks with it."""

    def __init__(self, app: ASGIApp, clock: Clock) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        date = format_datetime(self.clock.now().astimezone(UTC), usegmt=True).encode()

        async def dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                message = {**message, "headers": [*headers, (b"date", date)]}
            await send(message)

        await self.app(scope, receive, dated)


class Clock:
    """The sandbox's notion of now; tests set or advance it to make equal timestamps on purpose."""

    def __init__(self, start: datetime | None = None) -> None:
        self.frozen: datetime | None = start

    def now(self) -> datetime:
        return self.frozen if self.frozen is not None else datetime.now(UTC).replace(microsecond=0)

    def set(self, moment: datetime) -> None:
        self.frozen = moment

    def advance(self, seconds: float) -> datetime:
        self.frozen = self.now() + timedelta(seconds=seconds)
        return self.frozen


class Sandbox(Protocol):
    """What the contract suite and the demo need from every vendor's sandbox, besides its HTTP API."""

    name: str
    clock: Clock
    faults: Faults
    requests: list[tuple[str, str]]  # (method, path) of every API request, for counting pushes
    webhooks: WebhookSender  # where set_status sends the vendor's webhooks (connectors.webhook_sender)

    @property
    def app(self) -> ASGIApp: ...

    def settings_env(self, base_url: str) -> dict[str, str]:
        """SYNC_* variables that point the worker at this sandbox served at ``base_url``."""
        ...

    def add_contact(self, email: str, statuses: Mapping[str, Status], **vendor: Any) -> str:
        """Create a person as if they had signed up in the vendor; returns the vendor's id."""
        ...

    def set_status(self, email: str, purpose: str, status: Status) -> None:
        """Change a person's state in the vendor, as the person or an admin would (stamped with clock.now())."""
        ...

    def status(self, email: str, purpose: str) -> Status | None:
        """The vendor's current truth for one person and purpose (None: the person is unknown)."""
        ...


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@contextmanager
def served(app: ASGIApp, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Serve ``app`` over real HTTP in a background thread; yields the base URL, stops on exit."""
    port = port or free_port(host)
    # date_header off: the sandbox's answers carry its own clock's Date (VendorDate), not the real time.
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", date_header=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"sandbox:{port}", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"sandbox server on {host}:{port} failed to start")
            threading.Event().wait(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def recorder(
    requests: list[tuple[str, str]],
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """Starlette ``http`` middleware function that records (method, path) of each API request."""

    async def record(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if not request.url.path.startswith("/_sandbox"):
            requests.append((request.method, request.url.path))
        return await call_next(request)

    return record
