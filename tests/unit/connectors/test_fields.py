"""The field checks every connector's mapping shares: a bad field is named, never guessed."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import RecordError
from connectors.fields import FieldError, email_field, log_skipped, read_time, time_field
from sync_worker.logs import configure_logging, get_logger

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def test_email_field_normalises_the_address() -> None:
    assert email_field("  Jan@Example.NL ", "email") == "jan@example.nl"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "missing e-mail address"),
        (17, "missing e-mail address"),
        ("   ", "missing e-mail address"),
        ("jan at example", "invalid e-mail address: must contain exactly one '@'"),
    ],
)
def test_email_field_error_names_the_field(value: object, message: str) -> None:
    with pytest.raises(FieldError) as caught:
        email_field(value, "attributes.email")
    assert (caught.value.field, str(caught.value)) == ("attributes.email", message)


def test_field_error_becomes_the_record_error_of_its_record() -> None:
    error = FieldError("properties.email", "missing e-mail address")
    assert error.for_record("hubspot", "101") == RecordError(
        "hubspot", "101", "properties.email", "missing e-mail address"
    )


def test_time_field_reads_z_and_offsets_as_aware_datetimes() -> None:
    assert time_field("2024-05-01T08:00:00Z", "updated") == T0
    plus_two = time_field("2024-05-01T10:00:00+02:00", "updated")
    assert plus_two == T0
    assert plus_two is not None
    assert plus_two.utcoffset() == timedelta(hours=2)  # the vendor's offset is kept, not converted


def test_absent_time_is_none_unless_required() -> None:
    assert time_field(None, "consent_timestamp") is None
    with pytest.raises(FieldError, match="missing timestamp") as caught:
        time_field(None, "updatedAt", required=True)
    assert caught.value.field == "updatedAt"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (17, "expected an ISO 8601 string, got int"),
        ("", "not an ISO 8601 timestamp: ''"),
        ("yesterday", "not an ISO 8601 timestamp: 'yesterday'"),
        ("2024-05-01T08:00:00", "timestamp '2024-05-01T08:00:00' has no UTC offset"),
    ],
)
def test_bad_time_field_names_the_field(value: object, message: str) -> None:
    with pytest.raises(FieldError) as caught:
        time_field(value, "timestamp_opt")
    assert (caught.value.field, str(caught.value)) == ("timestamp_opt", message)


def test_time_without_offset_is_utc_only_where_the_vendor_means_utc() -> None:
    assert time_field("2024-05-01T08:00:00", "last_changed", naive_utc=True) == T0
    assert read_time("2024-05-01T08:00:00", naive_utc=True) == T0
    with pytest.raises(ValueError, match="no UTC offset"):
        read_time("2024-05-01T08:00:00")


def test_long_unreadable_time_is_cut_in_the_message() -> None:
    with pytest.raises(FieldError) as caught:
        time_field("x" * 500, "updated")
    assert str(caught.value) == f"not an ISO 8601 timestamp: {'x' * 40!r}"


def test_skipped_record_is_logged_with_its_id_and_field_and_a_masked_address() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", show_emails=False, stream=stream)
    error = RecordError("mailchimp", "jan@example.nl", "status", "unknown member status 'vip'")
    log_skipped(get_logger(connector="mailchimp"), error)
    line = json.loads(stream.getvalue())
    assert {k: line[k] for k in ("event", "connector", "record_id", "field", "error")} == {
        "event": "record_skipped",
        "connector": "mailchimp",
        "record_id": "j***@example.nl",
        "field": "status",
        "error": "unknown member status 'vip'",
    }
