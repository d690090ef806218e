"""Decide + plan from the ledger: N synthetic people x 4 purposes x 4 systems (issue 6, target < 30 s, < 400 MB).

Run by hand: ``.venv/bin/python -m benchmarks.decide_plan [people] [runs] [--ledger PATH] [--workers N]``.
The ledger (SQLite) and the runner's snapshot of four systems are written once (not timed; kept at PATH
so later calls reuse it); then each timed run is a fresh process, on a fresh copy of that file, that
walks the snapshot in chunks of 1,000 people as the runner plans: ``load_facts`` + ``decide_all``
(through the run's ``SqlLedger``), ``snapshot.load_seen`` and ``plan``. Each run's peak RSS is that
process's own; the stage split is in CPU seconds of the process (the machine is shared).
With ``--workers N`` (N > 1) the chunks go to a pool of N spawned processes instead, each with its own
connection, as the runner's pool (``sync_worker.plan_pool``) plans a long pass: each process keeps the
changes it planned (the runner's write them itself) and sends back their count. The CPU seconds (start-up
of the processes included) and the stage split are then summed over all processes, and the peak RSS is
the largest of any one.
"""

from __future__ import annotations

import multiprocessing
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.planner import NOW, Planner, pooled_chunk, start_worker
from benchmarks.population import cases, seen_of, write_ledger
from benchmarks.shop import cpu_seconds, largest_rss_mib, machine, purposes_by_system, sandboxes, settings
from connectors.registry import connector_class
from sync_worker import db, snapshot
from sync_worker.collector import tune_collector
from sync_worker.reconciliation import FixedClock
from sync_worker.rulebook import policy_from_settings, secret_of
from sync_worker.sql_ledger import SqlLedger

CHUNK = 1_000


def build(path: Path, n: int) -> None:
    boxes = sandboxes()
    config = settings(boxes, f"sqlite:///{path}")
    engine = db.make_engine(config.database_url)
    db.upgrade(engine)
    kinds = cases(n)
    start = time.perf_counter()
    write_ledger(engine, kinds, policy=policy_from_settings(config), secret=secret_of(config) or b"", now=NOW)
    systems = purposes_by_system(boxes)
    for offset in range(0, n, 20_000):
        with engine.begin() as conn:
            for system in systems:
                seen = {}
                for index in range(offset, min(offset + 20_000, n)):
                    for name, one in seen_of(index, kinds[index], systems):
                        if name == system:
                            seen[f"person{index:07d}@example.nl"] = one
                snapshot.save_seen(conn, system, seen, NOW)
    engine.dispose()
    print(f"built {n:,} people in {time.perf_counter() - start:.0f} s at {path}", flush=True)


def planner_for(path: Path) -> Planner:
    """The planner of the benchmark's ledger at ``path``: its four systems' capabilities and the policy."""
    boxes = sandboxes()
    config = settings(boxes, f"sqlite:///{path}")
    ledger = SqlLedger(policy_from_settings(config), secret_of(config), FixedClock(NOW))
    caps = {box.name: connector_class(box.name).from_settings(config).capabilities() for box in boxes}
    return Planner(config.database_url, ledger, caps, tuple(config.policy.purposes))


def measure(path: Path, workers: int) -> None:
    """One timed pass in this process (and ``workers`` pool processes if > 1): prints seconds, changes,
    people, peak RSS, the stage split and the CPU seconds of all processes."""
    tune_collector()  # as the sync-worker command does before it runs anything
    # Set up before the clock, as always: a run has its connectors' capabilities before it plans.
    planner = planner_for(path)
    start, cpu = time.perf_counter(), cpu_seconds()
    stages = {"decide": 0.0, "load_seen": 0.0, "plan": 0.0}
    if workers > 1:
        changes, people = _measure_pool(planner, workers, stages)
    else:
        after, people, changes = "", 0, 0
        while True:
            with planner.engine.begin() as conn:
                batch = snapshot.next_people(conn, after, dirty_only=False, limit=CHUNK)
                if not batch:
                    break
                read = planner.read(conn, batch, stages)
            changes += len(planner.plan(batch, read, stages))
            people += len(batch)
            after = batch[-1]
    elapsed = time.perf_counter() - start
    total_cpu = cpu_seconds() - cpu
    rss = largest_rss_mib()
    split = " ".join(f"{v:.3f}" for v in stages.values())
    print(f"{elapsed:.3f} {changes} {people} {rss:.0f} {split} {total_cpu:.3f}")


