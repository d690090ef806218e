"""The Shopify sandbox's GraphQL root fields: the queries and mutations it answers over the in-memory shop.

Each ``root_<field>`` method resolves the Query or Mutation field of that name in ``admin_subset.graphql``,
with Shopify's arguments and answer shapes (VENDOR-APIS.md section 3), including the ``userErrors`` a
mutation answers with instead of an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

from graphql import GraphQLError

from connectors.sandbox import Clock
from connectors.sandbox_changes import Queries
from connectors.shopify.mapping import READ_ONLY_STATES, format_time
from connectors.shopify.sandbox_data import (
    SORT_FIELDS,
    WRITABLE_STATES,
    Customer,
    Order,
    connect,
    customer_fields,
    matcher,
    normalise_tags,
    order_fields,
)


class Shop(Protocol):
    """What the root fields read and change: the sandbox's customers, orders and clock."""

    customers: dict[int, Customer]
    orders: dict[int, Order]
    clock: Clock
    queries: Queries


class RootFields:
    def __init__(self, shop: Shop) -> None:
        self.shop = shop

    def root_customers(self, **args: Any) -> dict[str, Any]:
        def keys() -> list[dict[str, Any]]:
            matches = matcher(args.get("query"), customer_fields())
            return [
                {"id": c.gid, "updatedAt": c.updated_at, "createdAt": c.created_at, "item": c}
                for c in self.shop.customers.values()
                if matches(c)
            ]

        return self._page("customers", keys, args, lambda c: c.node())

    def root_customer(self, id: str) -> dict[str, Any] | None:
        customer = self.shop.customers.get(numeric_id(id, "Customer"))
        return customer.node() if customer else None

    def root_orders(self, **args: Any) -> dict[str, Any]:
        def keys() -> list[dict[str, Any]]:
            matches = matcher(args.get("query"), order_fields())
            # An order's createdAt is its processedAt (Order.node).
            return [
                {
                    "id": o.gid,
                    "updatedAt": o.updated_at,
                    "createdAt": o.processed_at,
                    "processedAt": o.processed_at,
                    "item": o,
                }
                for o in self.shop.orders.values()
                if matches(o)
            ]

        return self._page("orders", keys, args, lambda o: o.node(self.shop.customers.get(o.customer_id or 0)))

    def _page(
        self,
        connection: str,
        keys: Callable[[], list[dict[str, Any]]],
        args: dict[str, Any],
        render: Callable[[Any], dict[str, Any]],
    ) -> dict[str, Any]:
        """A root connection, paged on the sort fields alone (``keys``, each with its ``item``): only the
        page's items are rendered in full. The matching keys are sorted once per query and kept for the
        next pages until anything in the shop changes (a list of a hundred thousand would otherwise be
        filtered and sorted for every page)."""
        sort = args.get("sortKey") or "ID"
        sort_key = SORT_FIELDS.get(sort, SORT_FIELDS["ID"])

        def ordered() -> list[dict[str, Any]]:
            return sorted(keys(), key=lambda k: [sort_key(k), k["id"]])

        found = self.shop.queries.get((connection, args.get("query"), sort), ordered)
        page = connect(found, args, ascending=True)
        full = {id(key): render(key["item"]) for key in page["nodes"]}
        page["nodes"] = [full[id(key)] for key in page["nodes"]]
        page["edges"] = [{**edge, "node": full[id(edge["node"])]} for edge in page["edges"]]
        return page

    def root_customerEmailMarketingConsentUpdate(self, input: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        consent = input["emailMarketingConsent"]
        state = consent["marketingState"]
        customer = self.shop.customers.get(numeric_id(input["customerId"], "Customer"))

        def refuse(code: str, path: list[str], message: str) -> dict[str, Any]:
            return {"customer": None, "userErrors": [{"code": code, "field": path, "message": message}]}

        if customer is None:
            # Shopify's answer for a customer id that does not resolve, e.g. deleted by staff (a live 2026-04
            # capture): INVALID at input.customerId, message "Customer not found".
            return refuse("INVALID", ["input", "customerId"], "Customer not found")
        if state not in WRITABLE_STATES:
            return refuse(
                "INCLUSION",
                ["input", "emailMarketingConsent", "marketingState"],
                f"Marketing state {state} is not included in the list: SUBSCRIBED, UNSUBSCRIBED, PENDING",
            )
        if not customer.email:
            return refuse("INVALID", ["input", "customerId"], "Customer must have an email address")
        if customer.marketing_state in READ_ONLY_STATES:
            return refuse(
                "INVALID",
                ["input", "emailMarketingConsent", "marketingState"],
                f"Email marketing consent of a {customer.marketing_state} customer cannot be changed",
            )
        level = consent.get("marketingOptInLevel") or customer.opt_in_level or "SINGLE_OPT_IN"
        if (customer.marketing_state, customer.opt_in_level) != (state, level):
            now = format_time(self.shop.clock.now())
            customer.marketing_state, customer.opt_in_level = state, level
            customer.consent_updated_at = consent.get("consentUpdatedAt") or now
            customer.updated_at = now
        return {"customer": customer.node(), "userErrors": []}

    def root_tagsAdd(self, id: str, tags: list[str]) -> dict[str, Any]:  # noqa: N802
        return self._change_tags(id, tags, add=True)

    def root_tagsRemove(self, id: str, tags: list[str]) -> dict[str, Any]:  # noqa: N802
        return self._change_tags(id, tags, add=False)

    def _change_tags(self, gid: str, tags: list[str], *, add: bool) -> dict[str, Any]:
        customer = self.shop.customers.get(numeric_id(gid, "Customer"))
        if customer is None:
            # Shopify's answer for a customer id that does not resolve (a live 2025-01 capture).
            return {"node": None, "userErrors": [{"field": ["id"], "message": "Customer does not exist"}]}
        if add:
            updated = normalise_tags([*customer.tags, *tags])
        else:
            gone = {tag.strip().lower() for tag in tags}
            updated = [tag for tag in customer.tags if tag.lower() not in gone]
        if updated != customer.tags:
            customer.tags = updated
            customer.updated_at = format_time(self.shop.clock.now())
        return {"node": customer.node(), "userErrors": []}


def numeric_id(gid: str, kind: str) -> int:
    match = re.fullmatch(rf"gid://shopify/{kind}/(\d+)", gid or "")
    if match is None:
        raise GraphQLError(f"Invalid global id '{gid}'", extensions={"code": "argumentLiteralsIncompatible"})
    return int(match.group(1))
