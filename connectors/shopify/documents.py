"""The GraphQL documents the connector sends (tests validate each against the sandbox's schema and, where
``../shared/specs/shopify`` is present, against Shopify's published schema).

Costs follow Shopify's calculated query cost (objects 1, connections 2 + page size x item, mutations 10);
the connector paces itself on them before asking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_QUERY_COST = 1000  # Shopify refuses a single query whose requested cost is higher
CONSENT_UPDATE_COST = 10 + 3  # the mutation, and the customer with its consent object in the answer

CUSTOMERS = """
query SyncCustomers($first: Int!, $after: String, $query: String) {
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      updatedAt
      tags
      defaultEmailAddress { emailAddress }
      emailMarketingConsent { marketingState marketingOptInLevel consentUpdatedAt }
    }
  }
}
"""

LINE_ITEMS_PER_ORDER = 20

ORDERS = f"""
query SyncOrders($first: Int!, $after: String, $query: String) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      id
      email
      updatedAt
      processedAt
      displayFinancialStatus
      customer {{ id }}
      lineItems(first: {LINE_ITEMS_PER_ORDER}) {{
        pageInfo {{ hasNextPage }}
        nodes {{ product {{ productType tags }} }}
      }}
    }}
  }}
}}
"""


def customers_cost(first: int) -> int:
    return 2 + first * 3 + 1  # node, defaultEmailAddress, emailMarketingConsent; pageInfo


def orders_cost(first: int) -> int:
    line_items = 2 + LINE_ITEMS_PER_ORDER * 2 + 1  # line item + product; pageInfo
    return 2 + first * (1 + 1 + line_items) + 1


CONSENT_SELECTION = (
    "customer { id emailMarketingConsent { marketingState marketingOptInLevel consentUpdatedAt } } "
    "userErrors { field message code }"
)
TAGS_SELECTION = "node { id } userErrors { field message }"
LOOKUP_SELECTION = "id emailMarketingConsent { marketingState }"


@dataclass(frozen=True)
class Operation:
    """One aliased root field of a batched document."""

    alias: str
    field: str  # customerEmailMarketingConsentUpdate, tagsAdd, tagsRemove, customers
    arguments: dict[str, tuple[str, Any]]  # argument name -> (GraphQL type, value)
    cost: int

    def render(self) -> tuple[str, dict[str, str], dict[str, Any]]:
        declared: dict[str, str] = {}
        values: dict[str, Any] = {}
        args = []
        for name, (type_, value) in self.arguments.items():
            variable = f"{self.alias}_{name}"
            declared[variable] = type_
            values[variable] = value
            args.append(f"{name}: ${variable}")
        selection = {
            "customerEmailMarketingConsentUpdate": CONSENT_SELECTION,
            "tagsAdd": TAGS_SELECTION,
            "tagsRemove": TAGS_SELECTION,
            "customers": f"nodes {{ {LOOKUP_SELECTION} }}",
        }[self.field]
        return f"{self.alias}: {self.field}({', '.join(args)}) {{ {selection} }}", declared, values


def consent_update(alias: str, customer_id: str, consent: dict[str, Any]) -> Operation:
    return Operation(
        alias,
        "customerEmailMarketingConsentUpdate",
        {
            "input": (
                "CustomerEmailMarketingConsentUpdateInput!",
                {"customerId": customer_id, "emailMarketingConsent": consent},
            )
        },
        CONSENT_UPDATE_COST,
    )


def tags_change(alias: str, customer_id: str, tags: list[str], *, add: bool) -> Operation:
    return Operation(
        alias,
        "tagsAdd" if add else "tagsRemove",
        {"id": ("ID!", customer_id), "tags": ("[String!]!", tags)},
        12,
    )


def lookup_by_email(alias: str, email: str) -> Operation:
    # Shopify's search syntax: a quoted value so '+' and '.' in an address are taken literally.
    return Operation(alias, "customers", {"first": ("Int", 1), "query": ("String", f'email:"{email}"')}, 4)


def batch(kind: str, name: str, operations: list[Operation]) -> tuple[str, dict[str, Any], int]:
    """One document holding every operation under its alias: ``kind`` is "query" or "mutation"."""
    fields, declared, values = [], {}, {}
    for operation in operations:
        text, types, given = operation.render()
        fields.append(text)
        declared.update(types)
        values.update(given)
    header = ", ".join(f"${name}: {type_}" for name, type_ in declared.items())
    document = f"{kind} {name}({header}) {{\n  " + "\n  ".join(fields) + "\n}"
    return document, values, sum(o.cost for o in operations)
