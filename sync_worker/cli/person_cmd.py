"""``sync-worker explain | export | erase EMAIL``: one person's decisions, data (Art. 15) and erasure (Art. 17)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from sync_worker.cli import ledger_shell
from sync_worker.cli.ledger_shell import email_argument, moment_option, open_shell
from sync_worker.ledger.erasure import erase as erase_person
from sync_worker.ledger.evidence_json import stored_evidence
from sync_worker.ledger.facts import load_facts
from sync_worker.ledger.receipts import export_person
from sync_worker.ledger.suppression import MissingSecretKeyError
from sync_worker.logs import get_logger
from sync_worker.policy import Explanation
from sync_worker.policy import explain as explain_facts

T = TypeVar("T")
EMAIL = typer.Argument(..., metavar="EMAIL", help="The person's e-mail address.")
JSON = typer.Option(False, "--json", help="Print JSON for scripts.")


def explain(
    email: str = EMAIL,
    at: str | None = typer.Option(None, "--at", help="Evaluate as of this ISO 8601 moment (default: now)."),
    as_json: bool = JSON,
) -> None:
    """Per purpose: the decision, its basis, rule id, reason and the events (with evidence) it rests on."""
    address, now = email_argument(email), moment_option(at)
    shell = open_shell()
    with shell.engine.connect() as conn:
        facts = _checked(lambda: load_facts(conn, [address], shell.secret)[address])
    explanations = explain_facts(facts, shell.policy, now)
    decisions = [_decision(e) for e in explanations]
    if as_json:
        typer.echo(json.dumps({"email": address, "at": now.isoformat(), "decisions": decisions}, indent=2))
        return
    table = Table(title=f"{address} at {now.isoformat()}")
    for column in ("purpose", "allowed", "basis", "rule", "reason", "events"):
        table.add_column(column)
    for item in decisions:
        table.add_row(
            item["purpose"],
            "yes" if item["allowed"] else "no",
            item["basis"],
            item["rule"],
            item["reason"] + (" [quarantined: ask for re-permission]" if item["quarantined"] else ""),
            ", ".join(f"{e['type']} #{e['id']}" for e in item["events"]),
        )
    Console(width=160).print(table)


def _decision(explanation: Explanation) -> dict[str, Any]:
    d = explanation.decision
    events: list[dict[str, Any]] = [
        {
            "type": "consent",
            "id": c.fact.event_id,
            "action": c.fact.action,
            "purpose": c.fact.purpose,
            "occurred_at": c.fact.occurred_at.isoformat() if c.fact.occurred_at else None,
            "recorded_at": c.fact.recorded_at.isoformat(),
            "source": c.fact.source,
            "method": c.fact.method,
            "collection_point": c.fact.collection_point,
            "evidence_level": c.level,
            "evidence": stored_evidence(c.evidence),
        }
        for c in explanation.events
    ]
    events += [
        {
            "type": "purchase",
            "id": p.event_id,
            "occurred_at": p.occurred_at.isoformat(),
            "paid": p.paid,
            "categories": list(p.categories),
        }
        for p in explanation.purchases
    ]
    return {
        "purpose": d.purpose,
        "allowed": d.allowed,
        "basis": d.basis,
        "rule": d.rule,
        "code": d.code,
        "reason": d.reason,
        "quarantined": d.quarantined,
        "categories": list(d.categories),
        "events": events,
    }


def export(email: str = EMAIL) -> None:
    """Everything held about the person (Art. 15) as JSON, with one consent receipt per grant."""
    address = email_argument(email)
    shell = open_shell()
    now = ledger_shell.clock()
    with shell.engine.connect() as conn:
        data = export_person(conn, address, shell.policy)
        facts = _checked(lambda: load_facts(conn, [address], shell.secret)[address])
    if data is None:
        data = {"email": address, "held": "nothing but, if erased, a keyed-hash suppression entry (R21)"}
    data["suppressed"] = facts.suppressed
    data["decisions"] = [_decision(e) for e in explain_facts(facts, shell.policy, now)]
    data["exported_at"] = now.isoformat()
    typer.echo(json.dumps(data, indent=2, default=str))


def erase(email: str = EMAIL, as_json: bool = JSON) -> None:
    """Art. 17 erasure: delete the person's data and evidence, keep only a keyed-hash suppression (R21)."""
    address = email_argument(email)
    shell = open_shell()
    with shell.engine.begin() as conn:
        result = _checked(lambda: erase_person(conn, address, secret=shell.secret, now=ledger_shell.clock()))
    get_logger().info(
        "person_erased",
        email=address,
        events=result.events_erased,
        purchases=result.purchases_deleted,
        rule="R21",
    )
    summary = {
        "erased_events": result.events_erased,
        "deleted_purchases": result.purchases_deleted,
        "suppressed": True,
        "erasure_request": result.request_id,
    }
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(
            f"erased {result.events_erased} events and {result.purchases_deleted} purchases; the address is "
            f"suppressed (R21); deletion queued for every connected system (request {result.request_id})"
        )


def _checked(action: Callable[[], T]) -> T:
    try:
        return action()
    except MissingSecretKeyError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)
    app.command("export")(export)
    app.command("erase")(erase)
