"""A full run of N synthetic people through all four vendor sandboxes in process, then a no-op run (issue 6).

Run by hand: ``.venv/bin/python -m benchmarks.full_run [people] [runs]``. Each repetition is a fresh
process: the sandboxes are seeded with the population (vendor state) and a fresh SQLite ledger with what
our own forms, checkout and postmaster recorded; then ``run_once`` with ``transport_for`` handing each
connector an ``httpx.ASGITransport`` onto its sandbox (full run), and ``run_once`` again (no-op run).
Requests are counted from the sandboxes' ``requests`` lists; push requests are compared with the
minimum the declared batch limits allow: per system and action, ceil(changes / batch_max).
"""

from __future__ import annotations

import json
import math
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
from sqlalchemy import func, select
from starlette.types import ASGIApp, Receive, Scope, Send

from benchmarks.population import cases, seed_vendors, write_ledger
from benchmarks.shop import machine, peak_rss_mib, purposes_by_system, sandboxes, settings
from connectors.registry import connector_class
from connectors.sandbox import Sandbox
from sync_worker import db, outbox
from sync_worker.outbox import DEFAULT_BATCH, OutboxItem
from sync_worker.rulebook import policy_from_settings, secret_of
from sync_worker.runner import run_once

PUSHING: Counter[str] = Counter()  # > 0 while the runner is inside outbox.push_system


async def _pushing(*args: Any, **kwargs: Any) -> Any:
    PUSHING["depth"] += 1
    try:
        return await _push_system(*args, **kwargs)
    finally:
        PUSHING["depth"] -= 1


_push_system = outbox.push_system
outbox.push_system = _pushing  # type: ignore[assignment]  # marks the push phase; the runner is unchanged


def counting(boxes: list[Sandbox], pushes: Counter[str]) -> dict[str, httpx.AsyncBaseTransport]:
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
            await app(scope, receive, send)

        return wrapped

    return {box.name: httpx.ASGITransport(app=counted(box.name, box.app)) for box in boxes}


def minimum_pushes(database_url: str, caps: dict[str, dict[str, int]]) -> dict[str, int]:
    """The fewest push requests the vendors' batch limits allow for the changes this run enqueued."""
    engine = db.make_engine(database_url)
    with engine.connect() as conn:
        table = OutboxItem.__table__.c  # type: ignore[attr-defined]
        rows = conn.execute(
            select(table.system, table.action, func.count()).group_by(table.system, table.action)
        )
        least: Counter[str] = Counter()
        for system, action, count in rows:
            least[system] += math.ceil(count / caps[system].get(action, DEFAULT_BATCH))
    engine.dispose()
    return dict(least)


def measure(n: int) -> None:
    boxes = sandboxes()
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
        for box in boxes:
            box.requests.clear()
        pushes: Counter[str] = Counter()
        wire = counting(boxes, pushes)
        start, cpu = time.perf_counter(), time.process_time()
        full = run_once(config, trigger="benchmark", transport_for=wire.get)
        full_s, full_cpu = time.perf_counter() - start, time.process_time() - cpu
        full_requests = {box.name: len(box.requests) for box in boxes}
        full_pushes = dict(pushes)
        for box in boxes:
            box.requests.clear()
        start, cpu = time.perf_counter(), time.process_time()
        quiet = run_once(config, trigger="benchmark", transport_for=counting(boxes, Counter()).get)
        quiet_s, quiet_cpu = time.perf_counter() - start, time.process_time() - cpu
        caps = {}
        for box in boxes:
            declared = connector_class(box.name).from_settings(config).capabilities().batch_max
            caps[box.name] = {action.value: size for action, size in declared.items()}
        least = minimum_pushes(config.database_url, caps)
    print(
        json.dumps(
            {
                "full_s": full_s,
                "full_cpu_s": full_cpu,
                "full_status": full.status,
                "counts": {k: vars(v) for k, v in full.counts.items()},
                "full_requests": full_requests,
                "full_pushes": full_pushes,
                "quiet_s": quiet_s,
                "quiet_cpu_s": quiet_cpu,
                "quiet_status": quiet.status,
                "quiet_changes": quiet.planned,
                "quiet_requests": {box.name: len(box.requests) for box in boxes},
                "least_pushes": least,
                "peak_rss_mib": peak_rss_mib(),
            }
        )
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.full_run", "--measure", str(n)],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    print(f"machine: {machine()}")
    print(
        f"full run of {n:,} people: median {statistics.median(r['full_s'] for r in results):.2f} s of {runs}"
    )
    print(f"no-op run: median {statistics.median(r['quiet_s'] for r in results):.2f} s")
    print(f"peak RSS: median {statistics.median(r['peak_rss_mib'] for r in results):.0f} MiB")


if __name__ == "__main__":
    if "--measure" in sys.argv:
        measure(int(sys.argv[sys.argv.index("--measure") + 1]))
    else:
        main()
