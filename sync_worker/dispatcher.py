"""Starts runs for the scheduler and the webhooks, times and counts them, and drains them on shutdown.

Webhook runs are coalesced: while one targeted run is busy, the people of further webhooks gather into
the next one, so a burst (a bulk unsubscribe in a vendor's UI) costs a few runs, not one per request.

Each run is an asyncio task the dispatcher tracks, so a SIGTERM can let the batch in flight finish
within a grace period and then cancel what is left: abandoning a run is safe because every planned
change sits in the outbox before any push, and the next run drains it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime

from sync_worker.logs import get_logger
from sync_worker.trigger import RunFn, RunRequest, RunStatus, RunSummary
from sync_worker.web.metrics import Metrics


class Dispatcher:
    def __init__(self, run: RunFn, metrics: Metrics, clock: Callable[[], datetime]) -> None:
        self._run = run
        self._metrics = metrics
        self._clock = clock
        self._tasks: set[asyncio.Task[RunSummary]] = set()
        self._closed = False
        self._queued: RunRequest | None = None
        self._targeted: asyncio.Task[RunSummary] | None = None
        self.last_finished_at: datetime | None = None
        self.log = get_logger(component="dispatcher")

    @property
    def accepting(self) -> bool:
        return not self._closed

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def submit(self, request: RunRequest) -> asyncio.Task[RunSummary] | None:
        """Start a run now; None once shutdown has begun (no new work is taken)."""
        if self._closed:
            return None
        task = asyncio.create_task(self._timed(request), name=f"run:{request.trigger}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def enqueue(self, request: RunRequest) -> bool:
        """Start a targeted run at once, or join the next one if a targeted run is busy."""
        if self._closed:
            return False
        self._queued = request if self._queued is None else self._queued.merged(request)
        if self._targeted is None or self._targeted.done():
            self._targeted = asyncio.create_task(self._run_queued(), name="run:targeted")
            self._tasks.add(self._targeted)
            self._targeted.add_done_callback(self._tasks.discard)
        return True

    async def _run_queued(self) -> RunSummary:
        summary = RunSummary(RunStatus.SKIPPED)
        # Requests accepted before shutdown are still run: their webhooks were answered 200.
        while self._queued is not None:
            request, self._queued = self._queued, None
            summary = await self._timed(request)
        return summary

    async def run(self, request: RunRequest) -> RunSummary | None:
        task = self.submit(request)
        return await task if task is not None else None

    def skip(self, request: RunRequest, reason: str) -> None:
        self._metrics.observe_run(RunStatus.SKIPPED, request.trigger, 0.0)
        # Skipped because other replicas hold the leases: the ledger is being kept fresh, so it counts as a
        # turn taken here (/readyz reads the shared runs table, where the peer's run shows).
        self.last_finished_at = self._clock()
        self.log.info("run.skipped", trigger=request.trigger, reason=reason)

    async def _timed(self, request: RunRequest) -> RunSummary:
        started = time.perf_counter()
        try:
            summary = await self._run(request)
        except asyncio.CancelledError:
            self._metrics.observe_run("abandoned", request.trigger, time.perf_counter() - started)
            self.log.warning("run.abandoned", trigger=request.trigger)
            raise
        except Exception as error:
            # A failing run must not take the service down; the next trigger tries again.
            self.log.exception("run.crashed", trigger=request.trigger, error=repr(error))
            summary = RunSummary(RunStatus.FAILED)
        self._metrics.observe_run(summary.status, request.trigger, time.perf_counter() - started)
        for connector, purpose, accepted, n in summary.pushes:
            self._metrics.count_push(connector, purpose, accepted=accepted, n=n)
        for connector, retries, rate_limited in summary.vendor_calls:
            self._metrics.count_vendor_calls(connector, retries=retries, rate_limited=rate_limited)
        if summary.status in (RunStatus.SUCCESS, RunStatus.PARTIAL):
            self.last_finished_at = self._clock()
        self.log.info(
            "run.finished",
            trigger=request.trigger,
            status=summary.status,
            run_id=summary.run_id,
            people=len(request.emails) + len(request.external_ids) if request.targeted else "all",
        )
        return summary

    async def drain(self, grace_seconds: float) -> bool:
        """Take no new work; wait up to ``grace_seconds`` for runs in flight, then cancel the rest.

        Returns True when every run finished on its own.
        """
        self._closed = True
        if not self._tasks:
            return True
        pending = set(self._tasks)
        _done, still = await asyncio.wait(pending, timeout=grace_seconds)
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)
        return not still
