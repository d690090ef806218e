"""Times as the ledger's facts read them: SQLite's stored text is naive UTC; other texts keep their offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sync_worker.ledger.facts import _moment


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2026-03-01 10:00:00.250000", datetime(2026, 3, 1, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2026-03-01 10:00:00", datetime(2026, 3, 1, 10, 0, tzinfo=UTC)),
        ("2026-03-01 12:00:00+02:00", datetime(2026, 3, 1, 10, 0, tzinfo=UTC)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
    ],
)
def test_stored_text_reads_as_utc(stored: str, expected: datetime) -> None:
    moment = _moment(stored)
    assert moment == expected
    assert moment is not None
    assert moment.utcoffset() == timedelta(0)


def test_a_driver_datetime_is_given_in_utc() -> None:
    given = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert _moment(given) == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert _moment(None) is None
