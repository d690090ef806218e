"""Settings from the environment: prefix, nesting, secrets, enabled connectors, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import config
from config import SettingsError, load_settings
from config.display import masked_url
from sync_worker.cli import app

ROOT = Path(__file__).resolve().parents[2]


def test_imported_config_package_is_this_projects() -> None:
    assert Path(config.__file__).resolve().parent == ROOT / "config"
    assert hasattr(config, "Settings")


def test_nested_env_variables_reach_nested_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_HTTP__PORT", "9001")
    monkeypatch.setenv("SYNC_POLICY__SOFT_OPT_IN_MONTHS", "12")
    monkeypatch.setenv("SYNC_MAILCHIMP__PURPOSES", '{"newsletter": "status", "events": "tag:events"}')
    settings = load_settings()
    assert settings.http.port == 9001
    assert settings.policy.soft_opt_in_months == 12
    assert settings.mailchimp.purposes["events"] == "tag:events"


def test_connector_is_enabled_exactly_when_credentials_are_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_MAILCHIMP__API_KEY", "0123abcd-us14")
    assert load_settings().enabled_vendors() == []
    assert load_settings().mailchimp.missing() == ["SYNC_MAILCHIMP__LIST_ID"]
    monkeypatch.setenv("SYNC_MAILCHIMP__LIST_ID", "a1b2c3")
    monkeypatch.setenv("SYNC_KLAVIYO__API_KEY", "pk_test")
    assert load_settings().enabled_vendors() == ["mailchimp", "klaviyo"]


def test_mailchimp_base_url_comes_from_the_key_data_center(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_MAILCHIMP__API_KEY", "0123abcd-us14")
    assert load_settings().mailchimp.effective_base_url() == "https://us14.api.mailchimp.com/3.0"
    monkeypatch.setenv("SYNC_MAILCHIMP__BASE_URL", "http://127.0.0.1:9000/3.0/")
    assert load_settings().mailchimp.effective_base_url() == "http://127.0.0.1:9000/3.0"


def test_wrong_value_names_the_env_variable_and_expectation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_HTTP__PORT", "eighty")
    monkeypatch.setenv("SYNC_POLICY__SOFT_OPT_IN_MONTHS", "48")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    names = [name for name, _ in caught.value.problems]
    assert names == ["SYNC_HTTP__PORT", "SYNC_POLICY__SOFT_OPT_IN_MONTHS"]
    assert "valid integer" in str(caught.value)
    assert "less than or equal to 36" in str(caught.value)


def test_cli_reports_bad_config_without_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_LOG_FORMAT", "xml")
    result = CliRunner().invoke(app, ["config", "check"], standalone_mode=True)
    assert isinstance(result.exception, SettingsError)  # main() turns this into exit 2 with the message
    assert "SYNC_LOG_FORMAT" in str(result.exception)


def test_config_check_masks_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_SECRET_KEY", "very-secret-key-value")
    monkeypatch.setenv("SYNC_MAILCHIMP__API_KEY", "supersecretkey-us3")
    monkeypatch.setenv("SYNC_HUBSPOT__ACCESS_TOKEN", "pat-eu1-secrettoken")
    monkeypatch.setenv("SYNC_DATABASE_URL", "postgresql://sync:dbpassword@db:5432/sync")
    result = CliRunner().invoke(app, ["config", "check", "--json"])
    assert result.exit_code == 0, result.output
    for secret in ("very-secret-key-value", "supersecretkey", "secrettoken", "dbpassword"):
        assert secret not in result.output
    data = json.loads(result.output)
    assert data["settings"]["mailchimp"]["api_key"] == "********"
    assert data["settings"]["database_url"] == "postgresql://sync:********@db:5432/sync"
    assert data["connectors"]["hubspot"]["enabled"] is True
    assert data["connectors"]["shopify"]["missing"] == ["SYNC_SHOPIFY__SHOP", "SYNC_SHOPIFY__ACCESS_TOKEN"]
    assert data["problems"] == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://sync:pw-1@db:5432/sync", "postgresql://sync:********@db:5432/sync"),
        (
            "postgresql+psycopg://sync@db/sync?sslmode=require&password=pw-1",
            "postgresql+psycopg://sync@db/sync?sslmode=require&password=********",
        ),
        ("postgresql://db/sync?sslpassword=pw-1", "postgresql://db/sync?sslpassword=********"),
        # SQLAlchemy takes everything up to the "@" as the password, "?", "#" and "/" included.
        ("postgresql://sync:pw?1@db:5432/sync", "postgresql://sync:********@db:5432/sync"),
        (
            "postgresql://sync:pw#1/x@db/sync?password=pw-2",
            "postgresql://sync:********@db/sync?password=********",
        ),
        ("sqlite:///data/ledger.db", "sqlite:///data/ledger.db"),
    ],
)
def test_database_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert masked_url(url) == shown


def test_config_check_warns_when_secret_key_is_missing() -> None:
    data = json.loads(CliRunner().invoke(app, ["config", "check", "--json"]).output)
    assert any("SYNC_SECRET_KEY" in problem for problem in data["problems"])


def test_cron_needs_five_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_SCHEDULE__CRON", "*/5 * *")
    with pytest.raises(SettingsError, match="SYNC_SCHEDULE__CRON"):
        load_settings()


def test_purpose_texts_must_describe_configured_purposes(monkeypatch: pytest.MonkeyPatch) -> None:
    """R36: a text for a purpose that is not configured is refused, naming the variable and the key."""
    monkeypatch.setenv("SYNC_POLICY__PURPOSE_TEXTS", '{"newsletter": "News", "webinars": "Webinar invites"}')
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert [name for name, _ in caught.value.problems] == ["SYNC_POLICY__PURPOSE_TEXTS"]
    assert "'webinars' is not a configured purpose" in str(caught.value)
    monkeypatch.setenv("SYNC_POLICY__PURPOSES", '["newsletter", "webinars"]')
    assert load_settings().policy.purpose_texts["webinars"] == "Webinar invites"
