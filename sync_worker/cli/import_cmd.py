"""``sync-worker import FILE``: consent events, purchases and erasures from other tools (JSONL or CSV)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import asdict
from itertools import groupby
from pathlib import Path
from typing import TextIO

import typer

from sync_worker.cli import ledger_shell
from sync_worker.cli.ledger_shell import Shell, open_shell
from sync_worker.ledger.erasure import erase
from sync_worker.ledger.importer import Format, Parsed, read_records
from sync_worker.ledger.ingest import IngestResult, append_events, append_purchases
from sync_worker.ledger.records import ConsentEventIn, ErasureIn, PurchaseIn
from sync_worker.ledger.suppression import MissingSecretKeyError
from sync_worker.line_error import LineError
from sync_worker.logs import get_logger

FORMAT = typer.Option(None, "--format", help="jsonl or csv (default: from the file name).")


def import_file(
    path: str = typer.Argument(..., metavar="FILE", help="JSONL or CSV file; '-' reads standard input."),
    fmt: Format | None = FORMAT,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Import records into the ledger; bad lines are reported by line and field, good lines are kept."""
    chosen: Format = fmt or ("csv" if path.lower().endswith(".csv") else "jsonl")
    shell = open_shell()
    errors: list[LineError] = []
    if path == "-":
        result = _ingest(shell, sys.stdin, chosen, errors)
    else:
        try:
            with Path(path).open(encoding="utf-8", newline="") as stream:
                result = _ingest(shell, stream, chosen, errors)
        except OSError as error:
            typer.echo(f"FILE {path}: {error.strerror}", err=True)
            raise typer.Exit(2) from None
    summary = {**{k: v for k, v in asdict(result).items() if k != "rejected"}, "rejected": len(errors)}
    get_logger().info("import_finished", file=path, **summary)
    if as_json:
        typer.echo(json.dumps({**summary, "errors": [asdict(e) for e in errors]}))
    else:
        typer.echo(
            f"imported {result.inserted}, duplicates {result.duplicates}, "
            f"suppressed (R22) {result.suppressed}, rejected {len(errors)}"
        )
    if errors:
        raise typer.Exit(1)


def _ingest(shell: Shell, stream: TextIO, fmt: Format, errors: list[LineError]) -> IngestResult:
    """Consecutive records of one type go to the ledger as one set-based batch, in file order."""
    total = IngestResult()
    now = ledger_shell.clock()
    for kind, group in groupby(_good(read_records(stream, fmt), errors), key=lambda p: p.record.type):
        with shell.engine.begin() as conn:
            if kind == "consent":
                events = (p.record for p in group if isinstance(p.record, ConsentEventIn))
                total.add(append_events(conn, events, policy=shell.policy, secret=shell.secret, now=now))
            elif kind == "purchase":
                purchases = (p.record for p in group if isinstance(p.record, PurchaseIn))
                total.add(append_purchases(conn, purchases, secret=shell.secret, now=now))
            else:
                for parsed in group:
                    assert isinstance(parsed.record, ErasureIn)
                    try:
                        erase(conn, parsed.record.email, secret=shell.secret, now=now)
                        total.inserted += 1
                    except MissingSecretKeyError as error:
                        errors.append(LineError(parsed.line, "email", str(error)))
    return total


def _good(items: Iterator[Parsed | LineError], errors: list[LineError]) -> Iterator[Parsed]:
    for item in items:
        if isinstance(item, LineError):
            typer.echo(str(item), err=True)
            errors.append(item)
        else:
            yield item
