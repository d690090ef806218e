"""The service over real HTTP in a subprocess: it serves, schedules, reacts to a signed webhook at once,
and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

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
