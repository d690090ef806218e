"""``sync-worker demo``: sandboxes over real HTTP, the seed article's cases, a second run with nothing to do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from sync_worker.cli import app
from sync_worker.cli.demo_cmd import fresh_ledger_url
from tests.contract.vendors import VENDORS


def test_fresh_ledger_url_removes_the_previous_demo_ledger(tmp_path: Path) -> None:
    url = fresh_ledger_url(tmp_path)
    with sqlite3.connect(tmp_path / "ledger.db") as connection:
        connection.execute("CREATE TABLE left_over (id INTEGER)")
    connection.close()
    assert fresh_ledger_url(tmp_path) == url
    assert not (tmp_path / "ledger.db").exists()


@pytest.mark.slow
@pytest.mark.skipif("shopify" not in VENDORS, reason="the Shopify sandbox needs Shopify's published schema")
def test_demo_tells_the_whole_story_and_the_second_run_changes_nothing(tmp_path: Path) -> None:
    structlog.reset_defaults()
    result = CliRunner().invoke(app, ["demo", "--data-dir", str(tmp_path), "--people", "3"])
    assert result.exit_code == 0, result.output
    output = result.output
    _, first, second = output.split("\nRun ")
    for rule in ("R8", "R12", "R18", "R21"):
        assert f" {rule} " in first, rule
    assert "nothing to change" in second
    assert "status success, 0 changes" in second
    assert (tmp_path / "ledger.db").is_file()
