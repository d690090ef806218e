"""``sync-worker demo`` (preview): a fresh SQLite ledger under ./data/demo and what a run would do.

The full demo (local vendor sandboxes, seed data, a reconciliation run and its log) belongs to the
reconciliation-runs issue (6). Until then this command does the honest part it can: it builds an empty
ledger at the newest schema and says which connectors a run would use, without contacting any vendor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from config import Settings, load_settings
from sync_worker import db

DEMO_DIR = Path("data/demo")
LEDGER_NAME = "ledger.db"
FULL_DEMO_PENDING = (
    "The full demo (local vendor sandboxes, seed data, a reconciliation run and its log) is not there yet: "
    "it arrives with issue 6."
)


def fresh_ledger_url(directory: Path) -> str:
    """Remove the previous demo ledger (with SQLite's WAL side files) and return the URL for a new one."""
    directory.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        (directory / f"{LEDGER_NAME}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{directory / LEDGER_NAME}"


def describe_run(settings: Settings) -> list[str]:
    """One line per connector: what a run would do with it, or which variables would enable it."""
    lines = []
    for name, vendor in settings.vendors().items():
        if vendor.enabled():
            lines.append(
                f"  {name}: enabled; a run would pull from {vendor.effective_base_url()}, "
                "record consent events in the ledger, decide per purpose and push the changes back"
            )
        else:
            lines.append(f"  {name}: disabled; set {', '.join(vendor.missing())} to enable it")
    return lines


def demo(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the demo ledger is created.")
    ] = DEMO_DIR,
) -> None:
    """Preview: create an empty SQLite ledger in ./data/demo and print what a run would do."""
    settings = load_settings()
    url = fresh_ledger_url(data_dir)
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        revision = db.current_revision(engine)
    finally:
        engine.dispose()
    enabled = settings.enabled_vendors()
    typer.echo("sync-worker demo (preview)")
    typer.echo(f"ledger: {url}: created empty and upgraded to schema revision {revision}")
    typer.echo(f"connectors enabled: {', '.join(enabled) if enabled else 'none (no credentials are set)'}")
    for line in describe_run(settings):
        typer.echo(line)
    if not enabled:
        typer.echo("a run would do nothing: no connector has credentials (see .env.example).")
    typer.echo(FULL_DEMO_PENDING)
