"""``sync-worker db``: schema migrations."""

from __future__ import annotations

import typer

from config import load_settings
from sync_worker import db

app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    settings = load_settings()
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine, revision)
    typer.echo(f"database at revision {db.current_revision(engine)}")


@app.command()
def current() -> None:
    """Show the database's revision and whether it is up to date."""
    settings = load_settings()
    engine = db.make_engine(settings.database_url)
    rev = db.current_revision(engine)
    state = "up to date" if rev == db.head_revision() else f"behind head {db.head_revision()}"
    typer.echo(f"{rev or 'empty'} ({state})")
