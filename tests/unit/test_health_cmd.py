"""``sync-worker health``: the container's HEALTHCHECK asks the worker's /healthz on the configured port."""

from __future__ import annotations

import httpx
import pytest
import respx
from typer.testing import CliRunner

from sync_worker.cli import app


def test_health_exits_zero_when_healthz_answers_200(
    respx_mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_HTTP__PORT", "9123")
    respx_mock.get("http://127.0.0.1:9123/healthz").respond(200, json={"status": "ok"})
    result = CliRunner().invoke(app, ["health"])
    assert result.exit_code == 0, result.output
    assert "healthy: http://127.0.0.1:9123/healthz: HTTP 200" in result.output


def test_health_exits_one_when_healthz_answers_503(respx_mock: respx.MockRouter) -> None:
    respx_mock.get("http://127.0.0.1:8080/healthz").respond(503)
    result = CliRunner().invoke(app, ["health"])
    assert result.exit_code == 1
    assert "unhealthy: http://127.0.0.1:8080/healthz: HTTP 503" in result.output


def test_health_exits_one_when_nothing_answers_in_time(respx_mock: respx.MockRouter) -> None:
    respx_mock.get("http://127.0.0.1:8080/healthz").mock(side_effect=httpx.ConnectTimeout("timed out"))
    result = CliRunner().invoke(app, ["health", "--timeout", "0.5"])
    assert result.exit_code == 1
    assert "unhealthy: http://127.0.0.1:8080/healthz: ConnectTimeout: timed out" in result.output


def test_health_asks_loopback_even_when_the_server_binds_all_interfaces(
    respx_mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_HTTP__HOST", "0.0.0.0")
    monkeypatch.setenv("SYNC_HTTP__PORT", "9124")
    route = respx_mock.get("http://127.0.0.1:9124/healthz").respond(200)
    assert CliRunner().invoke(app, ["health"]).exit_code == 0
    assert route.call_count == 1
