"""A full run of N synthetic people through all four vendor sandboxes in process, then a no-op run (issue 6).

Run by hand: ``.venv/bin/python -m benchmarks.full_run [people] [runs] [--virtual-clock]``. Each
repetition is a fresh process: the sandboxes are seeded with the population (vendor state) and a fresh
SQLite ledger with what our own forms, checkout and postmaster recorded; then ``run_once`` with
``transport_for`` handing each connector an ``httpx.ASGITransport`` onto its sandbox (full run),
``run_once`` again right after (the run after), and once more (the quiet run: nothing changed since).
Requests are counted from the sandboxes' ``requests`` lists; push requests are compared with the fewest
the vendors' write endpoints allow (``benchmarks.least_requests``) and with the plain formula
ceil(changes / declared batch_max) per system and action. ``--virtual-clock``: the vendors' rate limits
and the connectors' pacing run on one virtual clock (``benchmarks.virtual_rates``); ``--full-only``:
no runs after the full run.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from benchmarks.least_requests import Row, least_requests
from benchmarks.population import cases, seed_vendors, write_ledger
from benchmarks.shop import machine, peak_rss_mib, purposes_by_system, sandboxes, settings
from benchmarks.virtual_rates import virtualise_runner, virtualise_sandboxes
from connectors.base import Change
from connectors.registry import connector_class
from connectors.sandbox import Sandbox
from connectors.virtual_time import VirtualClock
from sync_worker import db, outbox
from sync_worker.collector import tune_collector
from sync_worker.outbox import change_to_json
from sync_worker.rulebook import policy_from_settings, secret_of
from sync_worker.runner import run_once

PUSHING: Counter[str] = Counter()  # > 0 while the runner is inside outbox.push_system
PUSHED: dict[str, Row] = {}  # every change handed to a connector's push, by key (retries count once)


async def _pushing(*args: Any, **kwargs: Any) -> Any:
    PUSHING["depth"] += 1
    connector = args[1]
    if not hasattr(connector, "real_push"):
        # Erasures leave no outbox row behind (the address is forgotten), so changes are noted here.
        connector.real_push = connector.push

        async def noted(changes: list[Change]) -> Any:
            for c in changes:
                slot = c.purpose or (f"tag:{c.tag}" if c.tag else "*")
                PUSHED[c.key] = (c.system, c.email, slot, c.action.value, change_to_json(c))
            return await connector.real_push(changes)

        connector.push = noted
    try:
        return await _push_system(*args, **kwargs)
    finally:
        PUSHING["depth"] -= 1


_push_system = outbox.push_system
outbox.push_system = _pushing  # type: ignore[assignment]  # marks the push phase; the runner is unchanged


def endpoint(system: str, method: str, path: str) -> str:
    """``system METHOD /path`` with ids, hashes and API versions written as ``{}``."""
    parts = ["{}" if any(c.isdigit() for c in part) else part for part in path.split("/")]
    return f"{system} {method} {'/'.join(parts)}"


def counting(
    boxes: list[Sandbox], pushes: Counter[str], endpoints: Counter[str] | None = None
) -> dict[str, httpx.AsyncBaseTransport]:
    """In-process transports that also count the requests sent while pushing, per system.

    The sandboxes' ``requests`` lists hold (method, path) only, and neither path nor method tells a push
    from a pull (Shopify's pulls and pushes are all ``POST /graphql.json``, HubSpot pulls through POST
    search and batch reads): a request is a push request when the runner sends it from its push step,
    lookups and retries included.
    """

    def counted(name: str, app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if PUSHING["depth"] > 0:
                pushes[name] += 1
                if endpoints is not None:
                    endpoints[endpoint(name, scope["method"], scope["path"])] += 1
            await app(scope, receive, send)

        return wrapped

    return {box.name: httpx.ASGITransport(app=counted(box.name, box.app)) for box in boxes}


def timed_run(config: Any, boxes: list[Sandbox], clock: VirtualClock | None, **count: Any) -> dict[str, Any]:
    """One ``run_once``: wall and CPU seconds, status, changes, and requests per system."""
    for box in boxes:
        box.requests.clear()
    skipped = clock.skipped if clock else 0.0
    start, cpu = time.perf_counter(), time.process_time()
    report = run_once(config, trigger="benchmark", transport_for=counting(boxes, **count).get)
    return {
        "s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu,
        "virtual_wait_s": (clock.skipped - skipped) if clock else None,
        "status": report.status,
        "changes": report.planned,
        "counts": {k: vars(v) for k, v in report.counts.items()},
        "requests": {box.name: len(box.requests) for box in boxes},
    }


def measure(n: int, virtual: bool, full_only: bool = False) -> None:
    tune_collector()  # as the sync-worker command does before it runs anything
    boxes = sandboxes()
    clock = VirtualClock() if virtual else None
    if clock is not None:
        virtualise_sandboxes(boxes, clock)
        virtualise_runner(clock)
    with tempfile.TemporaryDirectory() as scratch:
        config = settings(boxes, f"sqlite:///{Path(scratch) / 'ledger.db'}")
        engine = db.make_engine(config.database_url)
        db.upgrade(engine)
        kinds = cases(n)
        now = datetime.now(UTC).replace(microsecond=0)
        write_ledger(
            engine, kinds, policy=policy_from_settings(config), secret=secret_of(config) or b"", now=now
        )
        engine.dispose()
        seed_vendors(boxes, kinds, purposes_by_system(boxes))
        pushes: Counter[str] = Counter()
        endpoints: Counter[str] = Counter()
        full = timed_run(config, boxes, clock, pushes=pushes, endpoints=endpoints)
        rows = list(PUSHED.values())  # the full run's changes only
        after = None if full_only else timed_run(config, boxes, clock, pushes=Counter())
        quiet = None if full_only else timed_run(config, boxes, clock, pushes=Counter())
        batch_max = {}
        for box in boxes:
            declared = connector_class(box.name).from_settings(config).capabilities().batch_max
            batch_max[box.name] = {action.value: size for action, size in declared.items()}
        least, formula = least_requests(rows, boxes, batch_max)
    print(
        json.dumps(
            {
                "people": n,
                "virtual_clock": virtual,
                "full": full,
                "full_pushes": dict(pushes),
                "push_endpoints": dict(sorted(endpoints.items())),
                "least_pushes": least,
                "formula_pushes": formula,
                "after": after,
                "quiet": quiet,
                "peak_rss_mib": peak_rss_mib(),
            }
        )
    )


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 100_000
    runs = int(args[1]) if len(args) > 1 else 3
    flags = [flag for flag in ("--virtual-clock", "--full-only") if flag in sys.argv]
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.full_run", "--measure", str(n), *flags],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    print(f"machine: {machine()}")
    clock = "virtual rate-limit clock" if "--virtual-clock" in flags else "real time"
    for phase in ("full",) if "--full-only" in flags else ("full", "after", "quiet"):
        times = [r[phase]["s"] for r in results]
        print(f"{phase} run of {n:,} people ({clock}): median {statistics.median(times):.2f} s of {runs}")
    pushed = [sum(r["full_pushes"].values()) for r in results]
    least = [sum(r["least_pushes"].values()) for r in results]
    ratios = sorted(p / m for p, m in zip(pushed, least, strict=True) if m)
    print(f"push requests / fewest the vendors allow: {ratios} (median {statistics.median(ratios):.2f})")
    print(f"peak RSS: median {statistics.median(r['peak_rss_mib'] for r in results):.0f} MiB")


if __name__ == "__main__":
    if "--measure" in sys.argv:
        size = int(sys.argv[sys.argv.index("--measure") + 1])
        measure(size, "--virtual-clock" in sys.argv, "--full-only" in sys.argv)
    else:
        main()
