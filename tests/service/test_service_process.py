"""The service over real HTTP in a subprocess: it serves, schedules, reacts to a signed webhook at once,
and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from sync_worker import db, runlog
from sync_worker.web.webhooks.shopify import sign_shopify
from tests.service.watched import Watched

SCRIPT = str(Path(__file__).with_name("service_process.py"))
SECRET = "shopify-test-secret"
pytestmark = pytest.mark.slow


def start_service(tmp_path: Path, **env: str) -> Watched:
    return Watched([sys.executable, SCRIPT], tmp_path, SYNC_SHOPIFY__WEBHOOK_SECRET=SECRET, **env)


def test_service_serves_schedules_reacts_to_a_signed_webhook_and_finishes_it_on_sigterm(
    tmp_path: Path,
) -> None:
    service = start_service(tmp_path, SERVICE_TEST_WEBHOOK_RUN_SECONDS="3")
    try:
        port = service.expect("service.listening")["port"]
        service.expect("test.run.started", trigger="schedule")  # first scheduled run at start
        service.expect("run.finished", trigger="schedule")
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/healthz").json()["status"] == "ok"
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.text  # migrations were applied on start
            body = json.dumps(
                {"id": 7, "email": "jan@example.com", "email_marketing_consent": {"state": "unsubscribed"}}
            ).encode()
            headers = {**sign_shopify(SECRET, body), "X-Shopify-Topic": "customers/update"}
            assert client.post("/webhooks/shopify", content=body, headers=headers).status_code == 200
            forged = client.post("/webhooks/shopify", content=body, headers=sign_shopify("wrong", body))
            assert forged.status_code == 401
            metrics = client.get("/metrics").text
            assert 'sync_webhooks_total{outcome="accepted",vendor="shopify"} 1.0' in metrics
            assert 'sync_webhooks_total{outcome="bad_signature",vendor="shopify"} 1.0' in metrics
            service.expect("test.run.started", trigger="webhook", emails=["jan@example.com"])
        # SIGTERM while the webhook's run is in flight: it finishes, then the process exits 0.
        assert service.stop() == 0
        service.expect("test.run.finished", trigger="webhook")
        service.expect("service.stopped", runs_finished=True)
        stopping = [r.get("event") for r in service.seen].index("service.stopping")
        after = service.seen[stopping:]
        assert {"event": "test.run.finished", "trigger": "webhook"} in after  # it was in flight at SIGTERM
        service.expect("test.clients.closed")
    finally:
        service.close()


def test_sigterm_abandons_a_batch_that_outlasts_the_grace_period_and_exits_0(tmp_path: Path) -> None:
    service = start_service(tmp_path, SERVICE_TEST_RUN_SECONDS="600", SYNC_HTTP__SHUTDOWN_GRACE_SECONDS="0.5")
    try:
        service.expect("test.run.started", trigger="schedule")
        assert service.stop() == 0
        service.expect("run.abandoned", trigger="schedule")
        service.expect("service.stopped", runs_finished=False)
        assert not any(r.get("event") == "test.run.finished" for r in service.seen)
    finally:
        service.close()


def test_readyz_of_a_replica_that_runs_nothing_itself_follows_the_shared_runs_table(tmp_path: Path) -> None:
    """The stand-in runs write no run rows, like a standby whose peer does the runs: its own finished
    runs do not make it ready, the peer's row in the shared database does."""
    service = start_service(tmp_path, SYNC_SCHEDULE__MAX_RUN_AGE_SECONDS="2")
    engine = db.make_engine(f"sqlite:///{tmp_path}/ledger.db")
    try:
        port = service.expect("service.listening")["port"]
        service.expect("run.finished", trigger="schedule", status="success")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 30
            while (waiting := client.get("/readyz")).status_code == 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert waiting.status_code == 503
            assert waiting.json()["reasons"][0].startswith("last_run: no run yet")
            with engine.begin() as conn:  # the peer's scheduled run
                now = datetime.now(UTC)
                runlog.start_run(conn, "peer-run", "schedule", False, now)
                runlog.finish_run(conn, "peer-run", status="success", counts={}, now=now, error=None)
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.text
        assert service.stop() == 0
    finally:
        engine.dispose()
        service.close()
