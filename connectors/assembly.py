"""What every connector's ``from_settings`` shares: its own section of the settings, and the run's clock.

A connector is built from the root Settings (as a run does) or from its vendor's settings model alone (as
unit tests do), and is given a clock so that a run's start time, the ceiling of every cursor, can be set.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, TypeVar, runtime_checkable

from config.vendor import VendorSettings

Now = Callable[[], datetime]


@runtime_checkable
class SupportsNow(Protocol):
    """A clock object, such as a sandbox's ``Clock``."""

    def now(self) -> datetime: ...


# What a connector accepts as ``clock``: a clock object, a callable returning an aware datetime, or None.
ClockSource = SupportsNow | Now | None

V = TypeVar("V", bound=VendorSettings)


def utc_now() -> datetime:
    return datetime.now(UTC)


def now_of(clock: ClockSource) -> Now | None:
    """``clock`` as a plain callable (None stays None: the connector chooses what no clock means)."""
    if isinstance(clock, SupportsNow):
        return clock.now
    return clock


def vendor_section(settings: object, model: type[V]) -> V:
    """``settings`` itself when it is the vendor's model, else the vendor's section of the root Settings."""
    if isinstance(settings, model):
        return settings
    section = getattr(settings, model.name, None)
    if not isinstance(section, model):
        raise TypeError(f"expected Settings or {model.__name__}, got {type(settings).__name__}")
    return section


def configured_base_url(vendor: VendorSettings, *, otherwise: str = "a valid base URL") -> str:
    """The vendor's API base URL, or a ValueError naming the variables still to set (``otherwise`` when all
    are set but no URL follows from them)."""
    base_url = vendor.effective_base_url()
    missing = vendor.missing()
    if missing or base_url is None:
        raise ValueError(f"{vendor.name} is not configured: set {', '.join(missing) or otherwise}")
    return base_url
