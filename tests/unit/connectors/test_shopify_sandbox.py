"""The Shopify sandbox is faithful: its answers match the Admin API schema it serves (held to Shopify's
published one by test_shopify_subset.py), the official SDK talks to it, and the connector works against it
over HTTP."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from graphql import (
    FieldNode,
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
)

from config.shopify import ShopifySettings
from connectors.base import Action, Basis, Change, ContactRecord, Outcome, PurchaseRecord, Status
from connectors.http import RetryPolicy
from connectors.sandbox import served
from connectors.shopify import documents
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.sandbox import ShopifySandbox
from connectors.shopify.sandbox_data import CostBucket
from tests.unit.connectors.shopify_documents import batch_documents

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _shape_problems(schema: GraphQLSchema, document: str, data: Any) -> list[str]:
    """Check an answer's values against the schema types of the fields the document selected."""
    operation = next(d for d in parse(document).definitions if isinstance(d, OperationDefinitionNode))
    root = schema.mutation_type if operation.operation.value == "mutation" else schema.query_type
    problems: list[str] = []

    def check(type_: Any, value: Any, selection: SelectionSetNode | None, path: str) -> None:
        if isinstance(type_, GraphQLNonNull):
            if value is None:
                problems.append(f"{path}: null for non-null {type_}")
                return
            type_ = type_.of_type
        if value is None:
            return
        if isinstance(type_, GraphQLList):
            if not isinstance(value, list):
                problems.append(f"{path}: not a list")
                return
            for i, item in enumerate(value):
                check(type_.of_type, item, selection, f"{path}[{i}]")
            return
        if isinstance(type_, GraphQLEnumType):
            if value not in type_.values:
                problems.append(f"{path}: {value!r} is not a {type_.name}")
        elif isinstance(type_, GraphQLScalarType):
            expected = {"String": str, "ID": str, "Int": int, "Boolean": bool, "Float": (int, float)}
            if type_.name == "DateTime" and not (isinstance(value, str) and DATETIME.match(value)):
                problems.append(f"{path}: {value!r} is not Shopify's DateTime")
            elif type_.name in expected and not isinstance(value, expected[type_.name]):
                problems.append(f"{path}: {value!r} is not {type_.name}")
        else:
            walk(type_, value, selection, path)

    def walk(parent: Any, value: Any, selection: SelectionSetNode | None, path: str) -> None:
        if not isinstance(value, dict):
            problems.append(f"{path}: not an object")
            return
        for field in selection.selections if selection else ():
            assert isinstance(field, FieldNode)
            key = field.alias.value if field.alias else field.name.value
            if key not in value:
                problems.append(f"{path}.{key}: missing")
                continue
            check(parent.fields[field.name.value].type, value[key], field.selection_set, f"{path}.{key}")

    walk(root, data, operation.selection_set, "data")
    return problems


def _seeded() -> ShopifySandbox:
    sandbox = ShopifySandbox()
    sandbox.clock.set(T0)
    sandbox.add_contact("ann@example.nl", {"newsletter": Status.SUBSCRIBED, "promotions": Status.SUBSCRIBED})
    sandbox.add_contact("bob@example.nl", {"newsletter": Status.UNSUBSCRIBED})
    sandbox.add_contact("cas@example.nl", {}, marketing_state="REDACTED")
    sandbox.add_order("ann@example.nl", [("Shoes", ["summer"]), ("Socks", [])])
    sandbox.add_order("bob@example.nl", [("Hats", [])], financial_status="REFUNDED")
    return sandbox


def test_sandbox_answers_match_the_schema_shapes() -> None:
    sandbox = _seeded()
    requests = [
        (documents.CUSTOMERS, {"first": 2, "query": "updated_at:>='2026-01-01T00:00:00Z'"}),
        (documents.ORDERS, {"first": 5}),
        *batch_documents(),
    ]
    for document, variables in requests:
        answer = sandbox.execute(document, variables)
        assert "data" in answer, answer
        assert _shape_problems(sandbox.schema, document, answer["data"]) == []
        cost = answer["extensions"]["cost"]
        assert set(cost["throttleStatus"]) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}


def test_invalid_document_gets_graphql_errors_and_no_data() -> None:
    answer = ShopifySandbox().execute("{ customers(first: 1) { nodes { favouriteColour } } }")
    assert "data" not in answer
    (error,) = answer["errors"]
    assert "favouriteColour" in error["message"]
    assert error["locations"] == [{"line": 1, "column": 33}]


