"""`sync-worker run --once`, `runs` and `log` from the command line."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
import structlog
from rich.console import Console
from typer.testing import CliRunner

from connectors.base import Status
from sync_worker import db
from sync_worker.cli import app, run_cmd
from sync_worker.progress import NoProgress, Progress
from sync_worker.runner import Reconciliation, RunReport
from tests.runs.fakes import T0, FakeLedger, FakeVendor


@pytest.fixture
def database(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("SYNC_DATABASE_URL", url)
    monkeypatch.setenv("SYNC_SECRET_KEY", "cli-secret")
    # An earlier command may have pointed structlog at a stream CliRunner has closed since.
    structlog.reset_defaults()
    return url


def one_run(url: str, *, refuse: frozenset[str] = frozenset(), progress: Progress | None = None) -> RunReport:
    """A run with a withdrawal in Mailchimp that reaches Klaviyo, logged in the database at ``url``.

    The ledger refuses the events of the addresses in ``refuse``.
    """
    engine = db.make_engine(url)
    db.upgrade(engine)
    mailchimp, klaviyo = FakeVendor("mailchimp", ["newsletter"]), FakeVendor("klaviyo", ["newsletter"])
    mailchimp.add("jan@example.nl", Status.UNSUBSCRIBED)
    klaviyo.add("jan@example.nl", Status.SUBSCRIBED)
    klaviyo.add("eva@example.nl", Status.UNSUBSCRIBED)
    connectors = {v.name: v.connector() for v in (mailchimp, klaviyo)}
    ledger = FakeLedger()
    ledger.refuse = set(refuse)
    reconciliation = Reconciliation(
        engine,
        connectors,
        ledger,
        ("newsletter",),
        b"cli-secret",
        lambda: T0,
        progress=progress or NoProgress(),
    )
    report = asyncio.run(reconciliation.run(trigger="manual"))
    engine.dispose()
    return report


def test_service_mode_without_any_connector_refuses_to_start() -> None:
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 2
    assert "at least one configured connector" in result.output


def test_run_once_without_any_connector_names_what_to_set(database: str) -> None:
    result = CliRunner().invoke(app, ["run", "--once"])
    assert result.exit_code == 2
    assert "no connector is configured" in result.output


def test_run_once_for_an_unconfigured_connector_names_its_variables(database: str) -> None:
    result = CliRunner().invoke(app, ["run", "--once", "--connector", "mailchimp"])
    assert result.exit_code == 2
    assert "SYNC_MAILCHIMP__API_KEY" in result.output


def test_runs_lists_the_run_with_status_and_counts(database: str) -> None:
    report = one_run(database)
    result = CliRunner().invoke(app, ["runs", "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert (row["id"], row["status"], row["trigger"]) == (report.run_id, "success", "manual")
    assert row["counts"]["klaviyo"]["pushed"] == 1
    table = CliRunner().invoke(app, ["runs"])
    assert report.run_id in table.output


def test_log_shows_what_changed_where_and_why_with_masked_people(database: str) -> None:
    report = one_run(database)
    result = CliRunner().invoke(app, ["log", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["run"] == report.run_id
    [change] = data["changes"]
    assert (change["person"], change["system"], change["slot"]) == (
        "j***@example.nl",
        "klaviyo",
        "newsletter",
    )
    assert (change["before"], change["after"], change["rule"]) == ("subscribed", "unsubscribed", "R16")
    assert change["push_result"] == "accepted"
    assert "jan@example.nl" not in result.output
    table = CliRunner().invoke(app, ["log", report.run_id])
    assert "R16" in table.output


def test_log_filters_by_contact_and_system(database: str) -> None:
    one_run(database)
    mine = json.loads(CliRunner().invoke(app, ["log", "--contact", "JAN@example.nl", "--json"]).output)
    assert len(mine["changes"]) == 1
    other = json.loads(CliRunner().invoke(app, ["log", "--contact", "eva@example.nl", "--json"]).output)
    assert other["changes"] == []
    shopify = json.loads(CliRunner().invoke(app, ["log", "--system", "shopify", "--json"]).output)
    assert shopify["changes"] == []


def test_log_shows_a_record_the_ledger_refused_with_vendor_record_id_field_and_error(database: str) -> None:
    report = one_run(database, refuse=frozenset({"eva@example.nl"}))
    assert report.status == "partial"
    result = CliRunner().invoke(app, ["log", "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)["rejected"]
    assert (row["system"], row["field"], row["error"]) == ("klaviyo", "email", "refused by the ledger")
    assert row["record_id"].startswith("klaviyo-")
    table = CliRunner().invoke(app, ["log", report.run_id])
    assert "Records that could not be read" in table.output
    assert row["record_id"] in table.output


def run_with_console(
    database: str, monkeypatch: pytest.MonkeyPatch, *, terminal: bool
) -> tuple[Any, str, list[Any]]:
    """``run --once`` over the fake vendors, its stderr a Console that is a terminal or not."""
    screen = io.StringIO()
    given: list[Any] = []

    def fake_run_once(
        _settings: object, *, progress: Progress | None = None, **_options: object
    ) -> RunReport:
        given.append(progress)
        return one_run(database, progress=progress)

    monkeypatch.setattr(run_cmd, "run_once", fake_run_once)
    monkeypatch.setattr(
        run_cmd, "stderr_console", lambda: Console(file=screen, force_terminal=terminal, width=120)
    )
    result = CliRunner().invoke(app, ["run", "--once"])
    return result, screen.getvalue(), given


def test_run_once_on_a_terminal_draws_pull_and_push_bars_and_one_summary_line(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, screen, _given = run_with_console(database, monkeypatch, terminal=True)
    assert result.exit_code == 0, result.output
    assert "pull mailchimp contacts page 1" in screen
    assert "push klaviyo" in screen
    assert "━" in screen  # the bar itself
    [line] = result.stdout.splitlines()
    assert json.loads(line)["status"] == "success"


def test_run_once_without_a_terminal_draws_no_bars(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    result, screen, given = run_with_console(database, monkeypatch, terminal=False)
    assert result.exit_code == 0, result.output
    assert given == [None]
    assert screen == ""
    [line] = result.stdout.splitlines()
    assert json.loads(line)["status"] == "success"


def test_log_without_runs_says_so(database: str) -> None:
    result = CliRunner().invoke(app, ["log"])
    assert result.exit_code == 1
    assert "No runs yet" in result.output


@pytest.mark.slow
def test_run_once_against_a_served_sandbox_prints_one_json_summary_line(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors.sandbox import served
    from sync_worker.demo import available_sandboxes

    boxes = [box for box in available_sandboxes(lambda _line: None) if box.name == "klaviyo"]
    if not boxes:
        pytest.skip("the Klaviyo sandbox is not in this build")
    [box] = boxes
    box.add_contact("jan@example.nl", {"newsletter": Status.SUBSCRIBED})
    with served(box.app) as base_url:
        for name, value in box.settings_env(base_url).items():
            monkeypatch.setenv(name, value)
        result = CliRunner().invoke(app, ["run", "--once", "--dry-run"])
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()  # the run's own log lines go to stderr
    summary = json.loads(line)
    assert (summary["status"], summary["dry_run"], summary["trigger"]) == ("success", True, "manual")
    assert summary["connectors"]["klaviyo"]["pulled"] == 1
    assert summary["connectors"]["klaviyo"]["planned"] == 1  # a bare subscribed flag: R8, R27
    assert box.status("jan@example.nl", "newsletter") == Status.SUBSCRIBED  # dry run: nothing pushed
