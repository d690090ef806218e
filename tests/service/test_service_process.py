"""The service over real HTTP in a subprocess: it serves, schedules, reacts to a signed webhook at once,
and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync_worker.web.webhooks.shopify import sign_shopify

SCRIPT = str(Path(__file__).with_name("service_process.py"))
SECRET = "shopify-test-secret"
STOP_WITHIN = 15.0  # seconds from SIGTERM to exit, with a generous margin for a loaded CI machine
pytestmark = pytest.mark.slow


class Service:
    def __init__(self, tmp_path: Path, **env: str) -> None:
        full_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SYNC_")},
            "SYNC_DATABASE_URL": f"sqlite:///{tmp_path}/ledger.db",
            "SYNC_HTTP__PORT": "0",
            "SYNC_SCHEDULE__INTERVAL_SECONDS": "3600",
            "SYNC_SHOPIFY__WEBHOOK_SECRET": SECRET,
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.process: subprocess.Popen[bytes] = subprocess.Popen(
            [sys.executable, SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env
        )
        self.seen: list[dict[str, Any]] = []
        self.buffer = b""
        self.selector = selectors.DefaultSelector()
        assert self.process.stdout is not None
        self.selector.register(self.process.stdout, selectors.EVENT_READ)

    def _next_line(self, deadline: float) -> str | None:
        # Raw reads with our own buffer: a buffered readline would hide lines from select().
        assert self.process.stdout is not None
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not self.selector.select(left):
                return None
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode("utf-8", "replace")

    def expect(self, event: str, timeout: float = 60, **fields: Any) -> dict[str, Any]:
        """The next output line with this event (and these fields); fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (line := self._next_line(deadline)) is not None:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # e.g. uvicorn's own plain-text lines
            self.seen.append(record)
            if record.get("event") == event and all(record.get(k) == v for k, v in fields.items()):
                return record
        raise AssertionError(
            f"no {event} {fields} within {timeout} s; saw {[r.get('event') for r in self.seen]}"
        )

    def stop(self) -> int:
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=STOP_WITHIN)
        assert time.monotonic() - started < STOP_WITHIN
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.selector.close()
        assert self.process.stdout is not None
        self.process.stdout.close()


def test_service_serves_schedules_reacts_to_a_signed_webhook_and_finishes_it_on_sigterm(
    tmp_path: Path,
) -> None:
    service = Service(tmp_path, SERVICE_TEST_WEBHOOK_RUN_SECONDS="3")
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
    service = Service(tmp_path, SERVICE_TEST_RUN_SECONDS="600", SYNC_HTTP__SHUTDOWN_GRACE_SECONDS="0.5")
    try:
        service.expect("test.run.started", trigger="schedule")
        assert service.stop() == 0
        service.expect("run.abandoned", trigger="schedule")
        service.expect("service.stopped", runs_finished=False)
        assert not any(r.get("event") == "test.run.finished" for r in service.seen)
    finally:
        service.close()
