"""``sync-worker sandbox hubspot``: builds and seeds the sandbox it serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from connectors.base import Status
from sync_worker.cli import app
from sync_worker.cli.sandbox_cmd import build


def test_demo_seed_fills_the_hubspot_sandbox() -> None:
    sandbox = build("hubspot", "demo")

    assert sandbox.status("anna@example.com", "newsletter") is Status.SUBSCRIBED
    assert sandbox.status("cor@example.com", "newsletter") is Status.UNSUBSCRIBED


def test_seed_file_adds_each_person_with_vendor_extras(tmp_path: Path) -> None:
    seed = tmp_path / "people.json"
    seed.write_text(
        json.dumps(
            [
                {"email": "a@example.com", "statuses": {"newsletter": "subscribed"}},
                {"email": "b@example.com", "statuses": {}, "opted_out_all": True},
            ]
        )
    )

    sandbox = build("hubspot", str(seed))

    assert sandbox.status("a@example.com", "newsletter") is Status.SUBSCRIBED
    assert sandbox.status("b@example.com", "promotions") is Status.UNSUBSCRIBED


def test_unknown_vendor_is_refused_by_name() -> None:
    with pytest.raises(typer.BadParameter, match="unknown vendor 'nope'"):
        build("nope", None)


def test_sandbox_command_is_no_longer_pending() -> None:
    result = CliRunner().invoke(app, ["sandbox", "--help"])

    assert result.exit_code == 0
    assert "not implemented yet" not in result.output
    assert "--seed" in result.output
