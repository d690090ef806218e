"""The runner's planning passes on a converged ledger: the full pass, then the incremental ones.

Run by hand: ``.venv/bin/python -m benchmarks.incremental_plan LEDGER [runs] [--processes N]``, where LEDGER is a ledger
written by ``benchmarks.decide_plan`` (kept at ``/tmp/ledger-N.db``). Each repetition is a fresh process
on a fresh copy of it and runs the runner's own planning step (``Reconciliation._plan``: decide, plan,
log, outbox, decision_due) four times with no pull in between:

1. ``full``: everyone, as the first run or ``run --full`` does (all the writes included);
2. ``quiet``: an incremental pass at the same moment: nothing is dirty and no decision is due;
3. ``month`` and ``two-years``: incremental passes 30 and 730 days later: the people whose decision time
   alone may have changed by then (a soft opt-in window ending, R14; a double opt-in left unconfirmed, R6).

Printed per pass: wall seconds, CPU seconds, people decided and changes planned. ``--processes N`` lets a
long pass use N processes (``sync_worker.plan_pool``; default 1): its CPU seconds then include the pool's
processes, and the peak RSS is the largest of any one process.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from benchmarks.decide_plan import NOW
from benchmarks.shop import cpu_seconds, largest_rss_mib, machine, sandboxes, settings
from connectors.base import Connector
from connectors.registry import connector_class
from sync_worker import db
from sync_worker.collector import tune_collector
from sync_worker.reconciliation import FixedClock
from sync_worker.rulebook import policy_from_settings, secret_of
from sync_worker.runner import ConnectorCounts, Reconciliation, RunReport
from sync_worker.sql_ledger import SqlLedger

PASSES = (
    ("full", timedelta(0), True),
    ("quiet", timedelta(0), False),
    ("month", timedelta(days=30), False),
    ("two-years", timedelta(days=730), False),
)


def measure(path: Path, processes: int) -> None:
    tune_collector()
    config = settings(sandboxes(), f"sqlite:///{path}")
    engine = db.make_engine(config.database_url)
    db.upgrade(engine)
    secret = secret_of(config) or b""
    connectors: dict[str, Connector] = {
        name: connector_class(name).from_settings(config) for name in config.enabled_vendors()
    }
    out: list[str] = []
    for label, later, full in PASSES:
        moment = NOW + later
        clock = FixedClock(moment)
        ledger = SqlLedger(policy_from_settings(config), secret, clock)
        planner = Reconciliation(
            engine, connectors, ledger, tuple(config.policy.purposes), secret, clock, processes=processes
        )
        people = 0
        walk = planner._people  # wrapped below to count the people each pass decides

        def counted(*, dirty_only: bool, now: object, walk=walk) -> object:  # type: ignore[no-untyped-def]
            nonlocal people
            for batch in walk(dirty_only=dirty_only, now=now):
                people += len(batch)
                yield batch

        planner._people = counted  # type: ignore[method-assign]
        report = RunReport(f"bench-{label}", "manual", False, moment)
        report.counts = {name: ConnectorCounts() for name in connectors}
        start, cpu = time.perf_counter(), cpu_seconds()
        planner._plan(report, moment, None, full)  # the planning step alone, no pull or push
        out.append(f"{time.perf_counter() - start:.3f} {cpu_seconds() - cpu:.3f} {people} {report.planned}")
    asyncio.run(_close(connectors))
    print(" ".join(out), f"{largest_rss_mib():.0f}")


async def _close(connectors: dict[str, Connector]) -> None:
    for connector in connectors.values():
        await connector.aclose()


def main() -> None:
    path = Path(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 and not sys.argv[2].startswith("--") else 3
    processes = sys.argv[sys.argv.index("--processes") + 1] if "--processes" in sys.argv else "1"
    scratch = path.with_name(f"{path.stem}-incremental{path.suffix}")
    rows = []
    for _ in range(runs):
        shutil.copyfile(path, scratch)
        try:
            # The figures are the last line; a run's log lines (a pooled pass says so) come before.
            line = subprocess.run(
                [sys.executable, "-m", "benchmarks.incremental_plan", "--measure", str(scratch), "--processes", processes],
                check=True, capture_output=True, text=True,
            ).stdout.splitlines()[-1].split()  # fmt: skip
        finally:
            for leftover in (scratch, Path(f"{scratch}-wal"), Path(f"{scratch}-shm")):
                leftover.unlink(missing_ok=True)
        rows.append([float(x) for x in line])
        print(" ".join(line), flush=True)
    print(f"machine: {machine()}")
    for index, (label, _, _) in enumerate(PASSES):
        wall, cpu, people, changes = (statistics.median(r[index * 4 + k] for r in rows) for k in range(4))
        print(
            f"{label}: median wall {wall:.2f} s, CPU {cpu:.2f} s, {int(people):,} people, {int(changes):,} changes"
        )
    print(f"peak RSS: median {statistics.median(r[-1] for r in rows):.0f} MiB")


if __name__ == "__main__":
    if "--measure" in sys.argv:
        measure(
            Path(sys.argv[sys.argv.index("--measure") + 1]), int(sys.argv[sys.argv.index("--processes") + 1])
        )
    else:
        main()
