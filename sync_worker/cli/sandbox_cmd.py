"""``sync-worker sandbox NAME``: serve one vendor's fake API on 127.0.0.1 for demos and manual tests."""

from __future__ import annotations

import shlex
import socket
from pathlib import Path

import typer
import uvicorn

from connectors.registry import VENDORS, sandbox_class
from connectors.sandbox_admin import with_admin
from connectors.seed import SeedContact, demo_people, read_seed_file, seed
from sync_worker.line_error import LineError


def sandbox(
    name: str = typer.Argument(..., help=f"Vendor: one of {', '.join(VENDORS)}."),
    *,
    port: int = typer.Option(0, "--port", help="Port to listen on (0: a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    seed_from: str | None = typer.Option(None, "--seed", help="'demo' or a JSONL file of contacts."),
    webhook_url: str | None = typer.Option(
        None, "--webhook-url", help="The worker's base URL: send this vendor's webhooks there."
    ),
    webhook_secret: str = typer.Option(
        "", "--webhook-secret", envvar="SANDBOX_WEBHOOK_SECRET", help="Secret to sign webhooks with."
    ),
) -> None:
    """Serve a vendor sandbox over HTTP and print the SYNC_* settings that point the worker at it."""
    try:
        box = sandbox_class(name)()
    except KeyError as error:
        typer.echo(str(error.args[0]), err=True)
        raise typer.Exit(2) from error
    except ModuleNotFoundError as error:
        typer.echo(f"the {name} sandbox is not available in this build ({error.name})", err=True)
        raise typer.Exit(2) from error
    contacts: list[SeedContact] = []
    errors: list[LineError] = []
    seeded = ""
    if seed_from == "demo" and hasattr(box, "seed_demo"):
        box.seed_demo()  # the vendor's own demo data (e.g. Shopify's customers with orders)
        seeded = "seeded with the vendor's demo data"
    elif seed_from == "demo":
        contacts = demo_people()
    elif seed_from is not None:
        contacts, errors = read_seed_file(Path(seed_from))
    refused = seed(box, contacts)
    for problem in [str(e) for e in errors] + refused:
        typer.echo(f"skipped: {problem}", err=True)
    # Bind before printing: once the URL is out, connections queue until uvicorn accepts them.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(128)
    base_url = f"http://{host}:{listener.getsockname()[1]}"
    seeded = seeded or f"{len(contacts) - len(refused)} contacts seeded"
    typer.echo(f"{name} sandbox at {base_url} ({seeded})")
    typer.echo("Point sync-worker at it with:")
    for key, value in box.settings_env(base_url).items():
        typer.echo(f"export {key}={shlex.quote(value)}")
    if webhook_url:
        box.webhooks.subscribe(webhook_url, webhook_secret)
        typer.echo(f"sending {name} webhooks to {webhook_url} (change people via POST /_sandbox/status)")
    server = uvicorn.Server(uvicorn.Config(with_admin(box), log_level="warning", lifespan="off"))
    server.run(sockets=[listener])