def _measure_pool(planner: Planner, workers: int, stages: dict[str, float]) -> tuple[int, int]:
    """The same chunks over a pool of spawned processes, as the runner's pool starts them; the parent only
    pages the snapshot, hands the chunks out and adds up."""
    engine = db.make_engine(planner.url)  # the parent's own: the planner goes to the processes unconnected

    def batches() -> Iterator[list[str]]:
        after = ""
        while True:
            with engine.connect() as conn:
                batch = snapshot.next_people(conn, after, dirty_only=False, limit=CHUNK)
            if not batch:
                return
            yield batch
            after = batch[-1]

    changes = people = 0
    # Sent to each process, as the runner sends its planning job (sync_worker.plan_pool).
    with multiprocessing.get_context("spawn").Pool(workers, start_worker, (planner,)) as pool:
        for size, planned, split in pool.imap(pooled_chunk, batches()):
            changes += planned
            people += size
            for stage, seconds in split.items():
                stages[stage] += seconds
        pool.close()
        pool.join()  # reaped, so that their CPU and peak RSS count among the children
    engine.dispose()
    return changes, people


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]  # people and runs come first
    n = int(args[0]) if args else 100_000
    runs = int(args[1]) if len(args) > 1 else 3
    workers = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else 1
    path = (
        Path(sys.argv[sys.argv.index("--ledger") + 1])
        if "--ledger" in sys.argv
        else Path(f"/tmp/ledger-{n}.db")
    )
    if not path.exists():
        # Built in a process of its own: on Linux a child's peak RSS (ru_maxrss) starts from that of the
        # process that forked it, so a build in this process would be counted in every run's peak.
        subprocess.run(
            [sys.executable, "-m", "benchmarks.decide_plan", "--build", str(path), str(n)], check=True
        )
    scratch = path.with_name(f"{path.stem}-run{path.suffix}")
    rows = []
    for _ in range(runs):
        shutil.copyfile(path, scratch)  # each repetition starts from the same untouched file
        try:
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.decide_plan", "--measure", str(scratch), "--workers", str(workers)],
                check=True, capture_output=True, text=True,
            ).stdout.split()  # fmt: skip
        finally:
            for leftover in (scratch, Path(f"{scratch}-wal"), Path(f"{scratch}-shm")):
                leftover.unlink(missing_ok=True)  # pool workers end without closing their connections
        rows.append([float(x) for x in out])
        # wall s, changes, people, peak RSS MiB, CPU s of decide / load_seen / plan, CPU s of the process
        print(" ".join(out), flush=True)
    median = [statistics.median(column) for column in zip(*rows, strict=True)]
    wall, changes, people, rss, decide, seen, planned, cpu = median
    print(f"machine: {machine()}")
    print(
        f"decide + plan, {int(people):,} people x 4 purposes x {len(sandboxes())} systems, {int(changes):,} changes; "
        f"medians of {runs} runs: wall {wall:.2f} s [{', '.join(f'{r[0]:.2f}' for r in rows)}], "
        f"CPU {cpu:.2f} s [{', '.join(f'{r[7]:.2f}' for r in rows)}] (decide {decide:.2f}, load_seen {seen:.2f}, "
        f"plan {planned:.2f}, rest {cpu - decide - seen - planned:.2f}), "
        f"peak RSS {rss:.0f} MiB (max {max(r[3] for r in rows):.0f})"
    )


if __name__ == "__main__":
    if "--build" in sys.argv:
        at = sys.argv.index("--build")
        build(Path(sys.argv[at + 1]), int(sys.argv[at + 2]))
    elif "--measure" in sys.argv:
        workers = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else 1
        measure(Path(sys.argv[sys.argv.index("--measure") + 1]), workers)
    else:
        main()
