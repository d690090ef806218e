"""Liveness, readiness (database, migrations, last run age) and the Prometheus exposition."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sync_worker.trigger import RunRequest, Trigger
from sync_worker.web.metrics import Metrics
from tests.web.worker_app import NOW, Worker


def test_healthz_answers_while_alive(with_worker: Any) -> None:
    async def scenario(w: Worker) -> None:
        response = await w.client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "accepting_work": True}

    with_worker(scenario)


def test_readyz_fails_before_migrations_are_applied(
    with_worker: Any, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("SYNC_DATABASE_URL", database_url)

    async def scenario(w: Worker) -> None:
        response = await w.client.get("/readyz")
        assert response.status_code == 503
        checks = response.json()["checks"]
        assert checks["database"]["ok"] is True
        assert checks["migrations"]["ok"] is False
        assert checks["migrations"]["detail"].startswith("at empty")
        assert checks["last_run"] == {"ok": False, "detail": "unknown: migrations not applied"}

    with_worker(scenario, migrate=False)


def test_readyz_passes_on_a_recent_run_another_replica_wrote(
    with_worker: Any, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    """This process ran nothing (a standby): the peer's run in the shared runs table makes it ready."""
    monkeypatch.setenv("SYNC_DATABASE_URL", database_url)

    async def scenario(w: Worker) -> None:
        w.record_run(NOW - timedelta(minutes=10))
        response = await w.client.get("/readyz")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["ready"] is True
        assert body["reasons"] == []
        assert body["checks"]["last_run"]["detail"] == "last run finished 600 s ago (limit 2700 s)"
        assert w.run.requests == []

    with_worker(scenario, migrate=True)


def test_readyz_fails_when_the_newest_run_in_the_database_is_too_old(
    with_worker: Any, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("SYNC_DATABASE_URL", database_url)

    async def scenario(w: Worker) -> None:
        w.record_run(NOW - timedelta(minutes=46))  # the fixture allows 45 minutes
        response = await w.client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["checks"]["last_run"]["ok"] is False
        assert body["reasons"] == ["last_run: last run too old: finished 2760 s ago (limit 2700 s)"]

    with_worker(scenario, migrate=True)


def test_readyz_counts_only_finished_reconciliations(with_worker: Any) -> None:
    """A webhook run touches a few people and a failed run reconciled nothing: neither keeps it ready."""

    async def scenario(w: Worker) -> None:
        w.record_run(NOW - timedelta(hours=2))
        w.record_run(NOW - timedelta(minutes=5), trigger="webhook")
        w.record_run(NOW - timedelta(minutes=4), status="failed")
        too_old = await w.client.get("/readyz")
        w.record_run(NOW - timedelta(minutes=3), trigger="manual", status="partial")
        fresh = await w.client.get("/readyz")
        assert too_old.status_code == 503
        assert too_old.json()["checks"]["last_run"]["detail"].startswith("last run too old: finished 7200 s")
        assert fresh.status_code == 200, fresh.text

    with_worker(scenario, migrate=True)


def test_readyz_allows_no_run_yet_shortly_after_start(with_worker: Any) -> None:
    async def scenario(w: Worker) -> None:
        response = await w.client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"]["last_run"]["detail"].startswith("no run yet")

    with_worker(scenario, migrate=True)


def test_readyz_fails_with_no_run_after_the_start_up_grace(with_worker: Any) -> None:
    async def scenario(w: Worker) -> None:
        w.readiness.started_at = NOW - timedelta(minutes=46)
        response = await w.client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["reasons"] == [
            "last_run: no run yet, started 2760 s ago, past the start-up grace of 2700 s"
        ]

    with_worker(scenario, migrate=True)


def test_readyz_fails_when_the_database_is_unreachable(
    with_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")

    async def scenario(w: Worker) -> None:
        response = await w.client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["checks"]["database"]["ok"] is False
        assert body["checks"]["last_run"] == {"ok": False, "detail": "unknown: database unreachable"}
        assert body["reasons"][0].startswith("database: unreachable")

    with_worker(scenario)


def test_readyz_fails_once_shutdown_has_begun(with_worker: Any) -> None:
    async def scenario(w: Worker) -> None:
        await w.dispatcher.drain(grace_seconds=0)
        response = await w.client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["reasons"] == ["shutting down: not accepting work"]
        assert (await w.client.get("/healthz")).json()["accepting_work"] is False

    with_worker(scenario, migrate=True)


def test_metrics_exposes_runs_pushes_outbox_retries_and_durations(with_worker: Any) -> None:
    async def scenario(w: Worker) -> None:
        w.metrics.count_push("mailchimp", "newsletter", accepted=True, n=3)
        w.metrics.count_push("klaviyo", "newsletter", accepted=False)
        w.metrics.count_vendor_calls("klaviyo", retries=4, rate_limited=2)
        w.metrics.set_outbox(12, 90.5)
        w.metrics.observe_run("success", "schedule", 1.5)
        response = await w.client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        for line in (
            'sync_changes_pushed_total{connector="mailchimp",purpose="newsletter"} 3.0',
            'sync_changes_failed_total{connector="klaviyo",purpose="newsletter"} 1.0',
            'sync_vendor_retries_total{connector="klaviyo"} 4.0',
            'sync_vendor_rate_limited_total{connector="klaviyo"} 2.0',
            "sync_outbox_depth 12.0",
            "sync_oldest_unpropagated_optout_age_seconds 90.5",
            'sync_runs_total{status="success",trigger="schedule"} 1.0',
            'sync_run_duration_seconds_bucket{le="2.0",trigger="schedule"} 1.0',
            'sync_run_duration_seconds_bucket{le="1.0",trigger="schedule"} 0.0',
        ):
            assert line in text, line

    with_worker(scenario)


def test_metrics_count_webhook_runs_by_status_and_trigger(with_worker: Any) -> None:
    async def scenario(w: Worker) -> None:
        await w.dispatcher.run(RunRequest(Trigger.WEBHOOK, emails=frozenset({"a@example.com"})))
        assert w.count("sync_runs_total", status="success", trigger="webhook") == 1
        assert w.count("sync_run_duration_seconds_count", trigger="webhook") == 1

    with_worker(scenario)


def test_outbox_gauges_can_be_read_at_scrape_time() -> None:
    metrics = Metrics()
    depth = [5]
    metrics.watch_outbox(lambda: depth[0], lambda: 30.0)
    assert metrics.registry.get_sample_value("sync_outbox_depth") == 5
    depth[0] = 0
    assert metrics.registry.get_sample_value("sync_outbox_depth") == 0


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.count_webhook("shopify", "accepted")
    assert (
        first.registry.get_sample_value("sync_webhooks_total", {"vendor": "shopify", "outcome": "accepted"})
        == 1
    )
    assert (
        second.registry.get_sample_value("sync_webhooks_total", {"vendor": "shopify", "outcome": "accepted"})
        is None
    )
