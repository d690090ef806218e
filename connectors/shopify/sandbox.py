"""A faithful fake of the Shopify Admin GraphQL API subset sync-worker uses (VENDOR-APIS.md section 3).

``POST /admin/api/{version}/graphql.json`` with ``X-Shopify-Access-Token``. Every document is parsed,
validated and executed by graphql-core on ``admin_subset.graphql`` (Shopify's own types, fields and
arguments for everything modelled here), with resolvers over the in-memory shop (the root fields are
``sandbox_fields``), so any valid document the
sandbox models (the connector's, the official SDK's) gets a real answer and an invalid one gets GraphQL's
error shape. Query cost is charged to a leaky bucket reported in ``extensions.cost``; an empty bucket
answers ``THROTTLED``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    default_field_resolver,
    execute_sync,
    get_operation_ast,
    parse,
    validate,
)
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from connectors.base import Status
from connectors.sandbox import Clock, FaultInjector, Faults, VendorDate, recorder
from connectors.sandbox_changes import Queries, TrackedAttribute
from connectors.shopify.documents import MAX_QUERY_COST
from connectors.shopify.mapping import CONSENT, format_time
from connectors.shopify.sandbox_data import (
    CHANGES,
    CostBucket,
    Customer,
    LineItem,
    Order,
    normalise_tags,
)
from connectors.shopify.sandbox_fields import RootFields
from connectors.shopify.sandbox_webhooks import CONSENT_TOPIC, UPDATE_TOPIC
from connectors.shopify.sandbox_webhooks import build as build_webhook
from connectors.shopify.schema import actual_cost, load_schema, query_cost
from connectors.webhook_sender import WebhookSender

INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"  # noqa: S105 -- the message, not a secret
_VERSION = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")


def error_response(status: int, message: str, retry_after: float | None) -> Response:
    """Shopify's non-GraphQL error body: ``{"errors": "..."}``, with Retry-After on 429."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return JSONResponse({"errors": message}, status_code=status, headers=headers)


