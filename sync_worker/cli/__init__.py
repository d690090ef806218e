"""The ``sync-worker`` command line (Typer). Each command group lives in a module of its own."""

from __future__ import annotations

import gc
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


def tune_collector() -> None:
    """Set the cyclic garbage collector up for planning, once at start-up.

    First, move everything alive after start-up (modules, classes, settings: about 100,000 objects) out of
    its reach. They live as long as the process anyway, and otherwise every full collection walks them
    again: planning a million people triggers thousands of those collections, which cost a third of its
    time (docs/benchmarks.md, Scale 1).

    Then collect the youngest generation only after 50,000 net new objects instead of CPython's 700. A
    chunk of 1,000 people being planned holds some tens of thousands (facts, decisions, the snapshot's rows,
    the changes) for its whole pass, so at 700 the collector walked them again and again: about a tenth of
    a full planning pass. Garbage cycles wait a little longer for it (a few MB at most); nothing else
    changes.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


YOUNG_THRESHOLD = 50_000


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
