"""A long planning pass over processes plans and writes what one process does (sync_worker.plan_pool)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from structlog.testing import capture_logs

from benchmarks.population import cases, seen_of, write_ledger
from benchmarks.shop import purposes_by_system, sandboxes, settings
from connectors.base import Connector
from connectors.registry import connector_class
from sync_worker import db, due, plan_pool, reconciliation, snapshot
from sync_worker.outbox import ITEMS
from sync_worker.plan_pass import PlanJob
from sync_worker.reconciliation import FixedClock, Reconciliation
from sync_worker.rulebook import policy_from_settings, secret_of
from sync_worker.run_report import ConnectorCounts, RunReport
from sync_worker.runlog import CHANGES
from sync_worker.sql_ledger import SqlLedger

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PEOPLE = 1_800  # six batches of 300: two in the run's own process, four in the pool (POOL_AFTER = 2 here)


@pytest.fixture
def ledger_url(database_url: str) -> str:
    """The benchmarks' synthetic shop: every seed-article case, with the four systems' snapshot."""
    boxes = sandboxes()
    config = settings(boxes, database_url)
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    kinds = cases(PEOPLE)
    write_ledger(engine, kinds, policy=policy_from_settings(config), secret=secret_of(config) or b"", now=NOW)
    systems = purposes_by_system(boxes)
    with engine.begin() as conn:
        for system in systems:
            seen = {
                f"person{index:07d}@example.nl": one
                for index, kind in enumerate(kinds)
                for name, one in seen_of(index, kind, systems)
                if name == system
            }
            snapshot.save_seen(conn, system, seen, NOW)
    engine.dispose()
    return database_url


def _plan(url: str, run_id: str, *, processes: int, dry_run: bool) -> RunReport:
    """The runner's planning step over everyone (a full pass), with ``processes`` processes."""
    config = settings(sandboxes(), url)
    engine = db.make_engine(url)
    secret = secret_of(config) or b""
    clock = FixedClock(NOW)
    connectors: dict[str, Connector] = {
        name: connector_class(name).from_settings(config) for name in config.enabled_vendors()
    }
    planner = Reconciliation(
        engine,
        connectors,
        SqlLedger(policy_from_settings(config), secret, clock),
        tuple(config.policy.purposes),
        secret,
        clock,
        chunk=300,
        processes=processes,
    )
    report = RunReport(run_id, "manual", dry_run, NOW)
    report.counts = {name: ConnectorCounts() for name in connectors}
    planner._plan(report, NOW, None, full=True)

    async def close() -> None:
        for connector in connectors.values():
            await connector.aclose()

    asyncio.run(close())
    engine.dispose()
    return report


def _logged(engine: Engine, run_id: str) -> Counter[tuple[Any, ...]]:
    columns = [c for c in CHANGES.c if c.name not in ("id", "run_id", "outbox_key", "push_result")]
    with engine.connect() as conn:
        rows = conn.execute(select(*columns).where(CHANGES.c.run_id == run_id))
        return Counter(tuple(tuple(v) if isinstance(v, list) else v for v in row) for row in rows)


