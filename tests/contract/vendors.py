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


def _shopify_schema_present() -> bool:
    from connectors.shopify.schema import default_schema_path

    if default_schema_path().is_file():
        return True
    print(f"Shopify's schema is not at {default_schema_path()}: the contract suite leaves shopify out")
    return False


if _shopify_schema_present():  # the Shopify sandbox executes documents on Shopify's published schema
    register(
        VendorFixture(
            name="shopify",
            # newsletter is the customer's e-mail marketing consent; promotions a customer tag.
            purposes=("newsletter", "promotions"),
            tiny_pages=lambda connector: setattr(connector, "page_size", 5),
        )
    )
