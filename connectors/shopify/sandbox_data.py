"""The Shopify sandbox's in-memory shop: customers, products, orders, search syntax and cursor connections.

Values are shaped as the Admin GraphQL schema's types (camelCase keys, ``gid://shopify/...`` ids, DateTime
as ``2024-05-01T10:00:00Z``) so graphql-core's executor can resolve them field by field.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from graphql import GraphQLError

from connectors.sandbox_changes import Changes, Tracked
from connectors.shopify.mapping import read_time

MAX_PAGE = 250  # Shopify caps every connection page at 250 items

# The consent mutation writes only these (the schema: NOT_SUBSCRIBED, REDACTED and INVALID are rejected).
WRITABLE_STATES = frozenset({"SUBSCRIBED", "UNSUBSCRIBED", "PENDING"})


# Every change to a customer or an order (their line items and tags too) counts here, so that list
# answers kept between pages (ShopifySandbox.queries) are dropped the moment anything changes.
CHANGES = Changes()


@dataclass
class Customer(Tracked):
    changes: ClassVar[Changes] = CHANGES

    id: int
    email: str | None
    created_at: str
    updated_at: str
    marketing_state: str = "NOT_SUBSCRIBED"
    opt_in_level: str | None = None
    consent_updated_at: str | None = None
    tags: list[str] = field(default_factory=list)
    first_name: str | None = None
    last_name: str | None = None

    @property
    def gid(self) -> str:
        return f"gid://shopify/Customer/{self.id}"

    def node(self) -> dict[str, Any]:
        consent = {
            "marketingState": self.marketing_state,
            "marketingOptInLevel": self.opt_in_level,
            "consentUpdatedAt": self.consent_updated_at,
            "sourceLocation": None,
        }
        # CustomerEmailAddressMarketingState has no REDACTED: an erased address reads as INVALID there.
        address_state = "INVALID" if self.marketing_state == "REDACTED" else self.marketing_state
        address = (
            {
                "emailAddress": self.email,
                "marketingState": address_state,
                "marketingOptInLevel": self.opt_in_level,
                "marketingUpdatedAt": self.consent_updated_at,
                "validFormat": "@" in self.email,
                "sourceLocation": None,
            }
            if self.email
            else None
        )
        return {
            "__typename": "Customer",
            "id": self.gid,
            "legacyResourceId": str(self.id),
            "email": self.email,
            "defaultEmailAddress": address,
            "emailMarketingConsent": consent if self.email else None,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "displayName": " ".join(p for p in (self.first_name, self.last_name) if p) or (self.email or ""),
            "tags": sorted(self.tags),
            "state": "ENABLED",
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


@dataclass
class LineItem(Tracked):
    changes: ClassVar[Changes] = CHANGES

    id: int
    title: str
    quantity: int
    product_type: str
    product_tags: list[str]
    product_id: int

    def node(self) -> dict[str, Any]:
        return {
            "__typename": "LineItem",
            "id": f"gid://shopify/LineItem/{self.id}",
            "title": self.title,
            "name": self.title,
            "quantity": self.quantity,
            "product": {
                "__typename": "Product",
                "id": f"gid://shopify/Product/{self.product_id}",
                "title": self.title,
                "productType": self.product_type,
                "tags": sorted(self.product_tags),
            },
        }


@dataclass
class Order(Tracked):
    changes: ClassVar[Changes] = CHANGES

    id: int
    number: int
    email: str | None
    customer_id: int | None
    financial_status: str
    processed_at: str
    updated_at: str
    line_items: list[LineItem] = field(default_factory=list)

    @property
    def gid(self) -> str:
        return f"gid://shopify/Order/{self.id}"

    def node(self, customer: Customer | None) -> dict[str, Any]:
        items = [item.node() for item in self.line_items]
        return {
            "__typename": "Order",
            "id": self.gid,
            "legacyResourceId": str(self.id),
            "name": f"#{self.number}",
            "email": self.email,
            "customer": customer.node() if customer else None,
            "displayFinancialStatus": self.financial_status,
            "createdAt": self.processed_at,
            "processedAt": self.processed_at,
            "updatedAt": self.updated_at,
            "cancelledAt": None,
            "test": False,
            "lineItems": lambda _info, **args: connect(items, args),
        }


# --- search syntax: `updated_at:>='2024-05-01T00:00:00Z' email:a@b.nl` (terms joined by AND) -------------

_TERM = re.compile(r"""(\w+):(>=|<=|>|<)?("[^"]*"|'[^']*'|\S+)""")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "": lambda a, b: a == b,
}


def matcher(query: str | None, fields: dict[str, Callable[[Any], Any]]) -> Callable[[Any], bool]:
    """A predicate for Shopify's search syntax over the named fields; unknown fields are ignored, as Shopify
    ignores search terms it does not index."""
    tests: list[Callable[[Any], bool]] = []
    for name, operator, raw in _TERM.findall(query or ""):
        if name not in fields:
            continue
        value: Any = raw.strip("'\"")
        getter = fields[name]
        if name.endswith("_at"):
            try:
                value = read_time(value)
            except ValueError as error:
                raise GraphQLError(f"Invalid search value for {name}: {raw}") from error
        else:
            value = value.lower()
        tests.append(_term_test(getter, _COMPARE[operator], value))
    return lambda item: all(test(item) for test in tests)


