"""``sync-worker run``: service mode by default (scheduler + HTTP), ``--once`` for a single run.

Both paths call the reconciliation runner (``sync_worker.runner.run_once``) through one adapter; until
the runner is installed they say so and exit 3, like every command whose issue is still open.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
from typing import Annotated, Any

import typer

from config import Settings, load_settings
from sync_worker.logs import configure_logging
from sync_worker.trigger import RunFn, RunRequest, RunStatus, RunSummary, Trigger

EXIT_BY_STATUS = {RunStatus.SUCCESS: 0, RunStatus.SKIPPED: 0, RunStatus.PARTIAL: 1, RunStatus.FAILED: 2}
EXIT_NOT_AVAILABLE = 3


def summary_of(report: Any) -> RunSummary:
    """Read the runner's report by its public attributes (it may grow; we need only these)."""
    raw_status = getattr(report, "status", RunStatus.FAILED)
    try:
        status = RunStatus(str(getattr(raw_status, "value", raw_status)))
    except ValueError:
        status = RunStatus.FAILED
    run_id = getattr(report, "run_id", None)
    # Totals are either on the report or per connector in ``counts`` (name -> object with pushed/failed).
    counts = list((getattr(report, "counts", None) or {}).values())
    return RunSummary(
        status=status,
        run_id=str(run_id) if run_id is not None else None,
        pushed=int(getattr(report, "pushed", 0) or sum(getattr(c, "pushed", 0) for c in counts)),
        failed=int(getattr(report, "failed", 0) or sum(getattr(c, "failed", 0) for c in counts)),
    )


def runner_fn(settings: Settings, *, dry_run: bool = False, full: bool = False) -> RunFn | None:
    """The runner behind the service's RunFn, or None while it is not installed."""
    try:
        runner = importlib.import_module("sync_worker.runner")
    except ModuleNotFoundError as error:
        if error.name != "sync_worker.runner":
            raise
        return None
    run_once = getattr(runner, "run_once", None)
    if run_once is None:  # the runner module exists but has no entry point yet
        return None

    async def run(request: RunRequest) -> RunSummary:
        result = run_once(
            settings,
            trigger=request.trigger.value,
            dry_run=dry_run,
            only=sorted(request.only) or None,
            full=full,
            emails=sorted(request.emails) or None,
        )
        return summary_of(await result if inspect.isawaitable(result) else result)

    return run


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_command(
        once: bool = typer.Option(False, "--once", help="Run one reconciliation and exit (no service)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="With --once: plan and log, push nothing."),
        connector: Annotated[
            list[str] | None, typer.Option("--connector", help="With --once: only these connectors.")
        ] = None,
        full: bool = typer.Option(
            False, "--full", help="With --once: re-read everything, not incrementally."
        ),
    ) -> None:
        """Serve: scheduled runs, webhooks, /healthz, /readyz, /metrics (the container's default).

        With --once: one reconciliation run, then exit (0 success, 1 partial, 2 failed).
        """
        settings = load_settings()
        configure_logging(settings.log_format, settings.log_level, settings.log_show_emails)
        run = runner_fn(settings, dry_run=dry_run, full=full)
        if run is None:
            typer.echo(
                "sync-worker run: the reconciliation runner is not installed yet; "
                "it arrives with reconciliation runs (issue 6).",
                err=True,
            )
            raise typer.Exit(EXIT_NOT_AVAILABLE)
        if not once:
            from sync_worker.service import serve

            raise typer.Exit(serve(settings, run))
        request = RunRequest(Trigger.MANUAL, only=frozenset(connector or ()))

        async def once_() -> RunSummary:
            return await run(request)

        summary = asyncio.run(once_())
        typer.echo(json.dumps({"status": summary.status, "run_id": summary.run_id}))
        raise typer.Exit(EXIT_BY_STATUS[summary.status])
