"""Shopify connector: customers' e-mail marketing consent and tags, orders for soft opt-in (GraphQL Admin API)."""