def _term_test(
    getter: Callable[[Any], Any], compare: Callable[[Any, Any], bool], value: Any
) -> Callable[[Any], bool]:
    def test(item: Any) -> bool:
        found = getter(item)
        return found is not None and compare(found, value)

    return test


# --- connections with opaque keyset cursors ---------------------------------------------------------------


def _cursor(sort: str, key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps({"sort": sort, "last": key}).encode()).decode().rstrip("=")


def _key_of(sort: str, cursor: str) -> Any:
    """The sort key a cursor points after; a cursor made under another sort is refused, as Shopify does."""
    invalid = GraphQLError(f"Invalid cursor for current pagination sort. Cursor: {cursor}")
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        made_under, key = data["sort"], data["last"]
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise invalid from error
    if made_under != sort:
        raise invalid
    return key


SORT_FIELDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "UPDATED_AT": lambda n: n["updatedAt"],
    "CREATED_AT": lambda n: n["createdAt"],
    "ID": lambda n: int(n["id"].rsplit("/", 1)[1]),
    "PROCESSED_AT": lambda n: n["processedAt"],
}


def connect(items: list[dict[str, Any]], args: dict[str, Any], *, ascending: bool = False) -> dict[str, Any]:
    """One page of a Relay connection over ``items`` sorted by ``args["sortKey"]`` (ties broken by id);
    ``ascending``: ``items`` are in that order already (a list kept between pages)."""
    sort = args.get("sortKey") or "ID"
    sort_key = SORT_FIELDS.get(sort, SORT_FIELDS["ID"])
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    size = first if first is not None else last
    assert size is not None
    if size < 0 or size > MAX_PAGE:
        raise GraphQLError(f"The maximum page size is {MAX_PAGE}; {size} was requested.")

    def key(node: dict[str, Any]) -> list[Any]:
        return [sort_key(node), node["id"]]

    ordered = items if ascending else sorted(items, key=key)
    # The items between the cursors are ordered[low:high], found by bisection; (sort key, id) is unique.
    reverse = bool(args.get("reverse"))
    low, high = 0, len(ordered)
    if args.get("after"):
        after = _key_of(sort, args["after"])
        if reverse:
            high = min(high, bisect.bisect_left(ordered, after, key=key))
        else:
            low = max(low, bisect.bisect_right(ordered, after, key=key))
    if args.get("before"):
        before = _key_of(sort, args["before"])
        if reverse:
            low = max(low, bisect.bisect_right(ordered, before, key=key))
        else:
            high = min(high, bisect.bisect_left(ordered, before, key=key))
    count = max(0, high - low)
    take = min(size, count)
    # `first` of an ascending list and `last` of a descending one are at its low end.
    page = ordered[low : low + take] if (first is not None) != reverse else ordered[high - take : high]
    if reverse:
        page = page[::-1]
    remaining = count > take
    return {
        "edges": [{"cursor": _cursor(sort, key(node)), "node": node} for node in page],
        "nodes": page,
        "pageInfo": {
            "hasNextPage": remaining if first is not None else False,
            "hasPreviousPage": bool(args.get("after")) or (remaining if last is not None else False),
            "startCursor": _cursor(sort, key(page[0])) if page else None,
            "endCursor": _cursor(sort, key(page[-1])) if page else None,
        },
    }


def customer_fields() -> dict[str, Callable[[Customer], Any]]:
    return {
        "updated_at": lambda c: read_time(c.updated_at),
        "created_at": lambda c: read_time(c.created_at),
        "email": lambda c: (c.email or "").lower() or None,
        "email_marketing_state": lambda c: c.marketing_state.lower(),
    }


def order_fields() -> dict[str, Callable[[Order], Any]]:
    return {
        "updated_at": lambda o: read_time(o.updated_at),
        "processed_at": lambda o: read_time(o.processed_at),
        "created_at": lambda o: read_time(o.processed_at),
        "email": lambda o: (o.email or "").lower() or None,
        "financial_status": lambda o: o.financial_status.lower(),
    }


def normalise_tags(tags: Iterable[str]) -> list[str]:
    """Shopify trims tags and treats them case-insensitively; the first spelling is kept."""
    seen: dict[str, str] = {}
    for tag in tags:
        cleaned = tag.strip()
        if cleaned and cleaned.lower() not in seen:
            seen[cleaned.lower()] = cleaned
    return list(seen.values())


class CostBucket:
    """The leaky bucket of query cost points (standard plan: 100 points/s restore; bucket of 2000)."""

    def __init__(
        self,
        maximum: float = 2000.0,
        restore_rate: float = 100.0,
        ticker: Callable[[], float] = time.monotonic,
    ) -> None:
        self.maximum = maximum
        self.restore_rate = restore_rate
        self.ticker = ticker
        self._available = maximum
        self._at = ticker()

    def available(self) -> float:
        now = self.ticker()
        self._available = min(self.maximum, self._available + (now - self._at) * self.restore_rate)
        self._at = now
        return self._available

    def take(self, cost: float) -> bool:
        if self.available() < cost:
            return False
        self._available -= cost
        return True

    def refund(self, points: float) -> None:
        self._available = min(self.maximum, self.available() + points)

    def status(self) -> dict[str, float]:
        return {
            "maximumAvailable": self.maximum,
            "currentlyAvailable": round(self.available(), 1),
            "restoreRate": self.restore_rate,
        }
