"""Service mode, the composition root of a long-running worker: one asyncio process that runs the
scheduler and the HTTP server (health, readiness, metrics, webhooks).

Start: migrations are upgraded (under a lease, as replicas may start together), then the server binds, then the scheduler starts (first run at once).
SIGTERM/SIGINT: stop taking work (webhooks get 503 so vendors deliver again, /readyz fails), let runs in
flight finish within ``SYNC_HTTP__SHUTDOWN_GRACE_SECONDS`` and abandon the rest (safe: the outbox is
written before any push), stop the server, close clients, return; the process exits 0.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Generator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import uvicorn
from sqlalchemy import Engine

from config import Settings
from sync_worker import db
from sync_worker.dispatcher import Dispatcher
from sync_worker.lease import Lease, Leases, build_leases
from sync_worker.logs import get_logger
from sync_worker.scheduler import build_scheduler, plan
from sync_worker.trigger import RunFn, RunRequest, Trigger
from sync_worker.web.app import create_app
from sync_worker.web.health import Readiness
from sync_worker.web.metrics import Metrics
from sync_worker.web.webhooks import build_receivers

Clock = Callable[[], datetime]
Closer = Callable[[], Awaitable[None]]
SERVER_STOP_SECONDS = 5.0  # open HTTP connections get this long once the runs are drained
MIGRATION_WAIT_SECONDS = 300.0
MIGRATION_LEASE = "schema-migrations"


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the service decides what a SIGTERM means."""

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def upgrade_schema(engine: Engine, leases: Leases, wait_seconds: float = MIGRATION_WAIT_SECONDS) -> None:
    """Migrate to head under a lease: replicas starting together must not run Alembic at the same time."""
    lease = leases.acquire(MIGRATION_LEASE, timeout=wait_seconds)
    if lease is None:
        raise RuntimeError(f"another replica held the migration lease for {wait_seconds:.0f} s; not starting")
    with lease:
        db.upgrade(engine)


async def _take_leases(leases: Leases, names: Sequence[str]) -> list[Lease]:
    held = []
    for name in names:
        lease = await asyncio.to_thread(leases.try_acquire, name)
        if lease is not None:
            held.append(lease)
    return held


def scheduled_job(dispatcher: Dispatcher, leases: Leases, connectors: Sequence[str]) -> Closer:
    """The scheduled reconciliation: sync the connectors whose lease this replica gets, skip the others."""
    log = get_logger(component="scheduler")

    async def job() -> None:
        held = await _take_leases(leases, connectors)
        try:
            request = RunRequest(Trigger.SCHEDULE, only=frozenset(lease.name for lease in held))
            if connectors and not held:
                dispatcher.skip(request, "every connector is leased by another replica")
                return
            if len(held) < len(connectors):
                log.info("run.partial_lease", held=sorted(request.only))
            await dispatcher.run(request)
        finally:
            for lease in held:
                await asyncio.to_thread(lease.release)

    return job


async def _started(server: _Server, task: asyncio.Task[None]) -> int:
    """Wait until uvicorn listens; return the bound port (SYNC_HTTP__PORT=0 picks a free one)."""
    while not server.started:
        if task.done():
            task.result()  # re-raise why it could not start
            raise RuntimeError("the HTTP server stopped before it started")
        await asyncio.sleep(0.01)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    return port


async def serve_async(
    settings: Settings,
    run: RunFn,
    *,
    clock: Clock = utc_now,
    stop: asyncio.Event | None = None,
    closers: Sequence[Closer] = (),
    last_run_at: Callable[[], datetime | None] | None = None,
) -> None:
    log = get_logger(component="service")
    engine = db.make_engine(settings.database_url)
    leases = build_leases(engine)
    await asyncio.to_thread(upgrade_schema, engine, leases)
    metrics = Metrics()
    dispatcher = Dispatcher(run, metrics, clock)
    schedule = plan(settings.schedule, clock())
    readiness = Readiness(
        engine=engine,
        last_run_at=last_run_at or (lambda: dispatcher.last_finished_at),
        max_run_age=schedule.max_run_age(settings.schedule),
        started_at=clock(),
        clock=clock,
    )
    receivers = build_receivers(settings)
    app = create_app(
        metrics=metrics,
        readiness=readiness,
        receivers=receivers,
        dispatcher=dispatcher,
        clock=clock,
        public_url=settings.http.public_url,
    )
    # access_log off: Mailchimp's webhook URL carries its secret, and access lines would print it.
    config = uvicorn.Config(
        app,
        host=settings.http.host,
        port=settings.http.port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=int(SERVER_STOP_SECONDS),
    )
    server = _Server(config)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    job = scheduled_job(dispatcher, leases, settings.enabled_vendors())
    scheduler = build_scheduler(schedule, job, first_run=clock())
    server_task = asyncio.create_task(server.serve(), name="http")
    try:
        port = await _started(server, server_task)
        scheduler.start()
        log.info(
            "service.listening",
            host=settings.http.host,
            port=port,
            period_seconds=int(schedule.period.total_seconds()),
            webhooks=sorted(receivers),
        )
        stopping = asyncio.create_task(stop.wait(), name="stop")
        await asyncio.wait({server_task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        log.info("service.stopping", runs_in_flight=dispatcher.in_flight)
        # Pause, not shut down, while draining: APScheduler's shutdown cancels running jobs at once,
        # and the scheduled job holds the connector leases until its run has finished.
        scheduler.pause()
        finished = await dispatcher.drain(settings.http.shutdown_grace_seconds)
        scheduler.shutdown(wait=False)
        server.should_exit = True
        await asyncio.wait_for(server_task, timeout=SERVER_STOP_SECONDS + 1)
        log.info("service.stopped", runs_finished=finished)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        for close in closers:
            await close()
        await asyncio.to_thread(engine.dispose)


def serve(settings: Settings, run: RunFn, closers: Sequence[Closer] = ()) -> int:
    """Run the service until SIGTERM/SIGINT; the exit code of a clean stop is 0."""
    asyncio.run(serve_async(settings, run, closers=closers))
    return 0
