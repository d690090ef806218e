"""``sync-worker run --once``, ``runs`` and ``log``: one reconciliation run and the reconciliation log."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from config import load_settings
from sync_worker import db, runlog
from sync_worker.cli.ledger_shell import email_argument
from sync_worker.cli.progress_bars import ProgressBars
from sync_worker.logs import configure_logging
from sync_worker.rulebook import secret_of
from sync_worker.runner import NothingToRunError, run_once

JSON = typer.Option(False, "--json", help="Print JSON for scripts.")

# The one clock of these commands; tests replace it instead of freezing time.
clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731
# Where progress bars would go; tests give a Console that claims to be a terminal.
stderr_console: Callable[[], Console] = lambda: Console(stderr=True)  # noqa: E731


def run(
    once: bool = typer.Option(False, "--once", help="Run one reconciliation and exit (no service)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan and log, push nothing."),
    connector: str | None = typer.Option(None, "--connector", help="Only this connector."),
    full: bool = typer.Option(
        False, "--full", help="Re-read everything instead of changes since the cursor."
    ),
) -> None:
    """Serve: scheduled runs, webhooks, /healthz, /readyz and /metrics (the container's default command).

    With --once: one reconciliation run (pull, decide, push, log) that prints one JSON summary line.
    Exit code: 0 success, 1 partial (some vendor or record failed), 2 failed.
    """
    settings = load_settings()
    if not once:
        if not settings.enabled_vendors():
            # Fail fast: a container that serves without a connector would look healthy and do nothing.
            typer.echo(
                "sync-worker run: service mode needs at least one configured connector; "
                "`sync-worker config check` shows what each one misses.",
                err=True,
            )
            raise typer.Exit(2)
        configure_logging(settings.log_format, settings.log_level, settings.log_show_emails)
        from sync_worker.service import runner_run_fn, serve

        raise typer.Exit(serve(settings, runner_run_fn(settings, dry_run=dry_run, full=full)))
    console = stderr_console()
    # Bars only for a person watching: a pipe or a log collector gets the summary line alone.
    bars = ProgressBars(console) if console.is_terminal else None
    try:
        with bars or nullcontext():
            # stdout carries the summary line for log collectors; the run's own log lines go to stderr
            # (configured after the bars start, so that log lines print above the live bars).
            configure_logging(
                settings.log_format, settings.log_level, settings.log_show_emails, stream=sys.stderr
            )
            report = run_once(
                settings, trigger="manual", dry_run=dry_run, only=connector, full=full, clock=clock,
                progress=bars, take_leases=True,
            )  # fmt: skip
    except NothingToRunError as error:
        typer.echo(f"sync-worker run: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(report.summary(), default=str))
    raise typer.Exit(report.exit_code)


def _engine() -> Any:
    settings = load_settings()
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine)
    return engine, secret_of(settings) or b""


def runs(
    limit: int = typer.Option(20, "--limit", help="How many of the latest runs."), as_json: bool = JSON
) -> None:
    """The latest runs: trigger, time, dry run or not, status and per connector counts."""
    engine, _ = _engine()
    with engine.connect() as conn:
        rows = runlog.runs(conn, limit)
    if as_json:
        typer.echo(json.dumps(rows, default=str, indent=2))
        return
    table = Table(title="Reconciliation runs (newest first)")
    for column in ("run", "trigger", "started", "seconds", "dry run", "status", "per connector"):
        table.add_column(column)
    for row in rows:
        ended, started = row["ended_at"], row["started_at"]
        seconds = f"{(ended - started).total_seconds():.1f}" if ended else "-"
        counts = row["counts"] or {}
        per = "; ".join(
            f"{name}: pulled {c['pulled']}, events {c['events']}, echoes {c['echoes']}, "
            f"planned {c['planned']}, pushed {c['pushed']}, failed {c['failed']}, gone {c.get('gone', 0)}, "
            f"stopped {c.get('stopped', 0)}, "
            f"rejected {c['rejected_records']}" + (f", error: {c['error']}" if c.get("error") else "")
            for name, c in sorted(counts.items())
        )
        table.add_row(
            row["id"], row["trigger"], str(started)[:19], seconds, "yes" if row["dry_run"] else "no",
            row["status"], per,
        )  # fmt: skip
    Console(width=200).print(table)


def log(
    run_id: str | None = typer.Argument(None, metavar="[RUN]", help="Run id (default: the latest run)."),
    contact: str | None = typer.Option(
        None, "--contact", help="Only this person (every run if RUN is absent)."
    ),
    system: str | None = typer.Option(None, "--system", help="Only this system."),
    as_json: bool = JSON,
) -> None:
    """What changed where and why: person (masked), system, purpose, before -> after, rule, reason, result."""
    engine, secret = _engine()
    key = runlog.person_key(secret, email_argument(contact)) if contact else None
    with engine.connect() as conn:
        if run_id is None and key is None:
            run_id = runlog.latest_run_id(conn)
            if run_id is None:
                typer.echo("No runs yet: start one with `sync-worker run --once`.", err=True)
                raise typer.Exit(1)
        changes = runlog.changes(conn, run_id, key=key, system=system)
        rejected = runlog.rejected(conn, run_id) if run_id else []
    if as_json:
        typer.echo(
            json.dumps({"run": run_id, "changes": changes, "rejected": rejected}, default=str, indent=2)
        )
        return
    console = Console(width=200)
    if not changes:
        console.print(f"Run {run_id or '(all)'}: nothing to change.")
    else:
        table = Table(title=f"Changes of run {run_id}" if run_id else "Changes")
        for column in ("run", "person", "system", "purpose", "change", "rule", "reason", "push result"):
            table.add_column(column)
        for c in changes:
            table.add_row(
                c["run_id"], c["person"], c["system"], c["slot"], f"{c['before']} -> {c['after']}", c["rule"],
                c["reason"], c["push_result"],
            )  # fmt: skip
        console.print(table)
    if rejected:
        table = Table(title="Records that could not be read")
        for column in ("system", "record id", "field", "error"):
            table.add_column(column)
        for r in rejected:
            table.add_row(r["system"], r["record_id"] or "-", r["field"], r["error"])
        console.print(table)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("runs")(runs)
    app.command("log")(log)
