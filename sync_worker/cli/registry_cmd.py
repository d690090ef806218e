"""``sync-worker registry [--json]``: the Art. 30 record of processing per purpose (R36), for the DPO."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from config import load_settings
from sync_worker.cli import ledger_shell
from sync_worker.processing_record import RULE, record


def registry(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document, to be filed."),
) -> None:
    """The record of processing (Art. 30 GDPR, R36) per configured purpose: controller, purpose text, legal
    basis, data categories, recipients (each enabled connector as processor), retention, security. Built
    from the settings alone; secrets and the database password never appear."""
    data = record(load_settings(), ledger_shell.clock())
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    console = Console(width=160)
    console.print(Text(f"{data['record']} ({RULE}), {data['generated_at']}"))
    console.print(Text(f"controller: {data['controller'] or '(not set: SYNC_CONTROLLER)'}"))
    for entry in data["purposes"]:
        console.print(_purpose_table(entry))
    # The same for every purpose: shown once here, repeated per purpose in the JSON.
    first = data["purposes"][0] if data["purposes"] else None
    if first is not None:
        console.print(_categories_table(data["purposes"]))
        console.print(_pairs_table("retention (all purposes)", first["retention"]))
        console.print(_pairs_table("security (all purposes)", first["security"]))
    for warning in data["warnings"]:
        console.print(Text.assemble(("warning: ", "yellow"), warning))


def _purpose_table(entry: dict[str, Any]) -> Table:
    table = Table(title=f"purpose: {entry['purpose']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    text = entry["text"] or "(no text: SYNC_POLICY__PURPOSE_TEXTS)"
    _row(table, "purpose text", text + (f" (version {entry['version']})" if entry["version"] else ""))
    _row(
        table,
        "legal basis",
        "\n".join(f"{b['basis']}: {b['law']}; {b['applies_to']}" for b in entry["legal_basis"]),
    )
    _row(table, "data subjects", entry["data_subjects"])
    _row(table, "data categories", ", ".join(c["category"] for c in entry["data_categories"]))
    recipients = [f"{r['vendor']} ({r['kind']}, {r['role']}): {r['maps_to']}" for r in entry["recipients"]]
    _row(table, "recipients", "\n".join(recipients) or "none: no enabled connector maps this purpose")
    return table


def _row(table: Table, field: str, value: str) -> None:
    # Text, not markup: a purpose text or vendor id with brackets is shown as it is.
    table.add_row(field, Text(value))


def _categories_table(entries: list[dict[str, Any]]) -> Table:
    """Each data category once, with the purposes it is held for."""
    held: dict[str, tuple[str, list[str]]] = {}
    for entry in entries:
        for category in entry["data_categories"]:
            held.setdefault(category["category"], (category["description"], []))[1].append(entry["purpose"])
    table = Table(title="data categories")
    for column in ("category", "held for", "description"):
        table.add_column(column)
    every = len(entries)
    for name, (description, purposes) in held.items():
        table.add_row(
            name, "every purpose" if len(purposes) == every else ", ".join(purposes), Text(description)
        )
    return table


def _pairs_table(title: str, pairs: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in pairs.items():
        shown = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else _plain(value)
        _row(table, key.replace("_", " "), shown)
    return table


def _plain(value: Any) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)
