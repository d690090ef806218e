"""Every document the Shopify connector sends, with sample variables, for the schema and sandbox tests."""

from __future__ import annotations

from typing import Any

from connectors.shopify import documents


def batch_documents() -> list[tuple[str, dict[str, Any]]]:
    """The batched lookup query and the batched write mutation, one of each operation the connector uses."""
    lookups = [documents.lookup_by_email("c0", "a@b.nl"), documents.lookup_by_email("c1", "b@b.nl")]
    mutations = [
        documents.consent_update("m0", "gid://shopify/Customer/1", {"marketingState": "UNSUBSCRIBED"}),
        documents.tags_change("m1", "gid://shopify/Customer/1", ["promo"], add=True),
        documents.tags_change("m2", "gid://shopify/Customer/1", ["promo"], add=False),
    ]
    query, query_variables, _ = documents.batch("query", "SyncFindCustomers", lookups)
    mutation, mutation_variables, _ = documents.batch("mutation", "SyncConsent", mutations)
    return [(query, query_variables), (mutation, mutation_variables)]


ALL_IDS = ["customers", "orders", "lookup", "mutations"]


def all_documents() -> list[str]:
    return [documents.CUSTOMERS, documents.ORDERS, *(document for document, _ in batch_documents())]
