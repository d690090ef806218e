"""The dispatcher times and counts runs, survives a crashing run, and drains on shutdown."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sync_worker.dispatcher import Dispatcher
from sync_worker.trigger import RunRequest, RunStatus, RunSummary, Trigger
from sync_worker.web.metrics import Metrics

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SCHEDULED = RunRequest(Trigger.SCHEDULE)


def runs(metrics: Metrics, status: str) -> float:
    return (
        metrics.registry.get_sample_value("sync_runs_total", {"status": status, "trigger": "schedule"}) or 0
    )


def test_successful_run_is_counted_and_remembered_for_readiness() -> None:
    async def ok(_request: RunRequest) -> RunSummary:
        return RunSummary(RunStatus.SUCCESS)

    metrics = Metrics()
    dispatcher = Dispatcher(ok, metrics, lambda: NOW)
    summary = asyncio.run(dispatcher.run(SCHEDULED))
    assert summary is not None
    assert summary.status is RunStatus.SUCCESS
    assert dispatcher.last_finished_at == NOW
    assert runs(metrics, "success") == 1


def test_pushes_by_connector_and_purpose_and_vendor_retries_of_a_run_are_counted() -> None:
    async def pushed(_request: RunRequest) -> RunSummary:
        return RunSummary(
            RunStatus.PARTIAL,
            pushes=(("klaviyo", "newsletter", True, 3), ("klaviyo", "newsletter", False, 1)),
            vendor_calls=(("klaviyo", 4, 2),),
        )

    metrics = Metrics()
    asyncio.run(Dispatcher(pushed, metrics, lambda: NOW).run(SCHEDULED))
    labels = {"connector": "klaviyo", "purpose": "newsletter"}
    assert metrics.registry.get_sample_value("sync_changes_pushed_total", labels) == 3
    assert metrics.registry.get_sample_value("sync_changes_failed_total", labels) == 1
    assert metrics.registry.get_sample_value("sync_vendor_retries_total", {"connector": "klaviyo"}) == 4
    assert metrics.registry.get_sample_value("sync_vendor_rate_limited_total", {"connector": "klaviyo"}) == 2


def test_crashing_run_counts_as_failed_and_leaves_the_last_run_unchanged() -> None:
    async def crash(_request: RunRequest) -> RunSummary:
        raise RuntimeError("vendor down")

    metrics = Metrics()
    dispatcher = Dispatcher(crash, metrics, lambda: NOW)
    summary = asyncio.run(dispatcher.run(SCHEDULED))
    assert summary is not None
    assert summary.status is RunStatus.FAILED
    assert dispatcher.last_finished_at is None
    assert runs(metrics, "failed") == 1


def test_drain_lets_the_run_in_flight_finish() -> None:
    finished: list[bool] = []

    async def scenario() -> bool:
        release = asyncio.Event()

        async def batch(_request: RunRequest) -> RunSummary:
            await release.wait()
            finished.append(True)
            return RunSummary(RunStatus.SUCCESS)

        dispatcher = Dispatcher(batch, Metrics(), lambda: NOW)
        dispatcher.submit(SCHEDULED)
        await asyncio.sleep(0)  # let the run start
        draining = asyncio.create_task(dispatcher.drain(grace_seconds=30))
        await asyncio.sleep(0)
        assert dispatcher.submit(SCHEDULED) is None  # no new work once draining
        release.set()
        return await draining

    assert asyncio.run(scenario()) is True
    assert finished == [True]


def test_drain_abandons_a_run_that_outlasts_the_grace_period() -> None:
    metrics = Metrics()

    async def scenario() -> bool:
        async def stuck(_request: RunRequest) -> RunSummary:
            await asyncio.Event().wait()
            raise AssertionError("never reached")

        dispatcher = Dispatcher(stuck, metrics, lambda: NOW)
        dispatcher.submit(SCHEDULED)
        await asyncio.sleep(0)
        return await dispatcher.drain(grace_seconds=0)

    assert asyncio.run(scenario()) is False
    assert runs(metrics, "abandoned") == 1


def test_webhooks_arriving_during_a_targeted_run_are_coalesced_into_the_next_one() -> None:
    seen: list[RunRequest] = []

    async def scenario() -> None:
        release = asyncio.Event()

        async def run(request: RunRequest) -> RunSummary:
            seen.append(request)
            await release.wait()
            return RunSummary(RunStatus.SUCCESS)

        dispatcher = Dispatcher(run, Metrics(), lambda: NOW)
        assert dispatcher.enqueue(RunRequest(Trigger.WEBHOOK, emails=frozenset({"a@example.com"})))
        await asyncio.sleep(0)  # the first run starts and waits
        for email in ("b@example.com", "c@example.com"):
            assert dispatcher.enqueue(RunRequest(Trigger.WEBHOOK, emails=frozenset({email})))
        assert dispatcher.enqueue(RunRequest(Trigger.WEBHOOK, external_ids=frozenset({("hubspot", "7")})))
        release.set()
        assert await dispatcher.drain(grace_seconds=30)

    asyncio.run(scenario())
    assert [set(r.emails) for r in seen] == [{"a@example.com"}, {"b@example.com", "c@example.com"}]
    assert seen[1].external_ids == {("hubspot", "7")}


def test_skipped_turn_counts_for_readiness() -> None:
    async def never(_request: RunRequest) -> RunSummary:
        raise AssertionError("a skipped turn runs nothing")

    dispatcher = Dispatcher(never, Metrics(), lambda: NOW)
    dispatcher.skip(SCHEDULED, "leased elsewhere")
    assert dispatcher.last_finished_at == NOW
