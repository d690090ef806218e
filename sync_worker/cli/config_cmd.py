"""``sync-worker config check``: the effective configuration, secrets masked."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from config import Settings, load_settings
from config.display import masked, masked_url, problems

app = typer.Typer(help="Configuration.", no_args_is_help=True)


def report(settings: Settings) -> dict[str, Any]:
    """The effective configuration as a JSON-ready dict with every secret masked."""
    effective: dict[str, Any] = masked(settings.model_dump())
    effective["database_url"] = masked_url(settings.database_url)
    connectors = {}
    for name, vendor in settings.vendors().items():
        connectors[name] = {
            "enabled": vendor.enabled(),
            "missing": vendor.missing(),
            "base_url": vendor.effective_base_url(),
        }
    return {"settings": effective, "connectors": connectors, "problems": problems(settings)}


@app.command()
def check(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """Show the effective configuration (secrets masked) and which connectors are enabled."""
    data = report(load_settings())
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    console = Console()
    table = Table(title="connectors")
    for column in ("connector", "enabled", "missing", "base URL"):
        table.add_column(column)
    for name, info in data["connectors"].items():
        table.add_row(
            name, "yes" if info["enabled"] else "no", ", ".join(info["missing"]), info["base_url"] or ""
        )
    console.print(table)
    settings_table = Table(title="settings")
    settings_table.add_column("setting")
    settings_table.add_column("value")
    for name, value in data["settings"].items():
        if name not in data["connectors"]:
            settings_table.add_row(f"SYNC_{name.upper()}", json.dumps(value, default=str))
    console.print(settings_table)
    for problem in data["problems"]:
        console.print(f"[yellow]warning:[/yellow] {problem}")