def test_page_larger_than_250_and_missing_first_are_refused() -> None:
    sandbox = _seeded()
    too_big = sandbox.execute("{ customers(first: 251) { nodes { id } } }")
    missing = sandbox.execute("{ customers { nodes { id } } }")
    assert too_big["data"] is None and "250" in too_big["errors"][0]["message"]  # noqa: PT018
    assert missing["errors"][0]["message"] == "you must provide one of first or last"


def test_empty_bucket_answers_throttled_and_refills_at_the_restore_rate() -> None:
    now = [0.0]
    sandbox = _seeded()
    sandbox.bucket = CostBucket(maximum=800.0, restore_rate=100.0, ticker=lambda: now[0])
    assert sandbox.bucket.take(800 - 47)  # what earlier queries left
    throttled = sandbox.execute(documents.CUSTOMERS, {"first": 250})
    assert throttled["errors"][0]["extensions"]["code"] == "THROTTLED"
    status = throttled["extensions"]["cost"]["throttleStatus"]
    assert status["currentlyAvailable"] == 800 - 753
    now[0] += (753 - 47) / 100.0
    assert "data" in sandbox.execute(documents.CUSTOMERS, {"first": 250})


def test_a_query_is_charged_what_it_returned_and_the_rest_of_its_requested_cost_is_refunded() -> None:
    sandbox = _seeded()
    sandbox.bucket = CostBucket(maximum=800.0, restore_rate=100.0, ticker=lambda: 0.0)
    answer = sandbox.execute(documents.CUSTOMERS, {"first": 250})
    cost = answer["extensions"]["cost"]
    three_customers = 2 + 3 * 3 + 1  # the connection, three nodes with two objects each, pageInfo
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (753, three_customers)
    assert cost["throttleStatus"]["currentlyAvailable"] == 800 - three_customers
    mutation = 'mutation { tagsAdd(id: "gid://shopify/Customer/1", tags: ["x"]) { userErrors { message } } }'
    charged = sandbox.execute(mutation)["extensions"]["cost"]
    assert charged["actualQueryCost"] == charged["requestedQueryCost"], "a mutation is charged in full"


