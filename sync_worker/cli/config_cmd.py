"""``sync-worker config check``: the effective configuration, secrets masked."""

from __future__ import annotations

import json
from typing import Any

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from config import Settings, load_settings

app = typer.Typer(help="Configuration.", no_args_is_help=True)
MASK = "********"


def _masked(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _masked_url(url: str) -> str:
    # A database URL may carry a password: postgresql://user:pw@host/db
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:{MASK}@{host}" if ":" in creds else url
    return url


def report(settings: Settings) -> dict[str, Any]:
    """The effective configuration as a JSON-ready dict with every secret masked."""
    effective: dict[str, Any] = _masked(settings.model_dump())
    effective["database_url"] = _masked_url(settings.database_url)
    connectors = {}
    for name, vendor in settings.vendors().items():
        connectors[name] = {
            "enabled": vendor.enabled(),
            "missing": vendor.missing(),
            "base_url": vendor.effective_base_url(),
        }
    problems = (
        []
        if settings.secret_key
        else ["SYNC_SECRET_KEY is not set: needed for keyed-hash suppressions (R21)"]
    )
    return {"settings": effective, "connectors": connectors, "problems": problems}


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
