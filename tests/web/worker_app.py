"""An in-process worker app with a recording run function and a fixed clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from starlette.applications import Starlette

from config import Settings, load_settings
from sync_worker import db, runlog
from sync_worker.dispatcher import Dispatcher
from sync_worker.trigger import RunFn, RunRequest, RunStatus, RunSummary
from sync_worker.web.app import create_app
from sync_worker.web.health import Readiness, shared_last_run
from sync_worker.web.metrics import Metrics
from sync_worker.web.webhooks import build_receivers

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SECRETS = {
    "SYNC_SHOPIFY__WEBHOOK_SECRET": "shopify-secret",
    "SYNC_HUBSPOT__CLIENT_SECRET": "hubspot-secret",
    "SYNC_MAILCHIMP__WEBHOOK_SECRET": "mailchimp-secret",
    "SYNC_KLAVIYO__WEBHOOK_SECRET": "klaviyo-secret-0123456789",
}


@dataclass
class RecordingRun:
    requests: list[RunRequest] = field(default_factory=list)

    async def __call__(self, request: RunRequest) -> RunSummary:
        self.requests.append(request)
        return RunSummary(RunStatus.SUCCESS, run_id=str(len(self.requests)))


@dataclass
class Worker:
    metrics: Metrics
    dispatcher: Dispatcher
    run: RecordingRun
    client: httpx.AsyncClient
    engine: Engine
    readiness: Readiness

    def record_run(self, ended_at: datetime, trigger: str = "schedule", status: str = "success") -> None:
        """A finished run in the runs table, as any replica (this process or another) writes it."""
        run_id = f"{trigger}-{ended_at.isoformat()}"
        with self.engine.begin() as conn:
            runlog.start_run(conn, run_id, trigger, False, ended_at - timedelta(seconds=30))
            runlog.finish_run(conn, run_id, status=status, counts={}, now=ended_at, error=None)

    async def settle(self) -> list[RunRequest]:
        """Wait for the runs the requests started; return what the run function was asked."""
        await self.dispatcher.drain(grace_seconds=5)
        return self.run.requests

    def count(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


Scenario = Callable[[Worker], Awaitable[None]]


@dataclass
class WorkerApp:
    app: Starlette
    metrics: Metrics
    dispatcher: Dispatcher
    readiness: Readiness


def build_worker_app(settings: Settings, engine: Engine, run: RunFn) -> WorkerApp:
    """The worker's web app as the service builds it, with ``run`` in place of the real runner."""
    metrics = Metrics()
    dispatcher = Dispatcher(run, metrics, lambda: NOW)
    readiness = Readiness(
        engine, shared_last_run(engine), timedelta(minutes=45), NOW - timedelta(minutes=1), lambda: NOW
    )
    app = create_app(
        metrics=metrics,
        readiness=readiness,
        receivers=build_receivers(settings),
        dispatcher=dispatcher,
        clock=lambda: NOW,
    )
    return WorkerApp(app, metrics, dispatcher, readiness)


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> dict[str, str]:
    env = {**SECRETS, "SYNC_DATABASE_URL": f"sqlite:///{tmp_path}/ledger.db"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def with_worker(worker_env: dict[str, str]) -> Callable[..., None]:
    """Run ``scenario(worker)`` against a fresh app; runs it started are awaited before returning."""

    def go(scenario: Scenario, *, migrate: bool = False, **overrides: Any) -> None:
        settings = load_settings(**overrides)
        engine = db.make_engine(settings.database_url)
        if migrate:
            db.upgrade(engine)
        run = RecordingRun()
        parts = build_worker_app(settings, engine, run)

        async def main() -> None:
            transport = httpx.ASGITransport(app=parts.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://worker.test") as client:
                await scenario(Worker(parts.metrics, parts.dispatcher, run, client, engine, parts.readiness))
                await parts.dispatcher.drain(grace_seconds=5)

        try:
            asyncio.run(main())
        finally:
            engine.dispose()

    return go
