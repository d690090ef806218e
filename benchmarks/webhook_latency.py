"""Webhook latency over real HTTP on loopback (uvicorn, the real app, verification and parsing included).

Two measures:

- default: webhook sent -> run function called, with a run function that only notes the time. This is the
  service's own share of the "webhook to pushed everywhere" target (p95 < 2 s).
- ``--runner``: webhook sent -> run finished, with the real runner against the Shopify sandbox (served in
  this process over HTTP): before each webhook one customer unsubscribes in the sandbox, and the run the
  webhook starts pulls, records, decides and pushes.

    python -m benchmarks.webhook_latency [--requests 300] [--runner]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from config import load_settings
from connectors.base import Status
from connectors.registry import sandbox_class
from connectors.sandbox import free_port, served
from sync_worker.logs import configure_logging
from sync_worker.service import runner_run_fn, serve_async
from sync_worker.trigger import RunFn, RunRequest, RunStatus, RunSummary
from sync_worker.web.webhooks.shopify import sign_shopify

SECRET = "bench-secret"
TARGET_SECONDS = 2.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def wait_until_listening(client: httpx.Client, base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.ConnectError):
            client.get(f"{base}/healthz")
            return
        time.sleep(0.05)
    raise SystemExit("the service did not start within 60 s")


class Probe:
    """Wraps a run function: notes when each person's run started and finished."""

    def __init__(self, inner: RunFn | None) -> None:
        self.inner = inner
        self.started: dict[str, float] = {}
        self.finished: dict[str, float] = {}
        self.done: dict[str, threading.Event] = {}

    async def __call__(self, request: RunRequest) -> RunSummary:
        for email in request.emails:
            self.started[email] = time.perf_counter()
        summary = await self.inner(request) if self.inner else RunSummary(RunStatus.SUCCESS)
        for email in request.emails:
            self.finished[email] = time.perf_counter()
            self.done[email].set()
        return summary


@contextlib.contextmanager
def shopify_sandbox(people: int) -> Iterator[tuple[Any, dict[str, str]]]:
    sandbox = sandbox_class("shopify")()
    for i in range(people):
        sandbox.add_contact(f"person{i}@example.com", {"newsletter": Status.SUBSCRIBED})
    with served(sandbox.app) as base:
        yield sandbox, sandbox.settings_env(base)


def measure(requests: int, with_runner: bool) -> list[float]:
    latencies: list[float] = []
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        sandbox, env = stack.enter_context(shopify_sandbox(requests)) if with_runner else (None, {})
        port = free_port("127.0.0.1")
        # Settings as a deployment gives them: from the environment (JSON-valued ones included).
        os.environ.update(
            {
                **env,
                "SYNC_DATABASE_URL": f"sqlite:///{Path(tmp) / 'ledger.db'}",
                "SYNC_SECRET_KEY": "bench-key",
                "SYNC_HTTP__HOST": "127.0.0.1",
                "SYNC_HTTP__PORT": str(port),
                "SYNC_SCHEDULE__INTERVAL_SECONDS": "86400",
                "SYNC_SHOPIFY__WEBHOOK_SECRET": SECRET,
            }
        )
        settings = load_settings()
        probe = Probe(runner_run_fn(settings) if with_runner else None)
        seen = probe.finished if with_runner else probe.started

        def send(base: str) -> None:
            with httpx.Client(timeout=30) as client:
                wait_until_listening(client, base)
                if with_runner:  # the first (scheduled) run reads everyone once; wait for it
                    probe.done["person0@example.com"] = threading.Event()
                for i in range(requests):
                    email = f"person{i}@example.com"
                    probe.done[email] = threading.Event()
                    if sandbox is not None:
                        sandbox.set_status(email, "newsletter", Status.UNSUBSCRIBED)
                    body = json.dumps(
                        {"id": i, "email": email, "email_marketing_consent": {"state": "unsubscribed"}}
                    ).encode()
                    headers = {**sign_shopify(SECRET, body), "X-Shopify-Topic": "customers/update"}
                    sent = time.perf_counter()
                    client.post(f"{base}/webhooks/shopify", content=body, headers=headers).raise_for_status()
                    if not probe.done[email].wait(60):
                        raise SystemExit(f"the run for request {i} never finished")
                    latencies.append(seen[email] - sent)

        async def bench() -> None:
            stop = asyncio.Event()
            service = asyncio.create_task(serve_async(settings, probe, stop=stop))
            await asyncio.to_thread(send, f"http://127.0.0.1:{port}")
            stop.set()
            await service

        asyncio.run(bench())
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--runner", action="store_true", help="the real runner and the Shopify sandbox")
    args = parser.parse_args()
    configure_logging("json", os.environ.get("BENCH_LOG_LEVEL", "warning"))
    ms = [v * 1000 for v in measure(args.requests, args.runner)]
    p95 = percentile(ms, 95)
    print(
        json.dumps(
            {
                "benchmark": "webhook_to_run_finished" if args.runner else "webhook_to_run_start",
                "requests": len(ms),
                "median_ms": round(statistics.median(ms), 2),
                "p95_ms": round(p95, 2),
                "max_ms": round(max(ms), 2),
                "p95_over_target": round(p95 / (TARGET_SECONDS * 1000), 4),
                "machine": f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}",
            }
        )
    )


if __name__ == "__main__":
    main()
