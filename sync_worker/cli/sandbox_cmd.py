"""``sync-worker sandbox VENDOR``: serve a vendor's fake API on 127.0.0.1 for demos and manual tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn

from connectors.base import Status
from connectors.registry import VENDORS, sandbox_class
from connectors.sandbox import free_port

serve = uvicorn.run  # replaced in tests, which must not block


def seed(box: Any, source: str) -> int:
    """Load people into a sandbox: ``demo`` (the sandbox's own demo set) or a JSON file.

    The file is a list of ``{"email": "...", "statuses": {"newsletter": "subscribed", ...}}``.
    """
    if source == "demo":
        people: list[dict[str, Any]] = box.demo_people() if hasattr(box, "demo_people") else []
    else:
        people = json.loads(Path(source).read_text(encoding="utf-8"))
    for person in people:
        statuses = {purpose: Status(value) for purpose, value in person.get("statuses", {}).items()}
        box.add_contact(person["email"], statuses)
    return len(people)


def sandbox(
    vendor: Annotated[str, typer.Argument(help=f"One of: {', '.join(VENDORS)}.")],
    port: Annotated[int, typer.Option(help="Port on the host; 0 picks a free one.")] = 0,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    seed_from: Annotated[str | None, typer.Option("--seed", help="'demo' or a JSON file of people.")] = None,
) -> None:
    """Serve VENDOR's sandbox API and print the settings that point the worker at it."""
    try:
        box = sandbox_class(vendor)()
    except (KeyError, ImportError) as error:
        typer.echo(f"no sandbox for {vendor!r}: {error}", err=True)
        raise typer.Exit(2) from None
    count = seed(box, seed_from) if seed_from else 0
    port = port or free_port(host)
    base_url = f"http://{host}:{port}"
    typer.echo(f"{vendor} sandbox at {base_url} ({count} seeded); point the worker at it with:")
    for name, value in box.settings_env(base_url).items():
        typer.echo(f"  export {name}='{value}'")
    serve(box.app, host=host, port=port, log_level="warning")
