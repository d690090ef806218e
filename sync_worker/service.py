"""Service mode, the composition root of a long-running worker: one asyncio process that runs the
scheduler and the HTTP server (health, readiness, metrics, webhooks).

Start: migrations are upgraded (under a lease, as replicas may start together), then the server binds, then the scheduler starts (first run at once).
SIGTERM/SIGINT: stop taking work (webhooks get 503 so vendors deliver again, /readyz fails), let runs in
flight finish within ``SYNC_HTTP__SHUTDOWN_GRACE_SECONDS`` and abandon the rest (safe: the outbox is
written before any push), stop the server, close clients, return; the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import signal
import threading
from collections.abc import Awaitable, Callable, Generator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import uvicorn
from sqlalchemy import Engine

from config import Settings
from sync_worker import db
from sync_worker.dispatcher import Dispatcher
from sync_worker.lease import Lease, Leases, build_leases
from sync_worker.logs import get_logger
from sync_worker.scheduler import build_scheduler, plan
from sync_worker.trigger import RunFn, RunRequest, RunStatus, RunSummary, Trigger
from sync_worker.web.app import create_app
from sync_worker.web.health import Readiness, shared_last_run
from sync_worker.web.metrics import Metrics
from sync_worker.web.outbox_gauges import oldest_optout_age, outbox_depth
from sync_worker.web.webhooks import build_receivers

Clock = Callable[[], datetime]
Closer = Callable[[], Awaitable[None]]
SERVER_STOP_SECONDS = 5.0  # open HTTP connections get this long once the runs are drained
MIGRATION_WAIT_SECONDS = 300.0
MIGRATION_LEASE = "schema-migrations"
WEBHOOK_LEASE_WAIT_SECONDS = 60.0  # a scheduled run in flight usually ends well within this


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the service decides what a SIGTERM means."""

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


STATUS_ORDER = (RunStatus.SKIPPED, RunStatus.SUCCESS, RunStatus.PARTIAL, RunStatus.FAILED)


def summary_of(report: Any) -> RunSummary:
    """The runner's RunReport as a RunSummary: status, run id, totals over its per-connector counts."""
    raw = str(getattr(report, "status", RunStatus.FAILED))
    status = RunStatus(raw) if raw in RunStatus.__members__.values() else RunStatus.FAILED
    counts = list((getattr(report, "counts", None) or {}).values())
    return RunSummary(
        status=status,
        run_id=getattr(report, "run_id", None),
        pushed=sum(getattr(c, "pushed", 0) for c in counts),
        failed=sum(getattr(c, "failed", 0) for c in counts),
        pushes=tuple(sorted((*key, n) for key, n in (getattr(report, "pushes", None) or {}).items())),
        vendor_calls=tuple(
            sorted((name, *calls) for name, calls in (getattr(report, "vendor_calls", None) or {}).items())
        ),
    )


def _combined(summaries: list[RunSummary]) -> RunSummary:
    return RunSummary(
        status=max((s.status for s in summaries), key=STATUS_ORDER.index),
        run_id=",".join(s.run_id for s in summaries if s.run_id) or None,
        pushed=sum(s.pushed for s in summaries),
        failed=sum(s.failed for s in summaries),
        pushes=tuple(p for s in summaries for p in s.pushes),
        vendor_calls=tuple(v for s in summaries for v in s.vendor_calls),
    )


