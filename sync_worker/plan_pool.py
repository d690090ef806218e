"""A long planning pass spread over processes, each planning and writing batches of its own.

Deciding and planning are CPU-bound Python, and one process uses one core. Batches of different people
commit independently (``sync_worker.plan_pass``), so N processes plan N batches at once; only their writes
take turns (SQLite has one writer at a time and waits for it, ``timeout`` in ``db.make_engine``). What a
process sends back is a batch's small tally: the planned changes stay in the database it wrote them to.

The processes are spawned, not forked: the run may have threads (the service's scheduler and HTTP server)
whose locks a forked child would inherit held. Spawning costs each process its imports (about a second),
so a pass goes to the pool only once it has shown itself long (``POOL_AFTER`` batches planned in the run's
own process first).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

from sqlalchemy import Engine

from sync_worker import db
from sync_worker.collector import tune_collector
from sync_worker.plan_pass import PlanJob, Tally, plan_batch

POOL_AFTER = 20  # batches of 1,000: a pass of 20,000 people takes about 2 s in one process
CGROUP = Path("/sys/fs/cgroup")


def processes_available(cgroup: Path = CGROUP) -> int:
    """The CPUs this process may run on (a container's CPU set, where the OS tells it), and no more than a
    container's CPU limit grants (rounded up): limited to 2 CPUs of a 64-CPU host, a container still has
    all 64 in its CPU set, and 64 planning processes would each import the worker and hold a connection
    for a thirty-second of a CPU."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limit = _cpu_limit(cgroup)
    return max(1, min(cpus, limit) if limit else cpus)


def _cpu_limit(cgroup: Path) -> int | None:
    """The CPUs a container's CFS quota grants, rounded up; None without one. Read where a container sees
    its own cgroup: ``cpu.max`` (cgroup v2) or ``cpu/cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` (v1)."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    try:
        share, whole = int(quota), int(period)
    except ValueError:  # "max": no limit
        return None
    return -(-share // whole) if share > 0 and whole > 0 else None


def why_not_pooled(engine: Engine, job: PlanJob) -> str | None:
    """None when ``job`` can be planned by other processes against ``engine``'s database; else why not."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return "an in-memory SQLite database is private to its process"
    try:
        multiprocessing.get_context("spawn").Lock()  # what the pool's queues are built on
    except (OSError, ImportError) as error:  # e.g. no /dev/shm in the container
        return f"this system gives processes no shared locks ({error})"
    try:
        pickle.dumps(job)
    except (pickle.PicklingError, TypeError, AttributeError) as error:
        return f"the run's planning state cannot go to another process ({error})"
    return None


def pooled(engine: Engine, job: PlanJob, batches: Iterable[list[str]], processes: int) -> Iterator[Tally]:
    """Plan ``batches`` over ``processes`` processes; yields each batch's tally as it commits (any order).

    At most two batches per process are handed out ahead, so memory stays bounded however long the pass.
    The first failure is raised after the batches not yet started are cancelled.
    """
    pool = new_pool(engine, job, processes)
    pending: set[Future[Tally]] = set()
    try:
        for batch in batches:
            pending.add(start_batch(pool, batch))
            if len(pending) >= 2 * processes:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (future.result() for future in done)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (future.result() for future in done)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def new_pool(engine: Engine, job: PlanJob, processes: int) -> ProcessPoolExecutor:
    """Up to ``processes`` spawned processes, each planning ``job``'s batches against ``engine``'s database."""
    url = engine.url.render_as_string(hide_password=False)
    return ProcessPoolExecutor(
        processes, multiprocessing.get_context("spawn"), initializer=_start, initargs=(url, job)
    )


def start_batch(pool: ProcessPoolExecutor, batch: list[str]) -> Future[Tally]:
    """Hand ``batch`` to ``pool``; a process the pool starts for it starts with SIGINT and SIGTERM held
    (a mask survives the spawn), so one arriving while it imports waits for ``_start``, which ignores it.
    CPython's own resource tracker starts so."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _RUNS_SIGNALS) if _MASKABLE else None
    try:
        return pool.submit(_plan, batch)
    finally:
        if held is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)


_RUNS_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_MASKABLE = hasattr(signal, "pthread_sigmask")
_engine: Engine | None = None
_job: PlanJob | None = None


def _start(url: str, job: PlanJob) -> None:
    global _engine, _job
    # Signals are the run's to answer: Ctrl-C in a terminal and systemd's stop reach every process of the
    # worker, and a planning process that died of one (or sent its KeyboardInterrupt back as a batch's
    # result) would fail the run the service lets finish within its shutdown grace. The run's process
    # ends the pool (``pooled``'s shutdown), or its death does (``_end_with``).
    for signum in _RUNS_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    if _MASKABLE:  # held while this process started (``start_batch``): now ignored, so let go
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _RUNS_SIGNALS)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_end_with, args=(parent.sentinel,), name="parent", daemon=True).start()
    tune_collector()  # as the sync-worker command does at start-up
    _engine, _job = db.make_engine(url), job


def _end_with(parent: int) -> None:
    """Exit once the run's process is gone (kill -9, the OOM killer): nothing else would tell this one,
    which would wait for batches forever with its database connection open. A batch being planned is
    rolled back with its transaction; its people stay dirty for the next run."""
    multiprocessing.connection.wait([parent])
    os._exit(1)


def _plan(batch: list[str]) -> Tally:
    assert _engine is not None, "set by the pool's initializer"
    assert _job is not None, "set by the pool's initializer"
    return plan_batch(_engine, _job, batch)
