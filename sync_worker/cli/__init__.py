"""The ``sync-worker`` command line (Typer). Each command group lives in a module of its own."""

from __future__ import annotations

import sys

import typer

from config import SettingsError
from sync_worker.cli import (
    config_cmd,
    db_cmd,
    demo_cmd,
    health_cmd,
    import_cmd,
    ledger_cmd,
    outbox_cmd,
    pending,
    person_cmd,
    registry_cmd,
    run_cmd,
    sandbox_cmd,
)
from sync_worker.collector import tune_collector

app = typer.Typer(
    name="sync-worker",
    help="Consent sync worker: pulls consent from ESPs, CRMs and webshops, decides by the AVG rules, pushes back.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(config_cmd.app, name="config")
app.add_typer(db_cmd.app, name="db")
app.add_typer(ledger_cmd.app, name="ledger")
app.add_typer(outbox_cmd.app, name="outbox")
app.command("import")(import_cmd.import_file)
person_cmd.register(app)
run_cmd.register(app)
app.command("health")(health_cmd.health)
app.command("demo")(demo_cmd.demo_command)
app.command("sandbox")(sandbox_cmd.sandbox)
app.command("registry")(registry_cmd.registry)
pending.register(app)


def main() -> None:
    tune_collector()
    try:
        app(prog_name="sync-worker")
    except SettingsError as error:
        # A wrong env value names the variable and what is expected, never a traceback.
        typer.echo(str(error), err=True)
        sys.exit(2)
