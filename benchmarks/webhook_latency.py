"""Webhook latency over real HTTP on loopback (uvicorn, the real app, verification and parsing included).

Two measures:

- default: webhook sent -> run function called, with a run function that only notes the time. This is the
  service's own share of the "webhook to pushed everywhere" target (p95 < 2 s).
- ``--runner``: a person unsubscribes in one sandbox -> that person shows unsubscribed in the other three
  ("pushed everywhere"), with the real runner and all four vendor sandboxes served in this process over
  HTTP. Each sandbox sends its own signed webhook (``sandbox.webhooks``); the sources rotate over the
  vendors whose webhooks carry the new state (Mailchimp, Klaviyo, Shopify).

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
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from config import load_settings
from connectors.base import Status
from connectors.sandbox import free_port
from connectors.shopify.sandbox_data import CostBucket
from sync_worker.demo import CATALOG, available_sandboxes, grant_newsletter, serve_all, settings_for
from sync_worker.demo import SECRET as DEMO_SECRET
from sync_worker.logs import configure_logging
from sync_worker.service import runner_run_fn, serve_async
from sync_worker.trigger import RunFn, RunRequest, RunStatus, RunSummary
from sync_worker.web.webhooks.shopify import sign_shopify

SECRET = "bench-secret"
TARGET_SECONDS = 2.0
OFF = {Status.UNSUBSCRIBED, Status.NOT_SUBSCRIBED}


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
        self.finished["*"] = time.perf_counter()
        for email in request.emails:
            self.finished[email] = time.perf_counter()
            if email in self.done:
                self.done[email].set()
        return summary


SOURCES = ("mailchimp", "klaviyo", "shopify")
HOOK_SECRETS = {
    "shopify": "SYNC_SHOPIFY__WEBHOOK_SECRET",
    "hubspot": "SYNC_HUBSPOT__CLIENT_SECRET",
    "mailchimp": "SYNC_MAILCHIMP__WEBHOOK_SECRET",
    "klaviyo": "SYNC_KLAVIYO__WEBHOOK_SECRET",
}


@contextlib.contextmanager
def four_sandboxes(
    people: int, database_url: str, *, unlimited: bool
) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """Every vendor's sandbox with ``people`` newsletter subscribers, granted by our own form in the ledger."""
    boxes = {box.name: box for box in available_sandboxes(lambda _line: None)}
    # Near real time: Klaviyo and HubSpot sign with the sandbox clock, and the worker refuses stale webhooks.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    emails = [f"person{i}@example.com" for i in range(people)]
    for box in boxes.values():
        if unlimited and hasattr(box, "bucket"):  # Shopify's query-cost bucket refills in real time
            box.bucket = CostBucket(maximum=1e9, restore_rate=1e9)
        box.clock.set(start)
        for email in emails:
            box.add_contact(email, {"newsletter": Status.SUBSCRIBED})
    with serve_all(list(boxes.values())) as env:
        grant_newsletter(settings_for(env, database_url), emails, start)
        yield boxes, env


async def serve_while(settings: Any, probe: Probe, port: int, send: Callable[[str], None]) -> None:
    """Serve until ``send`` (on a thread of its own) has sent every webhook and seen its result."""
    stop = asyncio.Event()
    service = asyncio.create_task(serve_async(settings, probe, stop=stop))
    await asyncio.to_thread(send, f"http://127.0.0.1:{port}")
    stop.set()
    await service


