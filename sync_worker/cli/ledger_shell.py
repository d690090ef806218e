"""What the ledger commands share: settings, the migrated engine, the policy, the secret, the clock."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import typer
from sqlalchemy import Engine

from config import Settings, load_settings
from sync_worker import db
from sync_worker.identity import InvalidEmailError, normalise_email
from sync_worker.logs import configure_logging
from sync_worker.policy import Policy
from sync_worker.rulebook import policy_from_settings, secret_of


def system_clock() -> datetime:
    return datetime.now(UTC)


# The one clock of the ledger commands; tests replace it instead of sleeping or freezing time.
clock: Callable[[], datetime] = system_clock


@dataclass(frozen=True)
class Shell:
    settings: Settings
    engine: Engine
    policy: Policy
    secret: bytes | None


def open_shell() -> Shell:
    settings = load_settings()
    # Logs go to stderr: stdout carries the command's answer (JSON for scripts).
    configure_logging(settings.log_format, settings.log_level, settings.log_show_emails, stream=sys.stderr)
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine)
    return Shell(settings, engine, policy_from_settings(settings), secret_of(settings))


def email_argument(raw: str) -> str:
    try:
        return normalise_email(raw)
    except InvalidEmailError as error:
        typer.echo(f"EMAIL {raw!r}: {error}", err=True)
        raise typer.Exit(2) from None


def moment_option(raw: str | None) -> datetime:
    if raw is None:
        return clock()
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        typer.echo(f"--at {raw!r}: not an ISO 8601 timestamp (e.g. 2026-03-01T12:00:00Z)", err=True)
        raise typer.Exit(2) from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
