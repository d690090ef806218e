"""The command line: help, and honest errors for commands another issue still owns."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import sync_worker.cli as cli
from sync_worker.cli import app


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("config", "db"):
        assert name in result.output


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run([sys.executable, "-m", "sync_worker", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "sync-worker" in result.stdout


def test_db_upgrade_command(tmp_path: object, monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setenv("SYNC_DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "database at revision" in result.output


def test_the_command_puts_start_up_objects_beyond_the_cyclic_collector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Planning's full collections would otherwise walk every module object again (docs/benchmarks.md)."""
    monkeypatch.setattr(cli, "app", lambda prog_name: None)
    gc.unfreeze()
    try:
        cli.main()
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
