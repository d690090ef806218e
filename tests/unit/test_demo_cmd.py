"""``sync-worker demo`` (preview until issue 6): an empty ledger at the newest schema and an honest plan."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sync_worker import db
from sync_worker.cli import app
from sync_worker.cli.pending import OWNERS


def run_demo(data_dir: Path) -> str:
    result = CliRunner().invoke(app, ["demo", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    return result.output


def test_demo_creates_an_upgraded_ledger_and_says_no_connector_is_enabled(tmp_path: Path) -> None:
    output = run_demo(tmp_path / "demo")
    ledger = tmp_path / "demo" / "ledger.db"
    engine = db.make_engine(f"sqlite:///{ledger}")
    assert db.is_up_to_date(engine)
    engine.dispose()
    assert f"upgraded to schema revision {db.head_revision()}" in output
    assert "connectors enabled: none (no credentials are set)" in output
    assert "set SYNC_MAILCHIMP__API_KEY, SYNC_MAILCHIMP__LIST_ID to enable it" in output
    assert "a run would do nothing" in output


def test_demo_says_the_full_demo_is_not_there_yet(tmp_path: Path) -> None:
    assert "is not there yet: it arrives with issue 6" in run_demo(tmp_path)


def test_demo_names_the_connectors_whose_credentials_are_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_KLAVIYO__API_KEY", "pk_demo_key")
    monkeypatch.setenv("SYNC_KLAVIYO__BASE_URL", "http://127.0.0.1:9002")
    output = run_demo(tmp_path)
    assert "connectors enabled: klaviyo" in output
    assert "klaviyo: enabled; a run would pull from http://127.0.0.1:9002" in output
    assert "pk_demo_key" not in output
    assert "a run would do nothing" not in output


def test_demo_starts_from_an_empty_ledger_each_time(tmp_path: Path) -> None:
    run_demo(tmp_path)
    with sqlite3.connect(tmp_path / "ledger.db") as connection:
        connection.execute("CREATE TABLE left_over (id INTEGER)")
    connection.close()
    run_demo(tmp_path)
    with sqlite3.connect(tmp_path / "ledger.db") as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    connection.close()
    assert "left_over" not in tables
    assert "alembic_version" in tables


def test_demo_is_no_longer_a_pending_command() -> None:
    assert "demo" not in OWNERS
