"""``sync-worker demo``: the whole story against local vendor sandboxes on a fresh SQLite ledger."""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sync_worker import db, demo, runlog
from sync_worker.logs import configure_logging
from sync_worker.runner import RunReport, run_once

DEMO_DIR = Path("data/demo")
LEDGER_NAME = "ledger.db"


def fresh_ledger_url(directory: Path) -> str:
    """Remove the previous demo ledger (with SQLite's WAL side files) and return the URL for a new one."""
    directory.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        (directory / f"{LEDGER_NAME}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{directory / LEDGER_NAME}"


def show_run(console: Console, url: str, report: RunReport) -> None:
    engine = db.make_engine(url)
    secret = demo.SECRET.encode()
    try:
        with engine.connect() as conn:
            everything = runlog.changes(conn, report.run_id)
            named = {
                case.email: runlog.changes(conn, report.run_id, key=runlog.person_key(secret, case.email))
                for case in demo.CASES
            }
    finally:
        engine.dispose()
    summary = report.summary()
    console.print(
        f"[bold]Run {report.run_id}[/bold] ({'dry run' if report.dry_run else 'pushed'}): status "
        f"{report.status}, {len(everything)} changes"
    )
    for name, counts in summary["connectors"].items():
        console.print(
            f"  {name}: pulled {counts['pulled']}, consent events {counts['events']}, echoes {counts['echoes']}, "
            f"changes {counts['planned']}, pushed {counts['pushed']}, failed {counts['failed']}"
        )
    if not everything:
        leftovers = sum(c["pushed"] for c in summary["connectors"].values())
        if leftovers:
            console.print(
                f"  nothing new to change; {leftovers} changes an earlier run could not push yet (the vendor's rate "
                "limit said retry later) were pushed now."
            )
        console.print("  nothing to change: every system already shows what the ledger allows.")
        return
    table = Table(title="The seed article's cases: what changed where, and why")
    for column in ("person", "story", "system", "purpose", "before -> after", "rule", "reason", "result"):
        table.add_column(column)
    for case in demo.CASES:
        rows = named[case.email]
        if not rows:
            table.add_row(case.email, case.story, "-", "-", "no change", "", "", "")
        for i, row in enumerate(rows):
            table.add_row(
                row["person"] if i else case.email, case.story if i == 0 else "", row["system"], row["slot"],
                f"{row['before']} -> {row['after']}", row["rule"], row["reason"], row["push_result"],
            )  # fmt: skip
    console.print(table)
    by_rule = Counter((row["rule"], row["action"]) for row in everything)
    console.print(
        "All changes of this run by rule: "
        + ", ".join(f"{r} {a} x{n}" for (r, a), n in sorted(by_rule.items()))
    )


def demo_command(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the demo ledger is created.")
    ] = DEMO_DIR,
    people: Annotated[int, typer.Option("--people", help="Shop customers besides the named cases.")] = 250,
) -> None:
    """Serve the vendor sandboxes on 127.0.0.1, seed a small shop, reconcile twice and print the log."""
    console = Console(width=220)
    configure_logging("console", "warning", stream=sys.stderr)
    console.print("sync-worker demo: vendor sandboxes on 127.0.0.1, a fresh SQLite ledger, two runs")
    boxes = demo.available_sandboxes(console.print)
    if not boxes:
        console.print("No vendor sandbox is available in this build: nothing to demonstrate.")
        raise typer.Exit(1)
    url = fresh_ledger_url(data_dir)
    rng = random.Random(2026)
    demo.seed_vendors(boxes, people, rng)
    with demo.serve_all(boxes) as env:
        settings = demo.settings_for(env, url)
        console.print(f"ledger: {url}; systems: {', '.join(settings.enabled_vendors())}")
        demo.seed_ledger(settings, people, rng, demo.now_utc())
        first = run_once(settings, trigger="demo")
        show_run(console, url, first)
        second = run_once(settings, trigger="demo")
        console.print()
        show_run(console, url, second)
    console.print("Read it again with `sync-worker log --contact EMAIL` (SYNC_DATABASE_URL=" + url + ").")
    # The second run tells whether everything converged; the first may be partial when a vendor's rate
    # limit made some pushes wait for a later run (the outbox retries them, as the second run shows).
    raise typer.Exit(second.exit_code)