def test_query_over_the_single_query_cost_limit_is_refused() -> None:
    answer = _seeded().execute(
        documents.ORDERS.replace("lineItems(first: 20)", "lineItems(first: 250)"), {"first": 20}
    )
    assert answer["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"


def test_consent_mutation_refuses_not_subscribed_as_input() -> None:
    sandbox = _seeded()
    gid = sandbox.add_contact("dee@example.nl", {"newsletter": Status.SUBSCRIBED})
    consent = {"marketingState": "NOT_SUBSCRIBED"}
    document, variables, _ = documents.batch("mutation", "M", [documents.consent_update("m0", gid, consent)])
    (error,) = sandbox.execute(document, variables)["data"]["m0"]["userErrors"]
    assert error["code"] == "INCLUSION"
    assert sandbox.status("dee@example.nl", "newsletter") is Status.SUBSCRIBED


def test_a_customer_deleted_by_staff_is_answered_as_shopify_answers_an_unknown_id() -> None:
    """Shopify's live answers for an id that no longer resolves: the consent mutation's INVALID at
    input.customerId "Customer not found", the tag mutations' "Customer does not exist" at id."""
    sandbox = _seeded()
    gid = sandbox.add_contact("dee@example.nl", {"newsletter": Status.SUBSCRIBED})
    sandbox.delete_customer("dee@example.nl")
    consent = {"marketingState": "UNSUBSCRIBED"}
    operations = [
        documents.consent_update("m0", gid, consent),
        documents.tags_change("m1", gid, ["promotions"], add=False),
    ]
    document, variables, _ = documents.batch("mutation", "M", operations)
    data = sandbox.execute(document, variables)["data"]
    assert data["m0"] == {
        "customer": None,
        "userErrors": [
            {"field": ["input", "customerId"], "message": "Customer not found", "code": "INVALID"}
        ],
    }
    assert data["m1"] == {
        "node": None,
        "userErrors": [{"field": ["id"], "message": "Customer does not exist"}],
    }
    assert sandbox.status("dee@example.nl", "newsletter") is None


def test_a_customer_with_orders_is_not_deleted() -> None:
    sandbox = _seeded()
    sandbox.add_contact("dee@example.nl", {"newsletter": Status.SUBSCRIBED})
    sandbox.add_order("dee@example.nl", [("Hats", [])])
    with pytest.raises(ValueError, match="has orders"):
        sandbox.delete_customer("dee@example.nl")
    assert sandbox.status("dee@example.nl", "newsletter") is Status.SUBSCRIBED


async def test_bad_token_gets_shopifys_401_body() -> None:
    sandbox = ShopifySandbox()
    transport = httpx.ASGITransport(app=sandbox.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as client:
        response = await client.post(
            "/admin/api/2026-01/graphql.json",
            headers={"X-Shopify-Access-Token": "wrong"},
            json={"query": "{ customers(first: 1) { nodes { id } } }"},
        )
    assert response.status_code == 401
    assert response.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }


@pytest.mark.slow
async def test_connector_pulls_and_pushes_against_the_sandbox_over_real_http() -> None:
    sandbox = _seeded()
    with served(sandbox.app) as base_url:
        env = sandbox.settings_env(base_url)
        settings = ShopifySettings(
            shop=env["SYNC_SHOPIFY__SHOP"],
            access_token=env["SYNC_SHOPIFY__ACCESS_TOKEN"],
            base_url=env["SYNC_SHOPIFY__BASE_URL"],
            purposes=json.loads(env["SYNC_SHOPIFY__PURPOSES"]),
            category_map={"Shoes": "footwear"},
        )
        connector = ShopifyConnector.from_settings(settings, retry=RetryPolicy(max_attempts=2))
        try:
            contacts = [r async for page in connector.pull("contacts") for r in page.records]
            purchases = [r async for page in connector.pull("purchases") for r in page.records]
            ids = {r.email: r.external_id for r in contacts if isinstance(r, ContactRecord)}
            changes = [
                Change(
                    "a", "shopify", "ann@example.nl", Action.UNSUBSCRIBE, "newsletter", ids["ann@example.nl"]
                ),
                Change(
                    "b", "shopify", "bob@example.nl", Action.SUBSCRIBE, "promotions", None, Basis.CONSENT, T0
                ),
                Change(
                    "c", "shopify", "cas@example.nl", Action.SUBSCRIBE, "newsletter", None, Basis.CONSENT, T0
                ),
            ]
            results = {r.key: r for r in await connector.push(changes)}
        finally:
            await connector.aclose()
    assert set(ids) == {"ann@example.nl", "bob@example.nl", "cas@example.nl"}
    paid = {p.email: p for p in purchases if isinstance(p, PurchaseRecord)}
    assert paid["ann@example.nl"].paid
    assert paid["ann@example.nl"].categories == ("Socks", "footwear")
    assert not paid["bob@example.nl"].paid
    assert (results["a"].outcome, results["b"].outcome) == (Outcome.ACCEPTED, Outcome.ACCEPTED)
    assert (results["c"].outcome, results["c"].vendor_state) == (Outcome.REJECTED, "REDACTED")
    assert sandbox.status("ann@example.nl", "newsletter") is Status.UNSUBSCRIBED
    assert sandbox.status("bob@example.nl", "promotions") is Status.SUBSCRIBED
    assert ("POST", "/admin/api/2026-01/graphql.json") in sandbox.requests


@pytest.mark.slow
def test_official_shopify_sdk_lists_and_writes_through_the_sandbox() -> None:
    shopify = pytest.importorskip("shopify")
    sandbox = _seeded()
    with served(sandbox.app) as base_url:
        session = shopify.Session(sandbox.shop, sandbox.api_version, sandbox.token)
        shopify.ShopifyResource.activate_session(session)
        # The SDK builds https://{shop}/admin/api/{version}; point that site at the local sandbox.
        shopify.ShopifyResource.set_site(f"{base_url}/admin/api/{sandbox.api_version}")
        try:
            graphql = shopify.GraphQL()
            listing = json.loads(
                graphql.execute(
                    "query($n: Int!) { customers(first: $n) { edges { node { id email tags"
                    " emailMarketingConsent { marketingState } } } } }",
                    {"n": 10},
                )
            )
            gid = listing["data"]["customers"]["edges"][1]["node"]["id"]
            written = json.loads(
                graphql.execute(
                    "mutation add($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) "
                    "{ node { id ... on Customer { tags } } userErrors { field message } } }",
                    {"id": gid, "tags": ["vip"]},
                    operation_name="add",
                )
            )
        finally:
            shopify.ShopifyResource.clear_session()
    emails = [edge["node"]["email"] for edge in listing["data"]["customers"]["edges"]]
    assert emails == ["ann@example.nl", "bob@example.nl", "cas@example.nl"]
    assert written["data"]["tagsAdd"] == {"node": {"id": gid, "tags": ["vip"]}, "userErrors": []}
    assert "requestedQueryCost" in written["extensions"]["cost"]
