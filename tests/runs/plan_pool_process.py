"""A run's process holding a planning pool: ``python plan_pool_process.py SQLITE_URL``.

Prints the pid of each of the pool's two processes (one line, space-separated) as soon as they are spawned,
then for each line read from stdin plans one batch through the pool and prints ``planned`` (or the error), as a run in the middle
of a pooled pass would. Its own SIGINT is handled as the service handles it (a graceful stop, not an
exception), so only the pool's processes could end the pass early.
"""

from __future__ import annotations

import signal
import sys
from concurrent.futures import wait
from datetime import UTC, datetime

from benchmarks.shop import sandboxes, settings
from sync_worker import db, plan_pool
from sync_worker.plan_pass import PlanJob
from sync_worker.reconciliation import FixedClock
from sync_worker.rulebook import policy_from_settings
from sync_worker.sql_ledger import SqlLedger

if __name__ == "__main__":
    signal.signal(signal.SIGINT, lambda *_: None)
    url = sys.argv[1]
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    config = settings(sandboxes(), url)
    ledger = SqlLedger(policy_from_settings(config), b"k", FixedClock(now))
    job = PlanJob(ledger, tuple(config.policy.purposes), {}, frozenset(), b"k", "r", now, False, True)
    pool = plan_pool.new_pool(db.make_engine(url), job, 2)
    # Two batches at once start both processes (the pool spawns one per batch while none is idle). Their
    # pids are printed at once: a signal may reach a process while it is still starting up.
    first = [plan_pool.start_batch(pool, [f"p{i}@example.nl"]) for i in range(2)]
    print(*sorted(pool._processes), flush=True)
    for _line in sys.stdin:
        try:
            wait(first)
            plan_pool.start_batch(pool, ["x@example.nl"]).result(timeout=30)
            print("planned", flush=True)
        except BaseException as error:  # what the pass would raise is the answer
            print(f"failed: {type(error).__name__}", flush=True)
    pool.shutdown()
