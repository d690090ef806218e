"""`sync-worker outbox list | retry | dismiss` from the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import structlog
from typer.testing import CliRunner

from sync_worker import db
from sync_worker.cli import app, ledger_shell
from tests.runs.test_outbox_attention import refused_optout, state_of
from tests.runs.test_runner import World


@pytest.fixture
def world(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A database where Klaviyo refused Jan's opt-out, which the commands below open by URL."""
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("SYNC_DATABASE_URL", url)
    monkeypatch.setenv("SYNC_SECRET_KEY", "cli-secret")
    structlog.reset_defaults()
    engine = db.make_engine(url)
    db.upgrade(engine)
    made = World(engine)
    monkeypatch.setattr(ledger_shell, "clock", lambda: made.now + timedelta(hours=3))
    yield made
    engine.dispose()


def invoke(*args: str) -> tuple[int, str]:
    """Exit code and stdout (the answer; logs and errors go to stderr)."""
    result = CliRunner().invoke(app, ["outbox", *args])
    return result.exit_code, result.stdout


def errors(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["outbox", *args])
    return result.exit_code, result.stderr


async def test_list_shows_the_refused_optout_masked_with_reason_and_age(world: World) -> None:
    item = await refused_optout(world)
    code, output = invoke("list", "--json")
    assert code == 0, output
    [row] = json.loads(output)
    assert row == {
        "key": item.key, "system": "klaviyo", "person": "j***@example.nl", "slot": "newsletter",
        "action": "unsubscribe", "state": "parked", "attempts": 0, "vendor_reason": "injected",
        "age_seconds": 3 * 3600, "makes_runs_partial": True,
    }  # fmt: skip
    code, table = invoke("list")
    assert code == 0
    assert item.key in table
    assert "R25: run partial" in table
    assert "3.0 h" in table
    assert "jan@example.nl" not in table


async def test_list_says_when_nothing_needs_attention(world: World) -> None:
    assert invoke("list") == (0, "No outbox item needs attention.\n")
    assert invoke("list", "--json") == (0, "[]\n")


async def test_dismiss_records_who_and_why_in_the_run_log(world: World) -> None:
    item = await refused_optout(world)
    code, output = invoke("dismiss", item.key, "--reason", "contact deleted in Klaviyo", "--by", "dpo")
    assert code == 0, output
    assert output == f"dismissed {item.key} (klaviyo, j***@example.nl, unsubscribe)\n"
    assert state_of(world, item.key)[0] == "dismissed"
    log = json.loads(CliRunner().invoke(app, ["log", "--json"]).stdout)
    [change] = log["changes"]
    assert change["reason"] == f"dismissed by dpo: contact deleted in Klaviyo (outbox item {item.key})"
    assert change["push_result"] == "operator: dpo"
    [run] = json.loads(CliRunner().invoke(app, ["runs", "--json"]).stdout)[:1]
    assert (run["trigger"], run["status"]) == ("operator", "success")


async def test_dismiss_needs_a_reason(world: World) -> None:
    item = await refused_optout(world)
    code, _ = invoke("dismiss", item.key)
    assert code == 2
    assert state_of(world, item.key)[0] == "parked"


async def test_unknown_key_is_named_and_nothing_changes(world: World) -> None:
    item = await refused_optout(world)
    code, output = errors("retry", item.key, "nope:123")
    assert code == 2
    assert "nope:123: no such outbox item" in output
    assert "nothing was changed" in output
    assert state_of(world, item.key)[0] == "parked"
    code, output = errors("dismiss", "nope:123", "--reason", "x")
    assert (code, "nope:123: no such outbox item" in output) == (2, True)


async def test_retry_all_parked_puts_the_refusal_back_with_json_answer(world: World) -> None:
    item = await refused_optout(world)
    code, output = invoke("retry", "--all-parked", "--by", "ops", "--json")
    assert code == 0, output
    assert json.loads(output) == {"retried": [item.key], "by": "ops", "reason": None}
    assert state_of(world, item.key) == ("pending", 0)
    assert invoke("retry", "--all-parked") == (0, "nothing to retry\n")


def test_retry_wants_keys_or_all_parked_not_both(world: World) -> None:
    assert invoke("retry")[0] == 2
    code, output = errors("retry", "k1", "--all-parked")
    assert code == 2
    assert "KEY... or --all-parked" in output
