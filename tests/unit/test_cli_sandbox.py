"""``sync-worker sandbox``: serves a vendor's sandbox and prints how to point the worker at it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sync_worker.cli import app, sandbox_cmd


def test_sandbox_command_prints_base_url_and_settings_then_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    served: dict[str, Any] = {}
    monkeypatch.setattr(sandbox_cmd, "serve", lambda asgi, **kw: served.update(app=asgi, **kw))
    result = CliRunner().invoke(app, ["sandbox", "klaviyo", "--port", "8765", "--seed", "demo"])
    assert result.exit_code == 0, result.output
    assert "klaviyo sandbox at http://127.0.0.1:8765 (12 seeded)" in result.output
    assert "SYNC_KLAVIYO__BASE_URL='http://127.0.0.1:8765'" in result.output
    assert served["port"] == 8765
    assert served["host"] == "127.0.0.1"


def test_sandbox_command_seeds_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sandbox_cmd, "serve", lambda asgi, **kw: None)
    people = tmp_path / "people.json"
    people.write_text(json.dumps([{"email": "a@example.com", "statuses": {"newsletter": "subscribed"}}]))
    result = CliRunner().invoke(app, ["sandbox", "klaviyo", "--seed", str(people)])
    assert result.exit_code == 0, result.output
    assert "(1 seeded)" in result.output


def test_unknown_vendor_is_refused() -> None:
    result = CliRunner().invoke(app, ["sandbox", "nosuchvendor"])
    assert result.exit_code == 2
    assert "no sandbox for 'nosuchvendor'" in result.output
