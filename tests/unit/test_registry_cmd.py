"""``sync-worker registry``: the Art. 30 record of processing per configured purpose (R36)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from config import SettingsError
from sync_worker.cli import app, ledger_shell

FIELDS = {
    "purpose",
    "controller",
    "text",
    "text_source",
    "version",
    "legal_basis",
    "data_subjects",
    "data_categories",
    "recipients",
    "retention",
    "security",
}
MAILCHIMP = {
    "SYNC_MAILCHIMP__API_KEY": "mckey-us1",
    "SYNC_MAILCHIMP__LIST_ID": "aud1",
    "SYNC_MAILCHIMP__PURPOSES": '{"newsletter": "status", "promotions": "interest:9143cf"}',
}
HUBSPOT = {
    "SYNC_HUBSPOT__ACCESS_TOKEN": "pat-token",
    "SYNC_HUBSPOT__SUBSCRIPTIONS": '{"newsletter": "111", "events": "222"}',
}


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_shell, "clock", lambda: datetime(2026, 3, 1, 12, tzinfo=UTC))


def set_env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def registry_json() -> dict[str, Any]:
    result = CliRunner().invoke(app, ["registry", "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def by_purpose(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["purpose"]: entry for entry in data["purposes"]}


def recipients(data: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    return {p: [(r["system"], r["maps_to"]) for r in e["recipients"]] for p, e in by_purpose(data).items()}


def test_every_configured_purpose_has_every_field(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(
        monkeypatch,
        {
            "SYNC_CONTROLLER": "Example Webshop B.V.",
            "SYNC_POLICY__PURPOSES": '["newsletter", "promotions", "webinars"]',
            "SYNC_POLICY__PURPOSE_VERSIONS": '{"newsletter": "2026-03"}',
            "SYNC_POLICY__PURPOSE_TEXTS": '{"promotions": "Our offers"}',
            "SYNC_POLICY__EVIDENCE_RETENTION_YEARS": "7",
        },
    )
    data = registry_json()
    assert data["rule"] == "R36"
    assert data["generated_at"] == "2026-03-01T12:00:00+00:00"
    assert [e["purpose"] for e in data["purposes"]] == ["newsletter", "promotions", "webinars"]
    for entry in data["purposes"]:
        assert set(entry) == FIELDS
        assert entry["controller"] == "Example Webshop B.V."
        assert entry["retention"]["evidence_retention_years"] == 7
        assert entry["retention"]["evidence_deletion_applied"] is False  # R35 is validated only
        assert entry["security"]["database"]["kind"] == "SQLite file"
        assert {c["category"] for c in entry["data_categories"]} >= {"email_address", "consent_evidence"}
    entries = by_purpose(data)
    assert entries["newsletter"]["version"] == "2026-03"
    assert entries["newsletter"]["text_source"] == "built-in"
    assert (entries["promotions"]["text"], entries["promotions"]["text_source"]) == (
        "Our offers",
        "SYNC_POLICY__PURPOSE_TEXTS",
    )
    assert (entries["webinars"]["text"], entries["webinars"]["version"]) == (None, None)
    assert data["warnings"][0] == "purpose 'webinars' has no text: set it in SYNC_POLICY__PURPOSE_TEXTS (R36)"


def test_recipients_follow_the_enabled_connectors_and_their_mappings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert recipients(registry_json()) == {
        "newsletter": [],
        "promotions": [],
        "events": [],
        "lead_magnet": [],
    }
    set_env(monkeypatch, MAILCHIMP)
    assert recipients(registry_json()) == {
        "newsletter": [("mailchimp", "member status in audience aud1")],
        "promotions": [("mailchimp", "interest (group) '9143cf' in audience aud1")],
        "events": [],
        "lead_magnet": [],
    }
    set_env(monkeypatch, HUBSPOT)
    data = registry_json()
    assert recipients(data)["newsletter"] == [
        ("mailchimp", "member status in audience aud1"),
        ("hubspot", "subscription type 111 (communication preferences)"),
    ]
    assert recipients(data)["events"] == [("hubspot", "subscription type 222 (communication preferences)")]
    assert by_purpose(data)["events"]["recipients"][0] | {"maps_to": ""} == {
        "system": "hubspot",
        "vendor": "HubSpot",
        "kind": "CRM",
        "role": "processor",
        "maps_to": "",
    }
    monkeypatch.delenv("SYNC_MAILCHIMP__API_KEY")  # Mailchimp is disabled: it is no recipient any more
    assert recipients(registry_json()) == {
        "newsletter": [("hubspot", "subscription type 111 (communication preferences)")],
        "promotions": [],
        "events": [("hubspot", "subscription type 222 (communication preferences)")],
        "lead_magnet": [],
    }


def test_a_mapped_purpose_that_is_not_configured_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, HUBSPOT | {"SYNC_POLICY__PURPOSES": '["newsletter"]'})
    data = registry_json()
    assert recipients(data) == {
        "newsletter": [("hubspot", "subscription type 111 (communication preferences)")]
    }
    assert "hubspot maps purpose 'events', which SYNC_POLICY__PURPOSES does not list" in data["warnings"]


def test_only_promotions_has_the_soft_opt_in_basis_and_purchases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_POLICY__SOFT_OPT_IN_MONTHS", "18")
    for purpose, entry in by_purpose(registry_json()).items():
        bases = {b["basis"]: b for b in entry["legal_basis"]}
        categories = {c["category"] for c in entry["data_categories"]}
        assert bases["consent"]["law"] == "Art. 6(1)(a) GDPR; Art. 11.7(1) Telecommunicatiewet"
        if purpose == "promotions":
            assert set(bases) == {"consent", "soft_opt_in"}
            assert "Art. 11.7(3) Telecommunicatiewet" in bases["soft_opt_in"]["law"]
            assert "18 months after the last paid purchase" in bases["soft_opt_in"]["applies_to"]
            assert "purchases" in categories
        else:
            assert set(bases) == {"consent"}, purpose
            assert "purchases" not in categories, purpose


def test_a_missing_controller_is_a_warning_not_a_failure() -> None:
    data = registry_json()  # registry_json asserts exit code 0
    assert data["controller"] is None
    assert all(entry["controller"] is None for entry in data["purposes"])
    assert "SYNC_CONTROLLER is not set: the record names no controller (R36)" in data["warnings"]
    text = CliRunner().invoke(app, ["registry"]).output
    assert "controller: (not set: SYNC_CONTROLLER)" in text


def test_a_text_for_an_unknown_purpose_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_POLICY__PURPOSE_TEXTS", '{"webinars": "Webinar invitations"}')
    result = CliRunner().invoke(app, ["registry", "--json"])
    assert isinstance(result.exception, SettingsError)  # main() turns this into exit 2 with the message
    assert "SYNC_POLICY__PURPOSE_TEXTS" in str(result.exception)
    assert "'webinars' is not a configured purpose" in str(result.exception)


SECRETS = {
    "SYNC_SECRET_KEY": "MARKER-secret-key",
    "SYNC_MAILCHIMP__API_KEY": "MARKER-mailchimp-key-us1",
    "SYNC_MAILCHIMP__WEBHOOK_SECRET": "MARKER-mailchimp-webhook",
    "SYNC_SHOPIFY__ACCESS_TOKEN": "MARKER-shopify-token",
    "SYNC_SHOPIFY__WEBHOOK_SECRET": "MARKER-shopify-webhook",
    "SYNC_KLAVIYO__API_KEY": "MARKER-klaviyo-key",
    "SYNC_KLAVIYO__WEBHOOK_SECRET": "MARKER-klaviyo-webhook",
    "SYNC_HUBSPOT__ACCESS_TOKEN": "MARKER-hubspot-token",
    "SYNC_HUBSPOT__CLIENT_SECRET": "MARKER-hubspot-secret",
}


@pytest.mark.parametrize("args", [["registry", "--json"], ["registry"]], ids=["json", "text"])
def test_no_secret_and_no_database_password_is_shown(
    monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    set_env(
        monkeypatch,
        SECRETS
        | {
            "SYNC_MAILCHIMP__LIST_ID": "aud1",
            "SYNC_SHOPIFY__SHOP": "shop.example",
            "SYNC_HUBSPOT__SUBSCRIPTIONS": '{"events": "222"}',
            "SYNC_DATABASE_URL": "postgresql://sync:MARKER-db-password@db:5432/sync",
        },
    )
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "MARKER" not in result.output
    assert "postgresql://sync:********@db:5432/sync" in result.output  # the location, masked
    assert "PostgreSQL" in result.output
    for vendor in ("Mailchimp", "Shopify", "Klaviyo", "HubSpot"):
        assert vendor in result.output  # every connector is enabled and listed, so its settings were read


def test_the_text_output_shows_each_purpose_and_its_recipients(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, MAILCHIMP | {"SYNC_CONTROLLER": "Example Webshop B.V."})
    result = CliRunner().invoke(app, ["registry"])
    assert result.exit_code == 0, result.output
    assert "(R36)" in result.output
    assert "controller: Example Webshop B.V." in result.output
    for purpose in ("newsletter", "promotions", "events", "lead_magnet"):
        assert f"purpose: {purpose}" in result.output
    assert "Mailchimp (ESP, processor): interest (group) '9143cf' in audience aud1" in result.output
    assert "none: no enabled connector maps this purpose" in result.output
    assert "soft_opt_in: Art. 11.7(3) Telecommunicatiewet" in result.output


def test_an_enabled_connector_that_maps_no_purpose_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_HUBSPOT__ACCESS_TOKEN", "pat-token")  # SYNC_HUBSPOT__SUBSCRIPTIONS is empty
    warning = "hubspot is enabled but maps no purpose: it is listed as no purpose's recipient"
    assert warning in registry_json()["warnings"]
    set_env(monkeypatch, HUBSPOT)
    assert warning not in registry_json()["warnings"]
