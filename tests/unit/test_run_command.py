"""The runner as the service's run function (off the event loop), and `sync-worker run --help`."""

from __future__ import annotations

import asyncio
import threading
import types
from typing import Any

import pytest
from typer.testing import CliRunner

from config import load_settings
from connectors.base import Status
from sync_worker.cli import app
from sync_worker.service import in_daemon_thread, runner_run_fn, summary_of
from sync_worker.trigger import RunRequest, RunStatus, Trigger, WebhookFact


def report(status: str, run_id: str, **per_connector: tuple[int, int]) -> Any:
    counts = {name: types.SimpleNamespace(pushed=p, failed=f) for name, (p, f) in per_connector.items()}
    return types.SimpleNamespace(status=status, run_id=run_id, counts=counts)


def test_report_totals_are_summed_over_its_connectors() -> None:
    summary = summary_of(report("partial", "r1", mailchimp=(2, 1), klaviyo=(3, 0)))
    assert (summary.status, summary.run_id, summary.pushed, summary.failed) == (RunStatus.PARTIAL, "r1", 5, 1)


def test_summary_carries_pushes_by_purpose_and_vendor_retries_for_the_metrics() -> None:
    raw = report("success", "r3", klaviyo=(1, 0))
    raw.pushes = {("klaviyo", "newsletter", True): 1}
    raw.vendor_calls = {"klaviyo": (2, 1)}
    summary = summary_of(raw)
    assert (summary.pushes, summary.vendor_calls) == (
        (("klaviyo", "newsletter", True, 1),),
        (("klaviyo", 2, 1),),
    )


def test_unknown_report_status_counts_as_failed() -> None:
    assert summary_of(report("running", "r2")).status is RunStatus.FAILED


def test_runner_runs_off_the_event_loop_with_the_trigger_and_all_connectors() -> None:
    calls: list[dict[str, Any]] = []
    loop_threads: list[bool] = []

    def run_once(settings: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        loop_threads.append(threading.current_thread() is threading.main_thread())
        return report("success", "r9", mailchimp=(1, 0))

    run = runner_run_fn(load_settings(), run_once=run_once)
    request = RunRequest(Trigger.WEBHOOK, emails=frozenset({"a@example.com"}))
    summary = asyncio.run(run(request))
    # A webhook starts an incremental run of every connector (the runner pulls only without emails=).
    assert calls == [{"trigger": "webhook", "dry_run": False, "only": None, "full": False, "leased": True}]
    assert loop_threads == [False]
    assert (summary.status, summary.run_id, summary.pushed) == (RunStatus.SUCCESS, "r9", 1)


def test_webhook_facts_run_once_over_every_connector_with_the_facts() -> None:
    calls: list[dict[str, Any]] = []

    def run_once(settings: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return report("success", "r7", klaviyo=(1, 0))

    fact = WebhookFact("mailchimp", "unsubscribe", "a@example.com", status=Status.UNSUBSCRIBED)
    summary = asyncio.run(runner_run_fn(load_settings(), run_once=run_once)(RunRequest.for_facts((fact,))))
    assert calls == [{"trigger": "webhook", "dry_run": False, "facts": (fact,)}]
    assert (summary.status, summary.pushed) == (RunStatus.SUCCESS, 1)


def test_leased_subset_runs_connector_by_connector_and_reports_the_worst_status() -> None:
    statuses = {"klaviyo": "failed", "mailchimp": "success"}
    seen: list[str] = []

    def run_once(settings: Any, *, only: str, **kwargs: Any) -> Any:
        seen.append(only)
        return report(statuses[only], f"r-{only}", **{only: (1, 0)})

    run = runner_run_fn(load_settings(), run_once=run_once)
    summary = asyncio.run(run(RunRequest(Trigger.SCHEDULE, only=frozenset({"mailchimp", "klaviyo"}))))
    assert seen == ["klaviyo", "mailchimp"]
    assert (summary.status, summary.run_id, summary.pushed) == (RunStatus.FAILED, "r-klaviyo,r-mailchimp", 2)


def test_work_that_raises_re_raises_in_the_awaiting_task() -> None:
    def fail() -> None:
        raise ValueError("vendor down")

    with pytest.raises(ValueError, match="vendor down"):
        asyncio.run(in_daemon_thread(fail))


def test_run_help_documents_service_mode() -> None:
    result = CliRunner().invoke(app, ["run", "--help"])
    assert result.exit_code == 0
    assert "--once" in result.output
    assert "/healthz" in result.output
