"""``sync-worker ledger verify``: walk the hash chain and report the first broken link."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer

from sync_worker.cli.ledger_shell import open_shell
from sync_worker.ledger.chain import verify as verify_chain
from sync_worker.logs import get_logger

app = typer.Typer(help="The consent ledger.", no_args_is_help=True)


@app.command()
def verify(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """Check that no ledger row was altered, inserted or deleted (exit 1 at the first broken link)."""
    shell = open_shell()
    with shell.engine.connect() as conn:
        result = verify_chain(conn)
    get_logger().info(
        "ledger_verified", ok=result.ok, checked=result.checked, broken_at=result.broken_at, rule="R32"
    )
    if as_json:
        typer.echo(json.dumps(asdict(result)))
    elif result.ok:
        typer.echo(f"ledger intact: {result.checked} events, chain verified")
    else:
        typer.echo(
            f"ledger BROKEN at event {result.broken_at}: {result.problem} ({result.checked} verified before it)"
        )
    if not result.ok:
        raise typer.Exit(1)