def measure(requests: int, with_runner: bool, *, unlimited: bool = False) -> list[float]:
    if with_runner:
        return measure_everywhere(requests, unlimited=unlimited)
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port("127.0.0.1")
        # Settings as a deployment gives them: from the environment (JSON-valued ones included).
        os.environ.update(
            {
                "SYNC_DATABASE_URL": f"sqlite:///{Path(tmp) / 'ledger.db'}",
                "SYNC_SECRET_KEY": "bench-key",
                "SYNC_HTTP__HOST": "127.0.0.1",
                "SYNC_HTTP__PORT": str(port),
                "SYNC_SCHEDULE__INTERVAL_SECONDS": "86400",
                "SYNC_SHOPIFY__WEBHOOK_SECRET": SECRET,
            }
        )
        settings = load_settings()
        probe = Probe(None)

        def send(base: str) -> None:
            with httpx.Client(timeout=30) as client:
                wait_until_listening(client, base)
                for i in range(requests):
                    email = f"person{i}@example.com"
                    probe.done[email] = threading.Event()
                    body = json.dumps(
                        {"id": i, "email": email, "email_marketing_consent": {"state": "unsubscribed"}}
                    ).encode()
                    headers = {**sign_shopify(SECRET, body), "X-Shopify-Topic": "customers/update"}
                    sent = time.perf_counter()
                    client.post(f"{base}/webhooks/shopify", content=body, headers=headers).raise_for_status()
                    if not probe.done[email].wait(60):
                        raise SystemExit(f"the run for request {i} never finished")
                    latencies.append(probe.started[email] - sent)

        asyncio.run(serve_while(settings, probe, port, send))
    return latencies


def measure_everywhere(requests: int, *, unlimited: bool = False) -> list[float]:
    latencies: list[float] = []
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        database_url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        boxes, env = stack.enter_context(four_sandboxes(requests, database_url, unlimited=unlimited))
        port = free_port("127.0.0.1")
        os.environ.update(
            {
                **env,
                **{variable: f"{vendor}-bench-secret" for vendor, variable in HOOK_SECRETS.items()},
                "SYNC_DATABASE_URL": database_url,
                "SYNC_SECRET_KEY": DEMO_SECRET,
                "SYNC_COLLECTION_POINTS": json.dumps(CATALOG),
                "SYNC_HTTP__HOST": "127.0.0.1",
                "SYNC_HTTP__PORT": str(port),
                "SYNC_SCHEDULE__INTERVAL_SECONDS": "86400",
            }
        )
        settings = load_settings()
        probe = Probe(runner_run_fn(settings))

        def everywhere_off(email: str, source: str) -> bool:
            return all(
                box.status(email, "newsletter") in OFF for name, box in boxes.items() if name != source
            )

        def send(base: str) -> None:
            with httpx.Client(timeout=30) as client:
                wait_until_listening(client, base)
            deadline = time.monotonic() + 120
            while not probe.finished and time.monotonic() < deadline:  # the first (scheduled) run
                time.sleep(0.05)
            for vendor, box in boxes.items():
                box.webhooks.subscribe(base, f"{vendor}-bench-secret")
                box.clock.advance(1)
            for i in range(requests):
                email, source = f"person{i}@example.com", SOURCES[i % len(SOURCES)]
                boxes[source].clock.advance(1)  # the person acts after our last push there
                changed = time.perf_counter()
                boxes[source].set_status(email, "newsletter", Status.UNSUBSCRIBED)
                while not everywhere_off(email, source):
                    if time.perf_counter() - changed > 60:
                        raise SystemExit(f"{email} ({source}) was not pushed everywhere within 60 s")
                    time.sleep(0.002)
                latencies.append(time.perf_counter() - changed)
            for box in boxes.values():
                box.webhooks.close()

        asyncio.run(serve_while(settings, probe, port, send))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--runner", action="store_true", help="the real runner and all four sandboxes")
    parser.add_argument(
        "--unlimited-shopify-cost", action="store_true", help="no GraphQL cost bucket in the Shopify sandbox"
    )
    args = parser.parse_args()
    configure_logging("json", os.environ.get("BENCH_LOG_LEVEL", "warning"))
    ms = [v * 1000 for v in measure(args.requests, args.runner, unlimited=args.unlimited_shopify_cost)]
    p95 = percentile(ms, 95)
    print(
        json.dumps(
            {
                "benchmark": "vendor_change_to_pushed_everywhere" if args.runner else "webhook_to_run_start",
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