class ShopifySandbox:
    name = "shopify"
    # The shop's records count their changes (sandbox_changes): so do these two, whatever is assigned.
    customers = TrackedAttribute[dict[int, Customer]](CHANGES)
    orders = TrackedAttribute[dict[int, Order]](CHANGES)

    def __init__(
        self,
        *,
        token: str = "shpat_sandbox_0123456789abcdef",  # noqa: S107 -- a sandbox credential
        purposes: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        bucket: CostBucket | None = None,
    ) -> None:
        self.token = token
        self.shop = "sandbox-shop.myshopify.com"
        self.api_version = "2026-01"
        self.purposes = dict(purposes or {"newsletter": CONSENT, "promotions": "promotions"})
        self.clock = clock or Clock()
        self.faults = Faults()
        self.bucket = bucket or CostBucket()
        self.requests: list[tuple[str, str]] = []
        self.customers = {}
        self.orders = {}
        self.queries = Queries(CHANGES)  # list answers, kept while nothing in the shop changes
        self._ids = itertools.count(7_390_000_000_001)  # Shopify ids are 13-digit integers
        self._order_numbers = itertools.count(1001)
        self._app: ASGIApp | None = None
        self.webhooks = WebhookSender(self.name)
        self.fields = RootFields(self)

    # --- the Sandbox protocol --------------------------------------------------------------------------

    @property
    def schema(self) -> GraphQLSchema:
        return load_schema()

    @property
    def app(self) -> ASGIApp:
        if self._app is None:
            self.schema  # noqa: B018 -- build the schema before the first request, not during it
            app = Starlette(
                routes=[Route("/admin/api/{version}/graphql.json", self._graphql, methods=["POST"])],
                middleware=[Middleware(BaseHTTPMiddleware, dispatch=recorder(self.requests))],
            )
            self._app = FaultInjector(VendorDate(app, self.clock), self.faults, error_response)
        return self._app

    def settings_env(self, base_url: str) -> dict[str, str]:
        return {
            "SYNC_SHOPIFY__SHOP": self.shop,
            "SYNC_SHOPIFY__ACCESS_TOKEN": self.token,
            "SYNC_SHOPIFY__API_VERSION": self.api_version,
            "SYNC_SHOPIFY__BASE_URL": f"{base_url.rstrip('/')}/admin/api/{self.api_version}",
            "SYNC_SHOPIFY__PURPOSES": json.dumps(self.purposes),
        }

    def add_contact(self, email: str, statuses: Mapping[str, Status], **vendor: Any) -> str:
        """Vendor extras: ``marketing_state`` (e.g. "REDACTED"), ``opt_in_level``, ``consent_updated_at``
        (datetime), ``tags``, ``first_name``, ``last_name``."""
        now = format_time(self.clock.now())
        customer = Customer(
            id=next(self._ids),
            email=email,
            created_at=now,
            updated_at=now,
            tags=normalise_tags(vendor.get("tags", ())),
            first_name=vendor.get("first_name"),
            last_name=vendor.get("last_name"),
        )
        for purpose, status in statuses.items():
            self._apply(customer, purpose, status)
        if "marketing_state" in vendor:
            customer.marketing_state = vendor["marketing_state"]
        if "opt_in_level" in vendor:
            customer.opt_in_level = vendor["opt_in_level"]
        if isinstance(vendor.get("consent_updated_at"), datetime):
            customer.consent_updated_at = format_time(vendor["consent_updated_at"])
        self.customers[customer.id] = customer
        return customer.gid

    def set_status(self, email: str, purpose: str, status: Status) -> None:
        customer = self._by_email(email)
        if customer is None:
            raise KeyError(f"no sandbox customer with e-mail {email!r}")
        self._apply(customer, purpose, status)
        customer.updated_at = format_time(self.clock.now())
        topic = CONSENT_TOPIC if self.purposes[purpose] == CONSENT else UPDATE_TOPIC
        self.webhooks.fire(topic, build_webhook(topic, customer, self.shop, self.api_version))

    def status(self, email: str, purpose: str) -> Status | None:
        customer = self._by_email(email)
        if customer is None:
            return None
        target = self.purposes[purpose]
        if target == CONSENT:
            state = customer.marketing_state.lower()
            return Status(state) if state in Status._value2member_map_ else Status.NOT_SUBSCRIBED
        has_tag = target.lower() in (tag.lower() for tag in customer.tags)
        return Status.SUBSCRIBED if has_tag else Status.NOT_SUBSCRIBED

    # --- extra knobs for tests and the demo ------------------------------------------------------------

    def add_order(
        self,
        email: str | None,
        lines: list[tuple[str, list[str]]],
        *,
        financial_status: str = "PAID",
        processed_at: datetime | None = None,
    ) -> str:
        """An order with one line per (productType, product tags); linked to the customer with that e-mail."""
        customer = self._by_email(email) if email else None
        now = format_time(self.clock.now())
        items = [
            LineItem(next(self._ids), f"{ptype or 'Item'} {n}", 1, ptype, list(tags), next(self._ids))
            for n, (ptype, tags) in enumerate(lines, 1)
        ]
        order = Order(
            id=next(self._ids),
            number=next(self._order_numbers),
            email=email,
            customer_id=customer.id if customer else None,
            financial_status=financial_status,
            processed_at=format_time(processed_at) if processed_at else now,
            updated_at=now,
            line_items=items,
        )
        self.orders[order.id] = order
        return order.gid

    def redact(self, email: str) -> None:
        """Erase the customer as Shopify does after a data erasure request: consent becomes REDACTED."""
        customer = self._by_email(email)
        assert customer is not None
        customer.marketing_state = "REDACTED"
        customer.updated_at = format_time(self.clock.now())

    def delete_customer(self, email: str) -> None:
        """Staff delete the customer in the Shopify admin: its id no longer resolves. As in Shopify, a
        customer with orders cannot be deleted (staff can only disable it)."""
        customer = self._by_email(email)
        if customer is None:
            raise KeyError(f"no sandbox customer with e-mail {email!r}")
        if any(order.customer_id == customer.id for order in self.orders.values()):
            raise ValueError(f"customer {customer.gid} has orders: Shopify does not delete it")
        del self.customers[customer.id]

    def seed_demo(self) -> None:
        """A small shop for the demo: each consent state once, paid and refunded orders."""
        past = self.clock.now()
        self.add_contact(
            "ann@example.nl",
            {"newsletter": Status.SUBSCRIBED, "promotions": Status.SUBSCRIBED},
            opt_in_level="CONFIRMED_OPT_IN",
            consent_updated_at=past,
            first_name="Ann",
        )
        self.add_contact("bob@example.nl", {"newsletter": Status.UNSUBSCRIBED}, first_name="Bob")
        self.add_contact("cas@example.nl", {"newsletter": Status.NOT_SUBSCRIBED}, first_name="Cas")
        self.add_contact("dee@example.nl", {"newsletter": Status.SUBSCRIBED}, first_name="Dee")
        self.add_contact("eve@example.nl", {"newsletter": Status.PENDING}, first_name="Eve")
        self.add_contact("fay@example.nl", {}, marketing_state="REDACTED")
        self.add_order("ann@example.nl", [("Shoes", ["summer"])])
        self.add_order("cas@example.nl", [("Shoes", []), ("Socks", ["gift"])])
        self.add_order("dee@example.nl", [("Hats", [])], financial_status="REFUNDED")

    # --- internals -------------------------------------------------------------------------------------

    def _by_email(self, email: str | None) -> Customer | None:
        wanted = (email or "").strip().lower()
        return next((c for c in self.customers.values() if (c.email or "").lower() == wanted), None)

    def _apply(self, customer: Customer, purpose: str, status: Status) -> None:
        target = self.purposes[purpose]
        if target == CONSENT:
            customer.marketing_state = status.value.upper()
            customer.consent_updated_at = format_time(self.clock.now())
            if status in (Status.SUBSCRIBED, Status.PENDING) and customer.opt_in_level is None:
                customer.opt_in_level = "SINGLE_OPT_IN"
        elif status == Status.SUBSCRIBED:
            customer.tags = normalise_tags([*customer.tags, target])
        else:
            customer.tags = [t for t in customer.tags if t.lower() != target.lower()]

    async def _graphql(self, request: Request) -> Response:
        if request.headers.get("X-Shopify-Access-Token") != self.token:
            return error_response(401, INVALID_TOKEN, None)
        if not _VERSION.match(request.path_params["version"]):
            return error_response(404, "Not Found", None)
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/graphql"):
            body: Any = {"query": raw.decode()}
        else:
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return error_response(400, "Invalid JSON in request body", None)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str) or not body["query"].strip():
            return JSONResponse(
                {"errors": {"query": "Required parameter missing or invalid"}}, status_code=400
            )
        return JSONResponse(self.execute(body["query"], body.get("variables"), body.get("operationName")))

    def execute(
        self, query: str, variables: Mapping[str, Any] | None = None, operation_name: str | None = None
    ) -> dict[str, Any]:
        """Answer one GraphQL request as the Admin API does (always HTTP 200)."""
        try:
            document = parse(query)
        except GraphQLError as error:
            return {"errors": [_formatted(error, "parseError")]}
        problems = validate(self.schema, document)
        if problems:
            return {"errors": [_formatted(error, "GRAPHQL_VALIDATION_FAILED") for error in problems]}
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return {
                "errors": [
                    {"message": "An operation name is required", "extensions": {"code": "BAD_REQUEST"}}
                ]
            }
        cost = self._cost(document, operation, variables)
        if cost > MAX_QUERY_COST:
            message = (
                f"Query cost is {cost}, which exceeds the single query max cost limit ({MAX_QUERY_COST})."
            )
            return {
                "errors": [{"message": message, "extensions": {"code": "MAX_COST_EXCEEDED", "cost": cost}}],
                "extensions": {"cost": self._cost_extension(cost, None)},
            }
        if not self.bucket.take(cost):
            return {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {
                            "code": "THROTTLED",
                            "documentation": "https://shopify.dev/api/usage/rate-limits",
                        },
                    }
                ],
                "extensions": {"cost": self._cost_extension(cost, None)},
            }
        result = execute_sync(
            self.schema,
            document,
            variable_values=dict(variables or {}),
            operation_name=operation_name,
            field_resolver=self._resolve,
        )
        answer: dict[str, Any] = {}
        if result.errors:
            answer["errors"] = [_formatted(error, "INTERNAL_SERVER_ERROR") for error in result.errors]
        answer["data"] = result.data
        actual = cost
        if operation.operation is not OperationType.MUTATION:
            # Shopify charges what the query returned and gives the rest of the requested cost back.
            root_fields = result.data.values() if result.data else ()
            actual = min(cost, sum(actual_cost(value) for value in root_fields))
            self.bucket.refund(cost - actual)
        answer["extensions"] = {"cost": self._cost_extension(cost, actual)}
        return answer

    def _cost(self, document: Any, operation: OperationDefinitionNode, variables: Any) -> int:
        fragments = {d.name.value: d for d in document.definitions if d.kind == "fragment_definition"}
        return query_cost(self.schema, operation, fragments, variables)

    def _cost_extension(self, requested: int, actual: int | None) -> dict[str, Any]:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": self.bucket.status(),
        }

    def _resolve(self, source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:  # type: ignore[type-arg]
        if info.parent_type not in (self.schema.query_type, self.schema.mutation_type):
            return default_field_resolver(source, info, **args)
        handler = getattr(self.fields, f"root_{info.field_name}", None)
        if handler is None:
            raise GraphQLError(
                f"The Shopify sandbox does not model {info.parent_type.name}.{info.field_name}"
            )
        return handler(**args)


def _formatted(error: GraphQLError, code: str) -> dict[str, Any]:
    out: dict[str, Any] = dict(error.formatted)
    out["extensions"] = {"code": code, **(error.extensions or {})}
    return out
