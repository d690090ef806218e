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
    # Requests an incremental pull of contacts sends when nothing changed: one, but for a vendor that must
    # also ask elsewhere for changes its records' stamps may not show.
    quiet_requests: int = 1


VENDORS: dict[str, VendorFixture] = {}


def register(fixture: VendorFixture) -> None:
    VENDORS[fixture.name] = fixture


# One entry per vendor below.


register(
    VendorFixture(
        name="mailchimp",
        # newsletter is the audience status; the others an interest, a tag and a GDPR marketing permission.
        purposes=("newsletter", "promotions", "events", "lead_magnet"),
        tiny_pages=lambda connector: setattr(connector, "page_size", 5),
    )
)


register(
    VendorFixture(
        name="shopify",
        # newsletter is the customer's e-mail marketing consent; promotions a customer tag.
        purposes=("newsletter", "promotions"),
        tiny_pages=lambda connector: setattr(connector, "page_size", 5),
    )
)


register(
    VendorFixture(
        name="klaviyo",
        # newsletter is the profile's account-wide e-mail consent; promotions a list (both mappings).
        purposes=("newsletter", "promotions"),
        tiny_pages=lambda connector: setattr(connector, "page_size", 2),
        # Profiles, and the joins of each list purpose (by default promotions, events and lead magnet):
        # Klaviyo does not document that joining a list moves a profile's `updated`.
        quiet_requests=1,
    )
)


register(
    VendorFixture(
        name="hubspot",
        purposes=("newsletter", "promotions"),
        # Tiny pages for both the full listing and the incremental search.
        env={"SYNC_HUBSPOT__LIST_PAGE_SIZE": "5", "SYNC_HUBSPOT__SEARCH_PAGE_SIZE": "5"},
    )
)
