"""``sync-worker sandbox VENDOR``: serve one vendor's fake API on 127.0.0.1 for the demo and manual tries."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import typer
import uvicorn

from connectors.base import Status
from connectors.registry import VENDORS, sandbox_class
from connectors.sandbox import free_port


def seed_sandbox(sandbox: Any, seed: str) -> None:
    """Fill a sandbox: ``demo`` (the vendor's own demo data) or a JSON file of
    ``[{"email": ..., "statuses": {purpose: status}, ...vendor extras}]``."""
    if seed == "demo":
        if not hasattr(sandbox, "seed_demo"):
            raise typer.BadParameter(f"the {sandbox.name} sandbox has no demo seed", param_hint="--seed")
        sandbox.seed_demo()
        return
    try:
        entries = json.loads(Path(seed).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise typer.BadParameter(f"cannot read {seed}: {error}", param_hint="--seed") from error
    if not isinstance(entries, list):
        raise typer.BadParameter(f"{seed} must hold a JSON list of contacts", param_hint="--seed")
    for number, entry in enumerate(entries):
        extras = dict(entry) if isinstance(entry, dict) else {}
        email = extras.pop("email", None)
        try:
            statuses = {purpose: Status(value) for purpose, value in extras.pop("statuses", {}).items()}
        except (AttributeError, ValueError) as error:
            raise typer.BadParameter(
                f"{seed} entry {number}: statuses: {error}", param_hint="--seed"
            ) from error
        if not isinstance(email, str):
            raise typer.BadParameter(f"{seed} entry {number}: email is missing", param_hint="--seed")
        sandbox.add_contact(email, statuses, **extras)


def serve(
    vendor: str = typer.Argument(..., help=f"One of: {', '.join(VENDORS)}."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(0, help="Port; 0 picks a free one."),
    seed: str | None = typer.Option(None, help="'demo' or a JSON file of contacts to start with."),
) -> None:
    """Serve VENDOR's sandbox over HTTP and print the settings that point the worker at it."""
    if vendor not in VENDORS:
        raise typer.BadParameter(
            f"unknown vendor {vendor!r}; known: {', '.join(VENDORS)}", param_hint="VENDOR"
        )
    sandbox = sandbox_class(vendor)()
    if seed:
        seed_sandbox(sandbox, seed)
    port = port or free_port(host)
    base_url = f"http://{host}:{port}"
    seeded = f", seeded from {seed}" if seed else ""
    typer.echo(f"{vendor} sandbox at {base_url}{seeded}; point the worker at it with:")
    for name, value in sandbox.settings_env(base_url).items():
        typer.echo(f"export {name}={shlex.quote(value)}")
    uvicorn.run(sandbox.app, host=host, port=port, log_level="warning", lifespan="off")
