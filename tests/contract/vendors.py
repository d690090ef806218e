"""The contract suite's vendor registry: a new vendor adds one entry here and nothing else.

Each entry says which purposes the contract exercises for that vendor, any extra SYNC_* settings its
connector needs against its sandbox, and how to make the connector read tiny pages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


def _no_change(_connector: Any) -> None:
    return None


@dataclass(frozen=True)
class VendorFixture:
    name: str
    purposes: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    tiny_pages: Callable[[Any], None] = _no_change


VENDORS: dict[str, VendorFixture] = {}


def register(fixture: VendorFixture) -> None:
    VENDORS[fixture.name] = fixture


# One entry per vendor below.
