"""``sync-worker run``: the service by default, ``--once`` for one run, both through the runner adapter."""

from __future__ import annotations

import asyncio
import sys
import types
from dataclasses import dataclass
from typing import Any

import pytest
from typer.testing import CliRunner

from config import load_settings
from sync_worker.cli import app
from sync_worker.cli.run_cmd import runner_fn, summary_of
from sync_worker.trigger import RunRequest, RunStatus, Trigger


def test_run_says_honestly_when_the_runner_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sync_worker.runner", None)  # import fails
    for args in (["run", "--once"], ["run"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 3, result.output
        assert "issue 6" in result.output


def test_runner_without_its_entry_point_counts_as_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sync_worker.runner", types.SimpleNamespace())
    assert runner_fn(load_settings()) is None


@dataclass
class FakeReport:
    status: str
    run_id: int
    pushed: int


def test_runner_adapter_passes_the_people_and_the_trigger(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    async def run_once(settings: Any, **kwargs: Any) -> FakeReport:
        calls.append(kwargs)
        return FakeReport("partial", 12, 3)

    monkeypatch.setitem(sys.modules, "sync_worker.runner", types.SimpleNamespace(run_once=run_once))
    run = runner_fn(load_settings(), dry_run=True)
    assert run is not None
    request = RunRequest(Trigger.WEBHOOK, emails=frozenset({"b@example.com", "a@example.com"}))
    summary = asyncio.run(run(request))
    assert calls == [
        {
            "trigger": "webhook",
            "dry_run": True,
            "only": None,
            "full": False,
            "emails": ["a@example.com", "b@example.com"],
        }
    ]
    assert (summary.status, summary.run_id, summary.pushed) == (RunStatus.PARTIAL, "12", 3)


def test_totals_are_summed_over_per_connector_counts() -> None:
    report = types.SimpleNamespace(
        status="success",
        run_id="r1",
        counts={
            "mailchimp": types.SimpleNamespace(pushed=2, failed=1),
            "klaviyo": types.SimpleNamespace(pushed=3, failed=0),
        },
    )
    summary = summary_of(report)
    assert (summary.status, summary.pushed, summary.failed) == (RunStatus.SUCCESS, 5, 1)


def test_unknown_report_status_counts_as_failed() -> None:
    assert summary_of(FakeReport("exploded", 1, 0)).status is RunStatus.FAILED


def test_run_help_documents_service_mode() -> None:
    result = CliRunner().invoke(app, ["run", "--help"])
    assert result.exit_code == 0
    assert "--once" in result.output
    assert "/healthz" in result.output
