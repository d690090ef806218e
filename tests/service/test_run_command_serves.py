"""`sync-worker run` end to end over real HTTP with the real runner and the Shopify sandbox: it schedules a
run at start, and a signed webhook starts a run at once that records the vendor's change."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

from connectors.base import Status
from connectors.registry import sandbox_class
from connectors.sandbox import served
from sync_worker.web.webhooks.shopify import sign_shopify
from tests.service.watched import Watched

SECRET = "shopify-webhook-secret"
pytestmark = pytest.mark.slow


def test_sync_worker_run_schedules_and_reacts_to_a_signed_webhook_with_a_real_run(tmp_path: Path) -> None:
    sandbox = sandbox_class("shopify")()
    sandbox.seed_demo()
    sandbox.add_contact("jan@example.com", {"newsletter": Status.SUBSCRIBED})
    with served(sandbox.app) as base:
        service = Watched(
            [sys.executable, "-m", "sync_worker", "run"],
            tmp_path,
            **sandbox.settings_env(base),
            SYNC_SHOPIFY__WEBHOOK_SECRET=SECRET,
            SYNC_SECRET_KEY="e2e-secret",
            SYNC_LOG_FORMAT="json",
            # The shop's checkout asks for the newsletter properly: Jan's subscription is attested (R5), so
            # the scheduled run leaves him subscribed and his unsubscribe below is his own act.
            SYNC_COLLECTION_POINTS=json.dumps(
                {"shopify:checkout": {"purposes": ["newsletter"], "authenticated": True}}
            ),
        )
        try:
            port = service.expect("service.listening")["port"]
            service.expect("run.finished", trigger="schedule", status="success")
            # Jan unsubscribes in Shopify, and Shopify tells the worker.
            sandbox.set_status("jan@example.com", "newsletter", Status.UNSUBSCRIBED)
            body = json.dumps(
                {"id": 1, "email": "jan@example.com", "email_marketing_consent": {"state": "unsubscribed"}}
            ).encode()
            headers = {**sign_shopify(SECRET, body), "X-Shopify-Topic": "customers/update"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                assert client.post("/webhooks/shopify", content=body, headers=headers).status_code == 200
                summary = service.expect("run_summary", trigger="webhook")
                assert summary["status"] == "success"
                assert summary["connectors"]["shopify"]["events"] >= 1  # the unsubscribe was recorded
                assert client.get("/readyz").status_code == 200
            assert service.stop() == 0
        finally:
            service.close()
