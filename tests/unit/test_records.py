"""Validation of ledger input records and the import reader."""

from __future__ import annotations

import io

import pytest
from pydantic import ValidationError

from sync_worker.ledger.importer import Parsed, read_records
from sync_worker.ledger.records import ConsentEventIn
from sync_worker.line_error import LineError


def test_r17_objection_covers_all_marketing_whatever_purpose_the_source_named() -> None:
    event = ConsentEventIn(
        email="A@Example.NL", action="object", purpose="newsletter", source="s", source_event_id="1"
    )
    assert (event.purpose, event.email) == ("*", "a@example.nl")


def test_withdrawal_without_purpose_is_for_all_marketing() -> None:
    assert ConsentEventIn(email="a@b.nl", action="withdraw", source="s", source_event_id="1").purpose == "*"


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValidationError, match="occurred_at"):
        ConsentEventIn(
            email="a@b.nl", action="grant", occurred_at="2026-01-01T10:00:00", source="s", source_event_id="1"
        )  # type: ignore[arg-type]


def test_unknown_evidence_field_is_named() -> None:
    stream = io.StringIO(
        '{"type":"consent","email":"a@b.nl","action":"grant","source":"s","source_event_id":"1","evidence":{"prechecked":true}}\n'
    )
    (error,) = list(read_records(stream, "jsonl"))
    assert isinstance(error, LineError)
    assert (error.line, error.field) == (1, "evidence.prechecked")


def test_csv_reports_bad_evidence_json_and_keeps_other_lines() -> None:
    stream = io.StringIO(
        "type,email,action,source,source_event_id,evidence\n"
        'consent,a@b.nl,grant,s,1,"{bad"\n'
        "consent,a@b.nl,withdraw,s,2,\n"
        "purchase,a@b.nl,,s,3,\n"
    )
    items = list(read_records(stream, "csv"))
    assert [(i.line, i.field) for i in items if isinstance(i, LineError)] == [
        (2, "evidence"),
        (4, "occurred_at"),
    ]
    assert [i.line for i in items if isinstance(i, Parsed)] == [3]
