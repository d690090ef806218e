"""``sync-worker sandbox VENDOR``: serve a vendor's fake API on 127.0.0.1 for demos and manual tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
import uvicorn

from connectors.base import Status
from connectors.registry import VENDORS, sandbox_class
from connectors.sandbox import free_port


def build(vendor: str, seed: str | None) -> Any:
    """The vendor's sandbox, seeded with its demo data (``demo``) or the people listed in a JSON file.

    A seed file is a list of ``{"email": ..., "statuses": {purpose: status}, ...vendor extras}``.
    """
    if vendor not in VENDORS:
        raise typer.BadParameter(
            f"unknown vendor {vendor!r}; known: {', '.join(VENDORS)}", param_hint="VENDOR"
        )
    try:
        sandbox = sandbox_class(vendor)()
    except ImportError as error:
        raise typer.BadParameter(
            f"the {vendor} sandbox is not available: {error}", param_hint="VENDOR"
        ) from error
    if seed == "demo":
        if not hasattr(sandbox, "seed_demo"):
            raise typer.BadParameter(f"the {vendor} sandbox has no demo data", param_hint="--seed")
        sandbox.seed_demo()
    elif seed is not None:
        for person in json.loads(Path(seed).read_text()):
            extras = {k: v for k, v in person.items() if k not in ("email", "statuses")}
            statuses = {purpose: Status(value) for purpose, value in person.get("statuses", {}).items()}
            sandbox.add_contact(person["email"], statuses, **extras)
    return sandbox


def sandbox(
    vendor: str = typer.Argument(..., help=f"One of: {', '.join(VENDORS)}."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int | None = typer.Option(None, help="Port (a free one when not given)."),
    seed: str | None = typer.Option(None, help="'demo' or a JSON file of people to add."),
) -> None:
    """Serve a vendor sandbox over HTTP and print the settings that point the worker at it."""
    built = build(vendor, seed)
    port = port or free_port(host)
    base_url = f"http://{host}:{port}"
    typer.echo(f"{vendor} sandbox at {base_url}")
    for name, value in built.settings_env(base_url).items():
        typer.echo(f"export {name}='{value}'")
    uvicorn.run(built.app, host=host, port=port, log_level="warning", lifespan="off")


def register(app: typer.Typer) -> None:
    app.command("sandbox")(sandbox)