@pytest.fixture
def pool_used(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the batches the pool's processes planned; two batches go first in the run's own process."""
    used: Counter[str] = Counter()
    real = reconciliation.pooled

    def counted(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for tally in real(*args, **kwargs):
            used["batches"] += 1
            yield tally

    monkeypatch.setattr(reconciliation, "POOL_AFTER", 2)
    monkeypatch.setattr(reconciliation, "pooled", counted)
    return used


def test_a_pooled_pass_plans_and_writes_what_one_process_does(
    ledger_url: str, pool_used: Counter[str]
) -> None:
    # Dry runs write the run log alone, so both plan from the same state.
    alone = _plan(ledger_url, "alone", processes=1, dry_run=True)
    assert pool_used["batches"] == 0
    with capture_logs() as logs:
        pooled = _plan(ledger_url, "pooled", processes=2, dry_run=True)
    assert [e["processes"] for e in logs if e["event"] == "planning_over_processes"] == [2]
    assert pool_used["batches"] == 4
    engine = db.make_engine(ledger_url)
    logged = _logged(engine, "alone")
    assert sum(logged.values()) > PEOPLE  # the population drifts: about three changes a person
    assert _logged(engine, "pooled") == logged
    assert pooled.summary()["connectors"] == alone.summary()["connectors"]

    applied = _plan(ledger_url, "applied", processes=2, dry_run=False)
    assert pool_used["batches"] == 8
    assert _logged(engine, "applied") == logged
    assert applied.planned == alone.planned == sum(logged.values())
    with engine.connect() as conn:
        keys = conn.execute(select(CHANGES.c.outbox_key).where(CHANGES.c.run_id == "applied")).scalars()
        items = conn.execute(select(ITEMS.c.key).where(ITEMS.c.run_id == "applied")).scalars()
        assert sorted(items) == sorted(keys)
        assert conn.execute(text("SELECT count(*) FROM observed_person WHERE dirty")).scalar() == 0
        # Every person's next moment of change by time alone, as their decisions give it (R14, R6).
        config = settings(sandboxes(), ledger_url)
        ledger = SqlLedger(policy_from_settings(config), secret_of(config), FixedClock(NOW))
        emails = [f"person{i:07d}@example.nl" for i in range(PEOPLE)]
        decided = ledger.decide(conn, emails, tuple(config.policy.purposes), NOW)
        expected = {e: at for e in emails if (at := due.earliest(decided.get(e, {}).values())) is not None}
        stored = {e: _utc(at) for e, at in conn.execute(text("SELECT email, due_at FROM decision_due"))}
        assert expected
        assert stored == expected
    engine.dispose()


def _job(clock: Callable[[], datetime] | None = None, secret: bytes = b"k") -> PlanJob:
    """A run's planning job with the benchmarks' policy and no systems (a fixed clock unless given)."""
    config = settings(sandboxes(), "sqlite://")
    ledger = SqlLedger(policy_from_settings(config), secret, clock or FixedClock(NOW))
    return PlanJob(ledger, tuple(config.policy.purposes), {}, frozenset(), secret, "r", NOW, False, True)


def test_a_failing_batch_fails_the_pass(tmp_path: Path) -> None:
    empty = db.make_engine(f"sqlite:///{tmp_path}/no-tables.db")  # a batch's first read fails there
    with empty.connect():
        pass
    job = _job()
    with pytest.raises(Exception, match="no such table"):
        list(plan_pool.pooled(empty, job, [["a@example.nl"], ["b@example.nl"]], 2))


def test_what_cannot_go_to_another_process_is_planned_here(tmp_path: Path) -> None:
    job = _job()
    in_memory = db.make_engine("sqlite://")
    on_disk = db.make_engine(f"sqlite:///{tmp_path}/ledger.db")
    assert (
        plan_pool.why_not_pooled(in_memory, job) == "an in-memory SQLite database is private to its process"
    )
    assert plan_pool.why_not_pooled(on_disk, job) is None
    reason = plan_pool.why_not_pooled(on_disk, _job(clock=lambda: NOW))
    assert reason is not None
    assert reason.startswith("the run's planning state cannot go to another process")


POOL_PROCESS = Path(__file__).with_name("plan_pool_process.py")


@pytest.fixture
def pool_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """A run's process with a pool of two planning processes (tests/runs/plan_pool_process.py)."""
    engine = db.make_engine(f"sqlite:///{tmp_path}/ledger.db")
    db.upgrade(engine)
    engine.dispose()
    root = Path(__file__).resolve().parents[2]
    run = subprocess.Popen(
        [sys.executable, str(POOL_PROCESS), str(engine.url)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert run.stdout is not None
    children = [int(pid) for pid in run.stdout.readline().split()]
    assert len(children) == 2
    yield run, children
    run.kill()
    run.wait()
    for pid in children:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Running (not gone and not a zombie left for its new parent to reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_the_pool_leaves_signals_to_the_run(pool_process: tuple[subprocess.Popen[str], list[int]]) -> None:
    # Ctrl-C in a terminal (and systemd's stop) signals every process of the worker, the pool's too. The
    # run's process decides what that means (the service lets its run finish within the grace): a planning
    # process that died of it, or sent a KeyboardInterrupt back, failed or broke the service's run.
    run, children = pool_process
    assert run.stdin is not None
    assert run.stdout is not None
    for pid in children:
        os.kill(pid, signal.SIGINT)
        os.kill(pid, signal.SIGTERM)
    time.sleep(0.5)
    run.stdin.write("plan\n")
    run.stdin.flush()
    assert run.stdout.readline().strip() == "planned"
    assert all(_alive(pid) for pid in children)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_the_pool_ends_with_the_run(pool_process: tuple[subprocess.Popen[str], list[int]]) -> None:
    # A run killed outright (kill -9, the OOM killer) cannot shut its pool down: each planning process
    # notices on its own, instead of waiting forever for batches with a database connection open.
    run, children = pool_process
    run.kill()
    run.wait()
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in children)


def _utc(value: Any) -> datetime:
    """A stored time as UTC (SQLite hands back text or naive times)."""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "50000 100000\n"}, 1),  # cgroup v2: half a CPU (docker run --cpus 0.5)
        ({"cpu.max": "150000 100000\n"}, 2),  # one and a half: rounded up
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # cgroup v1
    ],
)
def test_a_containers_cpu_limit_bounds_the_processes(
    tmp_path: Path, files: dict[str, str], expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A container limited to some CPUs of a large host still sees every CPU of the host in its affinity:
    # one planning process per host CPU would each import the worker and hold a connection for a share
    # of a CPU, and could exceed the container's memory limit.
    monkeypatch.setattr(plan_pool.os, "sched_getaffinity", lambda _pid: set(range(64)), raising=False)
    for name, text_ in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text_)
    assert plan_pool.processes_available(tmp_path) == expected


def test_without_a_cpu_limit_every_cpu_of_the_process_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plan_pool.os, "sched_getaffinity", lambda _pid: {0, 1, 2}, raising=False)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert plan_pool.processes_available(tmp_path) == 3
    assert plan_pool.processes_available(tmp_path / "absent") == 3


def test_without_shared_locks_the_pass_stays_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A container without /dev/shm cannot build the pool's queues: the pass is planned in the run's process.
    context = multiprocessing.get_context("spawn")

    def no_lock() -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(type(context), "Lock", lambda _self: no_lock())
    reason = plan_pool.why_not_pooled(db.make_engine(f"sqlite:///{tmp_path}/ledger.db"), _job())
    assert reason == "this system gives processes no shared locks ([Errno 38] Function not implemented)"


def test_the_job_never_shows_its_secret() -> None:
    assert "very-secret-key" not in repr(_job(secret=b"very-secret-key"))
