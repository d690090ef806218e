"""Leases in the service: the scheduled job syncs only the connectors whose lease this replica holds, and
schema migrations run under a lease of their own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.base import Status
from sync_worker.db import is_up_to_date, make_engine
from sync_worker.dispatcher import Dispatcher
from sync_worker.lease import LocalLeases
from sync_worker.service import MIGRATION_LEASE, leased_webhook_runs, scheduled_job, upgrade_schema
from sync_worker.trigger import RunRequest, RunStatus, RunSummary, Trigger, WebhookFact
from sync_worker.web.metrics import Metrics

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def make(leases: LocalLeases) -> tuple[Dispatcher, Metrics, list[RunRequest], list[bool]]:
    seen: list[RunRequest] = []
    held_during_run: list[bool] = []

    async def run(request: RunRequest) -> RunSummary:
        seen.append(request)
        held_during_run.append(leases.try_acquire("mailchimp") is None)  # still ours while running
        return RunSummary(RunStatus.SUCCESS)

    metrics = Metrics()
    return Dispatcher(run, metrics, lambda: NOW), metrics, seen, held_during_run


def test_scheduled_run_covers_only_connectors_whose_lease_it_got() -> None:
    leases = LocalLeases()
    elsewhere = leases.try_acquire("klaviyo")  # another replica is syncing Klaviyo
    assert elsewhere is not None
    dispatcher, _, seen, held_during_run = make(leases)
    asyncio.run(scheduled_job(dispatcher, leases, ["mailchimp", "klaviyo"])())
    (request,) = seen
    assert request.trigger is Trigger.SCHEDULE
    assert request.only == {"mailchimp"}
    assert held_during_run == [True]
    assert leases.try_acquire("mailchimp") is not None  # released afterwards


def test_scheduled_run_with_every_lease_held_is_one_run_of_everything() -> None:
    leases = LocalLeases()
    dispatcher, _, seen, _ = make(leases)
    asyncio.run(scheduled_job(dispatcher, leases, ["mailchimp", "klaviyo"])())
    (request,) = seen
    assert request.only == frozenset()


def test_scheduled_run_is_skipped_and_counted_when_every_lease_is_taken() -> None:
    leases = LocalLeases()
    taken = [leases.try_acquire(name) for name in ("mailchimp", "klaviyo")]
    assert all(taken)
    dispatcher, metrics, seen, _ = make(leases)
    asyncio.run(scheduled_job(dispatcher, leases, ["mailchimp", "klaviyo"])())
    assert seen == []
    skipped = metrics.registry.get_sample_value(
        "sync_runs_total", {"status": "skipped", "trigger": "schedule"}
    )
    assert skipped == 1


def test_schema_upgrade_waits_for_the_migration_lease(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/ledger.db")
    try:
        leases = LocalLeases()
        other = leases.try_acquire(MIGRATION_LEASE)  # another replica is migrating
        assert other is not None
        with pytest.raises(RuntimeError, match="migration lease"):
            upgrade_schema(engine, leases, wait_seconds=0)
        assert not is_up_to_date(engine)
        other.release()
        upgrade_schema(engine, leases, wait_seconds=0)
        assert is_up_to_date(engine)
        assert leases.try_acquire(MIGRATION_LEASE) is not None  # released after upgrading
    finally:
        engine.dispose()


def recording() -> tuple[list[RunRequest], Any]:
    calls: list[RunRequest] = []

    async def run(request: RunRequest) -> RunSummary:
        calls.append(request)
        return RunSummary(RunStatus.SUCCESS)

    return calls, run


WEBHOOK = RunRequest(Trigger.WEBHOOK, emails=frozenset({"jan@example.com"}))


def test_webhook_run_waits_for_the_scheduled_run_to_release_the_lease() -> None:
    leases = LocalLeases()
    calls, run = recording()

    async def scenario() -> RunSummary:
        scheduled = await asyncio.to_thread(leases.try_acquire, "mailchimp")  # a scheduled run holds it
        assert scheduled is not None
        waiting = asyncio.create_task(
            leased_webhook_runs(run, leases, ["mailchimp"], wait_seconds=30)(WEBHOOK)
        )
        await asyncio.sleep(0)
        assert calls == []  # cannot have run: the lease is still held
        await asyncio.to_thread(scheduled.release)
        return await waiting

    assert asyncio.run(scenario()).status is RunStatus.SUCCESS
    (request,) = calls
    assert request.emails == {"jan@example.com"}
    assert request.only == frozenset()
    assert leases.try_acquire("mailchimp") is not None  # released after the run


def test_webhook_run_is_skipped_when_the_leases_stay_taken() -> None:
    leases = LocalLeases()
    assert leases.try_acquire("mailchimp") is not None
    calls, run = recording()
    summary = asyncio.run(leased_webhook_runs(run, leases, ["mailchimp"], wait_seconds=0.01)(WEBHOOK))
    assert summary.status is RunStatus.SKIPPED
    assert calls == []


def test_webhook_facts_run_at_once_while_a_scheduled_run_holds_the_lease() -> None:
    leases = LocalLeases()
    assert leases.try_acquire("mailchimp") is not None  # a scheduled pull is in flight
    calls, run = recording()
    fact = WebhookFact("mailchimp", "unsubscribe", "jan@example.com", status=Status.UNSUBSCRIBED)
    summary = asyncio.run(
        leased_webhook_runs(run, leases, ["mailchimp"], wait_seconds=0.01)(RunRequest.for_facts((fact,)))
    )
    assert summary.status is RunStatus.SUCCESS
    assert [c.facts for c in calls] == [(fact,)]


def test_scheduled_requests_pass_through_without_taking_leases_again() -> None:
    leases = LocalLeases()
    assert leases.try_acquire("mailchimp") is not None  # held by the scheduled job itself
    calls, run = recording()
    asyncio.run(
        leased_webhook_runs(run, leases, ["mailchimp"], wait_seconds=0.01)(RunRequest(Trigger.SCHEDULE))
    )
    assert len(calls) == 1
