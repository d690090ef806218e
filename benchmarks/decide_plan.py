"""Decide + plan from the ledger: N synthetic people x 4 purposes x 4 systems (issue 6, target < 30 s, < 400 MB).

Run by hand: ``.venv/bin/python -m benchmarks.decide_plan [people] [runs] [--ledger PATH]``.
The ledger (SQLite) and the runner's snapshot of four systems are written once (not timed; kept at PATH
so later calls reuse it); then each timed run is a fresh process, on a fresh copy of that file, that
walks the snapshot in chunks of 1,000 people as the runner plans: ``load_facts`` + ``decide_all``
(through the run's ``SqlLedger``), ``snapshot.load_seen`` and ``plan``. Each run's peak RSS is that
process's own; the stage split is in CPU seconds of the process (the machine is shared).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.population import cases, seen_of, write_ledger
from benchmarks.shop import machine, peak_rss_mib, purposes_by_system, sandboxes, settings
from connectors.registry import connector_class
from sync_worker import db, snapshot
from sync_worker.cli import freeze_startup_objects
from sync_worker.plan import Person, plan
from sync_worker.rulebook import policy_from_settings, secret_of
from sync_worker.sql_ledger import SqlLedger

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # fixed, so every run decides the same moment
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


def measure(path: Path) -> None:
    """One timed pass in this process: prints seconds, changes, people and peak RSS."""
    freeze_startup_objects()  # as the sync-worker command does before it runs anything
    boxes = sandboxes()
    config = settings(boxes, f"sqlite:///{path}")
    engine = db.make_engine(config.database_url)
    ledger = SqlLedger(policy_from_settings(config), secret_of(config), lambda: NOW)
    caps = {box.name: connector_class(box.name).from_settings(config).capabilities() for box in boxes}
    purposes = tuple(config.policy.purposes)
    start, cpu = time.perf_counter(), time.process_time()
    after, people, changes = "", 0, 0
    stages = {"decide": 0.0, "load_seen": 0.0, "plan": 0.0}
    while True:
        with engine.begin() as conn:
            batch = snapshot.next_people(conn, after, dirty_only=False, limit=CHUNK)
            if not batch:
                break
            mark = time.process_time()
            decisions = ledger.decide(conn, batch, purposes, NOW)
            stages["decide"] += time.process_time() - mark
            mark = time.process_time()
            seen = snapshot.load_seen(conn, batch)
            stages["load_seen"] += time.process_time() - mark
        mark = time.process_time()
        chunk = [
            Person(
                email,
                decisions.get(email, {}),
                seen.get(email, {}),
                quarantined=any(d.quarantined for d in decisions.get(email, {}).values()),
            )
            for email in batch
        ]
        changes += len(plan(chunk, caps, "bench"))
        stages["plan"] += time.process_time() - mark
        people += len(batch)
        after = batch[-1]
    elapsed = time.perf_counter() - start
    split = " ".join(f"{v:.3f}" for v in stages.values())
    print(f"{elapsed:.3f} {changes} {people} {peak_rss_mib():.0f} {split} {time.process_time() - cpu:.3f}")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 100_000
    runs = int(args[1]) if len(args) > 1 else 3
    path = (
        Path(sys.argv[sys.argv.index("--ledger") + 1])
        if "--ledger" in sys.argv
        else Path(f"/tmp/ledger-{n}.db")
    )
    if not path.exists():
        build(path, n)
    scratch = path.with_name(f"{path.stem}-run{path.suffix}")
    rows = []
    for _ in range(runs):
        shutil.copyfile(path, scratch)  # each repetition starts from the same untouched file
        try:
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.decide_plan", "--measure", str(scratch)],
                check=True, capture_output=True, text=True,
            ).stdout.split()  # fmt: skip
        finally:
            scratch.unlink()
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
    if "--measure" in sys.argv:
        measure(Path(sys.argv[sys.argv.index("--measure") + 1]))
    else:
        main()
