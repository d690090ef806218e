"""Field checks every connector's mapping shares: e-mail address and timestamp fields of vendor JSON.

A check raises ``FieldError`` naming the field (its path in the vendor's JSON); the mapping turns it into
the ``RecordError`` of the record at hand with ``FieldError.for_record``, and the page goes on. Checks that
only one vendor needs (its status words, its epoch milliseconds) stay in that vendor's mapping.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, overload

from connectors.base import RecordError
from sync_worker.identity import InvalidEmailError, normalise_email


class FieldError(ValueError):
    """One field of a vendor record that cannot be mapped; ``field`` is its path in the vendor's JSON."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)

    def for_record(self, system: str, record_id: str | None) -> RecordError:
        return RecordError(system, record_id, self.field, str(self))


def log_skipped(log: Any, error: RecordError) -> None:
    """The one warning for a record left out of a page (``log`` is bound to the connector already)."""
    log.warning("record_skipped", record_id=error.record_id, field=error.field, error=error.message)


def email_field(value: object, field: str) -> str:
    """The normalised address in ``value``, or a FieldError naming ``field``."""
    if not isinstance(value, str) or not value.strip():
        raise FieldError(field, "missing e-mail address")
    try:
        return normalise_email(value)
    except InvalidEmailError as error:
        raise FieldError(field, f"invalid e-mail address: {error}") from error


def read_time(text: str, *, naive_utc: bool = False) -> datetime:
    """An ISO 8601 stamp (``Z`` or an offset) as an aware datetime; ValueError when it is none.

    ``naive_utc``: a stamp without an offset is taken as UTC (vendors that always mean UTC); otherwise it
    is refused, since guessing its zone could move a consent fact by hours.
    """
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp: {text[:40]!r}") from None
    if moment.tzinfo is not None:
        return moment
    if naive_utc:
        return moment.replace(tzinfo=UTC)
    raise ValueError(f"timestamp {text[:40]!r} has no UTC offset")


@overload
def time_field(value: object, field: str, *, required: Literal[True], naive_utc: bool = ...) -> datetime: ...


@overload
def time_field(
    value: object, field: str, *, required: bool = ..., naive_utc: bool = ...
) -> datetime | None: ...


def time_field(
    value: object, field: str, *, required: bool = False, naive_utc: bool = False
) -> datetime | None:
    """The timestamp in ``value`` (None when absent and not ``required``), or a FieldError naming ``field``."""
    if value is None:
        if required:
            raise FieldError(field, "missing timestamp")
        return None
    if not isinstance(value, str):
        raise FieldError(field, f"expected an ISO 8601 string, got {type(value).__name__}")
    try:
        return read_time(value, naive_utc=naive_utc)
    except ValueError as error:
        raise FieldError(field, str(error)) from None
