"""The ledger commands end to end through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from sync_worker import db
from sync_worker.cli import app, ledger_shell

NOW = datetime(2026, 6, 1, tzinfo=UTC)
LINES = [
    {
        "type": "consent",
        "email": "A@B.nl",
        "purpose": "newsletter",
        "action": "grant",
        "occurred_at": "2026-01-02T10:00:00Z",
        "source": "website",
        "source_event_id": "f-17",
        "method": "web_form",
        "collection_point": "website:footer",
        "evidence": {"checkbox_prechecked": False},
    },
    {
        "type": "purchase",
        "email": "a@b.nl",
        "occurred_at": "2026-02-01T09:00:00Z",
        "source": "shopify",
        "source_event_id": "order-1001",
        "paid": True,
        "categories": ["phones"],
    },
    {
        "type": "consent",
        "email": "a@b.nl",
        "purpose": "events",
        "action": "grant",
        "occurred_at": "2026-01-03T10:00:00Z",
        "source": "mailchimp",
        "source_event_id": "m-1",
        "method": "sync",
    },
    {
        "type": "consent",
        "email": "a@b.nl",
        "action": "withdraw",
        "occurred_at": "2026-03-01T00:00:00Z",
        "source": "website",
        "source_event_id": "u-1",
    },
]


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SYNC_DATABASE_URL", database_url)
    monkeypatch.setenv("SYNC_SECRET_KEY", "cli-test-secret")
    monkeypatch.setenv(
        "SYNC_COLLECTION_POINTS",
        json.dumps({"website:footer": {"purposes": ["newsletter", "promotions"], "notice_version": "v3"}}),
    )
    monkeypatch.setattr(ledger_shell, "clock", lambda: NOW)
    return CliRunner()


def write(tmp_path: Path, lines: list[object], name: str = "in.jsonl") -> str:
    path = tmp_path / name
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return str(path)


def explain(cli: CliRunner, *args: str) -> dict[str, dict[str, object]]:
    result = cli.invoke(app, ["explain", "a@b.nl", "--json", *args])
    assert result.exit_code == 0, result.output
    return {d["purpose"]: d for d in json.loads(result.stdout)["decisions"]}


def test_import_keeps_good_lines_and_reports_bad_ones_by_line_and_field(
    cli: CliRunner, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        [
            LINES[0],
            {"type": "consent", "email": "x@y.nl", "action": "maybe", "source": "s", "source_event_id": "1"},
            "{oops",
            LINES[1],
        ],
    )
    result = cli.invoke(app, ["import", path, "--json"])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert (summary["inserted"], summary["rejected"]) == (2, 2)
    assert [(e["line"], e["field"]) for e in summary["errors"]] == [(2, "action"), (3, "(line)")]
    again = cli.invoke(app, ["import", path, "--json"])
    assert json.loads(again.stdout)["duplicates"] == 2


def test_import_reads_csv_from_stdin(cli: CliRunner) -> None:
    csv_text = (
        "type,email,purpose,action,occurred_at,source,source_event_id,method,collection_point,evidence.checkbox_prechecked,paid,categories\n"
        "consent,a@b.nl,newsletter,grant,2026-01-02T10:00:00Z,website,f-1,web_form,website:footer,false,,\n"
        "purchase,a@b.nl,,,2026-02-01T09:00:00Z,shopify,o-1,,,,true,phones;cases\n"
    )
    result = cli.invoke(app, ["import", "-", "--format", "csv"], input=csv_text)
    assert result.exit_code == 0, result.output
    decisions = explain(cli)
    assert decisions["newsletter"]["allowed"] is True
    assert decisions["promotions"]["categories"] == ["cases", "phones"]


def test_explain_gives_decision_rule_reason_and_evidence_per_purpose(cli: CliRunner, tmp_path: Path) -> None:
    assert cli.invoke(app, ["import", write(tmp_path, LINES)]).exit_code == 0
    before = explain(cli, "--at", "2026-02-15T00:00:00Z")
    assert (before["newsletter"]["allowed"], before["newsletter"]["rule"]) == (True, "R5")
    grant = before["newsletter"]["events"][0]
    assert (grant["evidence_level"], grant["evidence"]["notice_version"]) == ("attested", "v3")
    assert (before["promotions"]["basis"], before["promotions"]["events"][0]["type"]) == (
        "soft_opt_in",
        "purchase",
    )
    assert (before["events"]["rule"], before["events"]["quarantined"]) == ("R8", True)
    after = explain(cli)
    assert {p: (d["allowed"], d["rule"]) for p, d in after.items()} == {
        "newsletter": (False, "R17"),
        "promotions": (False, "R17"),
        "events": (False, "R17"),
        "lead_magnet": (False, "R17"),
    }


def test_r11_import_of_age_evidence_verifies_and_explain_names_r11(cli: CliRunner, tmp_path: Path) -> None:
    minor = {**LINES[0], "evidence": {"birth_date": "2010-06-30", "parental_consent": False}}
    assert cli.invoke(app, ["import", write(tmp_path, [minor])]).exit_code == 0
    csv_text = (
        "type,email,purpose,action,occurred_at,source,source_event_id,method,collection_point,"
        "evidence.age,evidence.parental_consent\n"
        "consent,a@b.nl,promotions,grant,2026-01-02T10:00:00Z,website,f-2,web_form,website:footer,14,\n"
        "consent,c@d.nl,promotions,grant,2026-01-02T10:00:00Z,website,f-3,web_form,website:footer,14,true\n"
    )
    assert cli.invoke(app, ["import", "-", "--format", "csv"], input=csv_text).exit_code == 0
    assert cli.invoke(app, ["ledger", "verify"]).exit_code == 0
    decisions = explain(cli)
    newsletter = decisions["newsletter"]
    assert (newsletter["allowed"], newsletter["rule"], newsletter["code"]) == (
        False,
        "R11",
        "minor_without_parental_consent",
    )
    assert "without parental consent" in str(newsletter["reason"])
    assert newsletter["events"][0]["evidence"]["birth_date"] == "2010-06-30"  # type: ignore[index]
    assert decisions["promotions"]["rule"] == "R11"  # the stated age, from CSV text
    table = cli.invoke(app, ["explain", "a@b.nl"])
    assert "R11" in table.stdout
    with_parent = cli.invoke(app, ["explain", "c@d.nl", "--json"])
    promotions = {d["purpose"]: d for d in json.loads(with_parent.stdout)["decisions"]}["promotions"]
    assert (promotions["allowed"], promotions["rule"]) == (True, "R5")


def test_export_holds_everything_about_the_person_with_receipts(cli: CliRunner, tmp_path: Path) -> None:
    cli.invoke(app, ["import", write(tmp_path, LINES)])
    result = cli.invoke(app, ["export", "a@b.nl"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["consent_events"]) == 3
    assert data["purchases"][0]["order_id"] == "order-1001"
    receipts = data["consent_receipts"]
    assert [r["services"][0]["purposes"][0]["purpose"] for r in receipts] == ["newsletter", "events"]
    assert receipts[0]["version"] == "KI-CR-v1.1.0"
    assert receipts[0]["consentTimestamp"] == int(datetime(2026, 1, 2, 10, tzinfo=UTC).timestamp())


def test_erase_removes_the_person_keeps_suppression_and_chain(
    cli: CliRunner, tmp_path: Path, database_url: str
) -> None:
    cli.invoke(app, ["import", write(tmp_path, LINES)])
    result = cli.invoke(app, ["erase", "A@b.nl"])
    assert result.exit_code == 0, result.output
    assert "a@b.nl" not in result.stdout  # answered without repeating the address
    assert json.loads(cli.invoke(app, ["export", "a@b.nl"]).stdout)["suppressed"] is True
    reimport = cli.invoke(
        app, ["import", write(tmp_path, [{**LINES[0], "source_event_id": "f-99"}]), "--json"]
    )
    assert json.loads(reimport.stdout)["suppressed"] == 1
    assert explain(cli)["newsletter"]["rule"] == "R22"
    assert cli.invoke(app, ["ledger", "verify"]).exit_code == 0
    engine = db.make_engine(database_url)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM persons")).scalar() == 0
        conn.execute(text("UPDATE consent_events SET source_event_id = 'x' WHERE id = 1"))
    engine.dispose()
    broken = cli.invoke(app, ["ledger", "verify", "--json"])
    assert broken.exit_code == 1
    assert json.loads(broken.stdout)["broken_at"] == 1


def test_erase_without_secret_key_names_the_variable(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNC_SECRET_KEY")
    result = cli.invoke(app, ["erase", "a@b.nl"])
    assert result.exit_code == 2
    assert "SYNC_SECRET_KEY" in result.output


def test_bad_email_argument_is_a_clear_error(cli: CliRunner) -> None:
    result = cli.invoke(app, ["explain", "not-an-address"])
    assert result.exit_code == 2
    assert "EMAIL" in result.output