async def in_daemon_thread(work: Callable[[], Any]) -> Any:
    """Await blocking ``work`` on a daemon thread of its own.

    Not the default executor: asyncio.run joins that at exit, so a run abandoned on SIGTERM would hold
    the process open. A daemon thread dies with the process, which the outbox makes safe.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def deliver(ok: bool, value: Any) -> None:
        if not future.done():
            future.set_result(value) if ok else future.set_exception(value)

    def target() -> None:
        try:
            outcome: tuple[bool, Any] = (True, work())
        except BaseException as error:  # handed to the awaiting task, which re-raises it
            outcome = (False, error)
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(deliver, *outcome)

    threading.Thread(target=target, name="run", daemon=True).start()
    return await future


def runner_run_fn(
    settings: Settings,
    *,
    dry_run: bool = False,
    full: bool = False,
    run_once: Callable[..., Any] | None = None,
) -> RunFn:
    """The reconciliation runner (``sync_worker.runner.run_once``) as the service's RunFn.

    ``run_once`` takes one connector or all, so a subset held by this replica's leases is run connector
    by connector. A webhook with facts is a targeted run for those people over every connector: its
    facts are observed and recorded like a pulled record, planned against the last snapshot of the other
    systems and pushed, without pulling any stream (DESIGN.md §1). The scheduled run stays the safety net.
    """
    if run_once is None:
        from sync_worker.runner import run_once as runner_entry

        run_once = runner_entry

    async def run(request: RunRequest) -> RunSummary:
        if request.facts:
            report = await in_daemon_thread(
                functools.partial(
                    run_once, settings, trigger=request.trigger.value, dry_run=dry_run, facts=request.facts
                )
            )
            return summary_of(report)
        summaries = []
        subset: list[str | None] = [*sorted(request.only)]
        for only in subset or [None]:
            report = await in_daemon_thread(
                functools.partial(
                    run_once,
                    settings,
                    trigger=request.trigger.value,
                    dry_run=dry_run,
                    only=only,
                    full=full,
                    leased=True,  # the scheduled job and webhook runs hold these connectors' leases
                )
            )
            summaries.append(summary_of(report))
        return _combined(summaries)

    return run


def upgrade_schema(engine: Engine, leases: Leases, wait_seconds: float = MIGRATION_WAIT_SECONDS) -> None:
    """Migrate to head under a lease: replicas starting together must not run Alembic at the same time."""
    lease = leases.acquire(MIGRATION_LEASE, timeout=wait_seconds)
    if lease is None:
        raise RuntimeError(f"another replica held the migration lease for {wait_seconds:.0f} s; not starting")
    with lease:
        db.upgrade(engine)


async def _take_leases(leases: Leases, names: Sequence[str], wait_seconds: float = 0) -> list[Lease]:
    held = []
    for name in names:
        if wait_seconds:
            lease = await asyncio.to_thread(leases.acquire, name, wait_seconds)
        else:
            lease = await asyncio.to_thread(leases.try_acquire, name)
        if lease is not None:
            held.append(lease)
    return held


def leased_webhook_runs(
    run: RunFn, leases: Leases, connectors: Sequence[str], wait_seconds: float = WEBHOOK_LEASE_WAIT_SECONDS
) -> RunFn:
    """Webhook runs take the connector leases too, waiting for a scheduled run (here or on another
    replica) to finish: two pulls of one connector at once would race, and a pull that began before the
    vendor's change would miss it. Connectors still leased after the wait are left to their holder.
    A run of webhook facts pulls nothing and claims its outbox items with row locks, so it goes at once:
    waiting for a scheduled pull would put that pull's duration on the opt-out's way out.
    """
    log = get_logger(component="dispatcher")

    async def leased(request: RunRequest) -> RunSummary:
        if request.trigger is not Trigger.WEBHOOK or request.facts:
            return await run(request)  # the scheduled job holds its leases already
        held = await _take_leases(leases, connectors, wait_seconds)
        try:
            if connectors and not held:
                log.info("run.skipped", trigger=request.trigger, reason="connectors leased elsewhere")
                return RunSummary(RunStatus.SKIPPED)
            names = frozenset(lease.name for lease in held)
            only = names if len(held) < len(connectors) else frozenset()
            return await run(dataclasses.replace(request, only=only))
        finally:
            for lease in held:
                await asyncio.to_thread(lease.release)

    return leased


def scheduled_job(dispatcher: Dispatcher, leases: Leases, connectors: Sequence[str]) -> Closer:
    """The scheduled reconciliation: sync the connectors whose lease this replica gets, skip the others."""
    log = get_logger(component="scheduler")

    async def job() -> None:
        held = await _take_leases(leases, connectors)
        try:
            names = frozenset(lease.name for lease in held)
            # Every lease held: one run of everything (empty ``only``), not one run per connector.
            request = RunRequest(Trigger.SCHEDULE, only=names if len(held) < len(connectors) else frozenset())
            if connectors and not held:
                dispatcher.skip(request, "every connector is leased by another replica")
                return
            if len(held) < len(connectors):
                log.info("run.partial_lease", held=sorted(names))
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
    await asyncio.to_thread(upgrade_schema, engine, build_leases(engine))
    metrics = Metrics()
    metrics.watch_outbox(outbox_depth(engine), oldest_optout_age(engine, clock))
    leases = build_leases(engine)
    connectors = settings.enabled_vendors()
    dispatcher = Dispatcher(leased_webhook_runs(run, leases, connectors), metrics, clock)
    schedule = plan(settings.schedule, clock())
    readiness = Readiness(
        engine=engine,
        last_run_at=last_run_at or shared_last_run(engine),
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
    job = scheduled_job(dispatcher, leases, connectors)
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
