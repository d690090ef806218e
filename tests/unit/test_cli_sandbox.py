"""``sync-worker sandbox``: seeds a vendor's sandbox, prints how to reach it, serves it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from connectors.base import Status
from connectors.shopify.sandbox import ShopifySandbox
from connectors.shopify.schema import default_schema_path
from sync_worker.cli import app, sandbox_cmd


def test_seed_file_adds_contacts_with_their_statuses(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps([{"email": "ann@example.nl", "statuses": {"newsletter": "unsubscribed"}}]))
    sandbox = ShopifySandbox()
    sandbox_cmd.seed_sandbox(sandbox, str(seed))
    assert sandbox.status("ann@example.nl", "newsletter") is Status.UNSUBSCRIBED


def test_seed_file_entry_without_email_names_the_entry_and_field(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps([{"email": "a@example.nl"}, {"statuses": {}}]))
    with pytest.raises(typer.BadParameter, match="entry 1: email is missing"):
        sandbox_cmd.seed_sandbox(ShopifySandbox(), str(seed))


def test_sandbox_command_prints_the_settings_and_serves_the_seeded_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not default_schema_path().is_file():
        pytest.skip(f"Shopify's schema is not at {default_schema_path()}")
    served: dict[str, Any] = {}
    monkeypatch.setattr(sandbox_cmd.uvicorn, "run", lambda app, **options: served.update(app=app, **options))
    result = CliRunner().invoke(app, ["sandbox", "shopify", "--port", "8765", "--seed", "demo"])
    assert result.exit_code == 0, result.output
    assert "shopify sandbox at http://127.0.0.1:8765, seeded from demo" in result.output
    assert "export SYNC_SHOPIFY__BASE_URL=http://127.0.0.1:8765/admin/api/2026-01" in result.output
    assert (served["host"], served["port"]) == ("127.0.0.1", 8765)


def test_unknown_vendor_is_refused() -> None:
    result = CliRunner().invoke(app, ["sandbox", "acme"])
    assert result.exit_code == 2
    assert "unknown vendor 'acme'" in result.output
