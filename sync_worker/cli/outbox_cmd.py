"""``sync-worker outbox list | retry | dismiss``: the outbox items an operator has to act on."""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from sync_worker import outbox_attention
from sync_worker.cli import ledger_shell
from sync_worker.cli.ledger_shell import open_shell
from sync_worker.identity import mask_email
from sync_worker.logs import get_logger
from sync_worker.outbox_attention import OutboxKeyError

app = typer.Typer(help="Outbox items that need an operator: list, retry, dismiss.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print JSON for scripts.")
KEYS = typer.Argument(
    None, metavar="KEY...", help="Outbox item keys, as `sync-worker outbox list` shows them."
)
REQUIRED_KEYS = typer.Argument(
    ..., metavar="KEY...", help="Outbox item keys, as `sync-worker outbox list` shows them."
)


def operator_name() -> str:
    """Who acts: the login name, which a container may not have."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("HOSTNAME", "unknown")


BY = typer.Option(None, "--by", help="Who acts, for the log (default: the login name).")


@app.command("list")
def list_items(as_json: bool = JSON) -> None:
    """Subscribes given up, failing changes and refused opt-outs: key, system, person (masked), slot,
    action, state, attempts, the vendor's reason, age. Opt-outs marked R25 make every run partial."""
    shell = open_shell()
    with shell.engine.connect() as conn:
        found = outbox_attention.needing_attention(conn, ledger_shell.clock())
    if as_json:
        typer.echo(json.dumps([item.as_json() for item in found], indent=2))
        return
    console = Console(width=200)
    if not found:
        console.print("No outbox item needs attention.")
        return
    table = Table(title="Outbox items that need attention (oldest first)")
    for column in ("key", "system", "person", "slot", "action", "state", "attempts", "vendor reason", "age"):
        table.add_column(column)
    for item in found:
        state = item.state + (" (R25: run partial)" if item.makes_runs_partial else "")
        table.add_row(
            item.key, item.system, item.person, item.slot, item.action, state, str(item.attempts),
            item.reason or "-", _age(item.age_seconds),
        )  # fmt: skip
    console.print(table)


@app.command("retry")
def retry(
    keys: list[str] | None = KEYS,
    all_parked: bool = typer.Option(False, "--all-parked", help="Every parked item that needs attention."),
    by: str | None = BY,
    as_json: bool = JSON,
) -> None:
    """Put items back for the next run with a renewed attempt budget. An opt-out is pushed again; a
    subscribe is never pushed on its old decision (R27): its person is decided again by the next run."""
    if bool(keys) == all_parked:
        typer.echo("sync-worker outbox retry: give KEY... or --all-parked (not both).", err=True)
        raise typer.Exit(2)
    shell = open_shell()
    actor = by or operator_name()
    with shell.engine.begin() as conn:
        chosen = list(keys or []) or outbox_attention.parked_keys(conn)
        done = _acting(
            lambda: outbox_attention.retry(
                conn, chosen, actor=actor, secret=shell.secret or b"", now=ledger_shell.clock()
            )
        )
    _report("outbox_item_retried", ("retry", "retried"), done, actor=actor, reason=None, as_json=as_json)


@app.command("dismiss")
def dismiss(
    keys: list[str] = REQUIRED_KEYS,
    reason: str = typer.Option(
        ..., "--reason", help="Why, for the log (e.g. contact deleted in the vendor)."
    ),
    by: str | None = BY,
    as_json: bool = JSON,
) -> None:
    """Close parked or failed items as dismissed: they stop making runs partial; the row and the consent
    ledger stay as they are, and a withdrawal still governs every later plan."""
    shell = open_shell()
    actor = by or operator_name()
    with shell.engine.begin() as conn:
        done = _acting(
            lambda: outbox_attention.dismiss(
                conn, keys, reason=reason, actor=actor, secret=shell.secret or b"", now=ledger_shell.clock()
            )
        )
    _report(
        "outbox_item_dismissed", ("dismiss", "dismissed"), done, actor=actor, reason=reason, as_json=as_json
    )


def _acting(action: Callable[[], Sequence[Mapping[str, Any]]]) -> Sequence[Mapping[str, Any]]:
    try:
        return action()
    except (OutboxKeyError, ValueError) as error:
        typer.echo(f"sync-worker outbox: {error}; nothing was changed.", err=True)
        raise typer.Exit(2) from None


def _report(
    event: str,
    verbs: tuple[str, str],
    items: Sequence[Mapping[str, Any]],
    *,
    actor: str,
    reason: str | None,
    as_json: bool,
) -> None:
    for row in items:
        get_logger(connector=row["system"]).info(
            event, key=row["key"], email=row["email"], slot=row["slot"], action=row["action"],
            was=row["state"], by=actor, reason=reason,
        )  # fmt: skip
    verb, done = verbs
    keys = [str(row["key"]) for row in items]
    if as_json:
        typer.echo(json.dumps({done: keys, "by": actor, "reason": reason}))
    elif not keys:
        typer.echo(f"nothing to {verb}")
    else:
        for row in items:
            typer.echo(f"{done} {row['key']} ({row['system']}, {mask_email(row['email'])}, {row['action']})")


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
