"""Webhook to run start: how long the service takes from a signed webhook being sent to the targeted run
starting, over real HTTP on loopback (uvicorn, the real app, verification and parsing included).

The run function here only records when it was called: this measures the service's part of the
"webhook to pushed everywhere" target (p95 < 2 s); the runner's targeted run adds its own time.

    python -m benchmarks.webhook_latency [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from config import load_settings
from sync_worker.logs import configure_logging
from sync_worker.service import serve_async
from sync_worker.trigger import RunRequest, RunStatus, RunSummary
from sync_worker.web.webhooks.shopify import sign_shopify

SECRET = "bench-secret"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_listening(client: httpx.Client, base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            client.get(f"{base}/healthz")
            return
        except httpx.ConnectError:
            time.sleep(0.05)
    raise SystemExit("the service did not start within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    configure_logging("json", "warning")
    started: dict[str, float] = {}
    arrived: dict[str, threading.Event] = {}

    async def run(request: RunRequest) -> RunSummary:
        for email in request.emails:
            started[email] = time.perf_counter()
            arrived[email].set()
        return RunSummary(RunStatus.SUCCESS)

    latencies: list[float] = []

    def send(base: str) -> None:
        with httpx.Client(timeout=10) as client:
            wait_until_listening(client, base)
            for i in range(args.requests):
                email = f"person{i}@example.com"
                arrived[email] = threading.Event()
                body = json.dumps(
                    {"id": i, "email": email, "email_marketing_consent": {"state": "unsubscribed"}}
                ).encode()
                headers = {**sign_shopify(SECRET, body), "X-Shopify-Topic": "customers/update"}
                sent = time.perf_counter()
                client.post(f"{base}/webhooks/shopify", content=body, headers=headers).raise_for_status()
                if not arrived[email].wait(10):
                    raise SystemExit(f"the run for request {i} never started")
                latencies.append(started[email] - sent)

    async def bench(tmp: str) -> None:
        port = free_port()
        settings = load_settings(
            database_url=f"sqlite:///{Path(tmp) / 'ledger.db'}",
            http={"host": "127.0.0.1", "port": port, "shutdown_grace_seconds": 5},
            schedule={"interval_seconds": 86400},
            shopify={"webhook_secret": SECRET},
        )
        stop = asyncio.Event()
        service = asyncio.create_task(serve_async(settings, run, stop=stop))
        # The client sends from its own thread, as a vendor would from its own machine.
        await asyncio.to_thread(send, f"http://127.0.0.1:{port}")
        stop.set()
        await service

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(bench(tmp))

    ms = [v * 1000 for v in latencies]
    print(
        json.dumps(
            {
                "benchmark": "webhook_to_run_start",
                "requests": len(ms),
                "median_ms": round(statistics.median(ms), 2),
                "p95_ms": round(percentile(ms, 95), 2),
                "max_ms": round(max(ms), 2),
                "target_ms": 2000,
                "p95_over_target": round(percentile(ms, 95) / 2000, 4),
                "machine": f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}",
            }
        )
    )


if __name__ == "__main__":
    main()
