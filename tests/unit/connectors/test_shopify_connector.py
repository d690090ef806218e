"""The Shopify connector against canned Admin GraphQL answers (respx): retries, throttling, paging, mapping,
partial batch failures and Shopify's read-only consent states."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from config.shopify import ShopifySettings
from connectors.base import Action, Basis, Change, ContactRecord, GlobalState, Outcome, PurchaseRecord, Status
from connectors.errors import AuthError, PaginationError, TransientError
from connectors.http import RetryPolicy
from connectors.pagination import Watermark
from connectors.shopify import documents
from connectors.shopify.client import MARGIN_POINTS
from connectors.shopify.connector import ShopifyConnector
from tests.unit.connectors.test_http import Sleeps

URL = "https://shop.test/admin/api/2026-01/graphql.json"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _connector(sleeps: Sleeps, **settings: Any) -> ShopifyConnector:
    shop = ShopifySettings(
        shop="shop.myshopify.com",
        access_token="shpat_test",
        base_url="https://shop.test/admin/api/2026-01",
        purposes={"newsletter": "consent", "promotions": "promo"},
        **settings,
    )
    connector = ShopifyConnector.from_settings(
        shop, retry=RetryPolicy(max_attempts=4, sleep=sleeps), clock=lambda: T0
    )
    # The pacer's clock moves with the injected sleeps, as real time would while sleeping.
    connector.client.pacer.ticker = lambda: sum(sleeps.waits)
    return connector


def _cost(requested: int = 10, available: float = 1990.0) -> dict[str, Any]:
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": requested,
            "throttleStatus": {
                "maximumAvailable": 2000.0,
                "currentlyAvailable": available,
                "restoreRate": 100.0,
            },
        }
    }


def _customer(n: int, state: str = "SUBSCRIBED", **extra: Any) -> dict[str, Any]:
    node = {
        "id": f"gid://shopify/Customer/{n}",
        "updatedAt": "2026-03-01T09:00:00Z",
        "tags": ["promo"] if n % 2 else [],
        "defaultEmailAddress": {"emailAddress": f"Person{n}@Example.NL"},
        "emailMarketingConsent": {
            "marketingState": state,
            "marketingOptInLevel": "SINGLE_OPT_IN",
            "consentUpdatedAt": "2026-02-01T08:00:00Z",
        },
    }
    node.update(extra)
    return node


def _customers_page(nodes: list[dict[str, Any]], end: str | None = None) -> httpx.Response:
    info = {"hasNextPage": end is not None, "endCursor": end}
    body = {"data": {"customers": {"pageInfo": info, "nodes": nodes}}, "extensions": _cost(753)}
    return httpx.Response(200, json=body)


THROTTLED = {
    "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
    "extensions": _cost(753, available=53.0),
}


async def _contacts(connector: ShopifyConnector, since: str | None = None) -> list[Any]:
    return [page async for page in connector.pull("contacts", since=since)]


async def test_429_then_200_honours_retry_after(respx_mock: respx.MockRouter) -> None:
    respx_mock.post(URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "2"}, json={"errors": "Exceeded 2 calls per second"}),
            _customers_page([_customer(1)]),
        ]
    )
    sleeps = Sleeps()
    pages = await _contacts(_connector(sleeps))
    assert [r.external_id for r in pages[0].records] == ["gid://shopify/Customer/1"]
    assert sleeps.waits == [2.0]


async def test_throttled_answer_waits_by_currently_available_and_restore_rate(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.post(URL).mock(
        side_effect=[httpx.Response(200, json=THROTTLED), _customers_page([_customer(1)])]
    )
    sleeps = Sleeps()
    await _contacts(_connector(sleeps))
    assert route.call_count == 2
    # One wait, the pacer's, for the first page's cost (25 customers) at the reported rate; the retry
    # policy adds no back-off of its own on top.
    first_page = documents.customers_cost(25)
    assert [wait for wait in sleeps.waits if wait] == [
        pytest.approx((first_page - 53 + MARGIN_POINTS) / 100.0)
    ]


async def test_pages_start_small_and_grow_while_they_come_back_full(respx_mock: respx.MockRouter) -> None:
    """Shopify must hold a page's whole requested cost first: a pull that finds little asks for little."""
    route = respx_mock.post(URL).mock(
        side_effect=[
            _customers_page([_customer(1)], end="a"),
            _customers_page([_customer(2)], end="b"),
            _customers_page([_customer(3)], end="c"),
            _customers_page([_customer(4)]),
        ]
    )
    await _contacts(_connector(Sleeps()))
    sizes = [json.loads(call.request.content)["variables"]["first"] for call in route.calls]
    assert sizes == [25, 100, 250, 250]


async def test_pacer_waits_before_asking_when_the_bucket_is_low(respx_mock: respx.MockRouter) -> None:
    low = {"data": {"customers": {"pageInfo": {"hasNextPage": True, "endCursor": "c1"}, "nodes": []}}}
    low["extensions"] = _cost(78, available=53.0)
    respx_mock.post(URL).mock(side_effect=[httpx.Response(200, json=low), _customers_page([])])
    sleeps = Sleeps()
    connector = _connector(sleeps)
    connector.client.pacer.ticker = lambda: 0.0  # no time passes between the two requests
    await _contacts(connector)
    second_page = documents.customers_cost(100)
    assert sleeps.waits == [pytest.approx((second_page - 53 + MARGIN_POINTS) / 100.0)]


async def test_401_is_not_retried(respx_mock: respx.MockRouter) -> None:
    body = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
    route = respx_mock.post(URL).mock(return_value=httpx.Response(401, json=body))
    sleeps = Sleeps()
    with pytest.raises(AuthError, match="Invalid API key"):
        await _contacts(_connector(sleeps))
    assert route.call_count == 1
    assert sleeps.waits == []


async def test_5xx_is_retried_until_attempts_are_exhausted(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(URL).mock(
        return_value=httpx.Response(503, json={"errors": "Service Unavailable"})
    )
    with pytest.raises(TransientError, match="Service Unavailable"):
        await _contacts(_connector(Sleeps()))
    assert route.call_count == 4


async def test_repeated_page_token_stops_the_pull(respx_mock: respx.MockRouter) -> None:
    respx_mock.post(URL).mock(
        side_effect=[_customers_page([_customer(1)], end="same"), _customers_page([_customer(2)], end="same")]
    )
    with pytest.raises(PaginationError, match="repeated page token"):
        await _contacts(_connector(Sleeps()))


async def test_malformed_customer_is_skipped_and_reported_with_id_and_field(
    respx_mock: respx.MockRouter,
) -> None:
    bad_email = _customer(2, defaultEmailAddress={"emailAddress": "not-an-address"})
    bad_state = _customer(3, emailMarketingConsent={"marketingState": "MAYBE"})
    respx_mock.post(URL).mock(
        return_value=_customers_page([_customer(1), bad_email, bad_state, _customer(4)])
    )
    (page,) = await _contacts(_connector(Sleeps()))
    assert [r.external_id for r in page.records] == ["gid://shopify/Customer/1", "gid://shopify/Customer/4"]
    reported = {(e.system, e.record_id, e.field) for e in page.errors}
    assert reported == {
        ("shopify", "gid://shopify/Customer/2", "defaultEmailAddress.emailAddress"),
        ("shopify", "gid://shopify/Customer/3", "emailMarketingConsent.marketingState"),
    }
    assert page.final
    assert page.checkpoint is not None


async def test_customer_maps_consent_tags_and_evidence(respx_mock: respx.MockRouter) -> None:
    respx_mock.post(URL).mock(return_value=_customers_page([_customer(1)]))
    (page,) = await _contacts(_connector(Sleeps()))
    (record,) = page.records
    assert isinstance(record, ContactRecord)
    assert record.email == "person1@example.nl"
    assert record.status_of("newsletter") is Status.SUBSCRIBED
    assert record.status_of("promotions") is Status.SUBSCRIBED  # the "promo" tag
    assert record.evidence is not None
    assert record.evidence.consent_at == datetime(2026, 2, 1, 8, 0, tzinfo=UTC)
    assert (record.evidence.collection_point, record.evidence.prechecked) == ("shopify:checkout", False)


async def test_r3_preselected_checkout_box_marks_checkout_consent_prechecked(
    respx_mock: respx.MockRouter,
) -> None:
    confirmed = _customer(2)
    confirmed["emailMarketingConsent"]["marketingOptInLevel"] = "CONFIRMED_OPT_IN"
    respx_mock.post(URL).mock(return_value=_customers_page([_customer(1), confirmed]))
    (page,) = await _contacts(_connector(Sleeps(), checkout_preselected=True))
    single, double = page.records
    assert isinstance(single, ContactRecord)
    assert isinstance(double, ContactRecord)
    assert single.evidence is not None
    assert single.evidence.prechecked is True
    assert double.evidence is not None
    assert double.evidence.prechecked is False
    assert double.evidence.double_opt_in is True


@pytest.mark.parametrize(
    ("state", "global_state"), [("REDACTED", GlobalState.ERASED), ("INVALID", GlobalState.BOUNCED)]
)
async def test_read_only_states_are_pulled_as_facts(
    respx_mock: respx.MockRouter, state: str, global_state: GlobalState
) -> None:
    respx_mock.post(URL).mock(return_value=_customers_page([_customer(1, state)]))
    (page,) = await _contacts(_connector(Sleeps()))
    (record,) = page.records
    assert isinstance(record, ContactRecord)
    assert record.global_state is global_state
    assert record.status_of("newsletter") is Status.NOT_SUBSCRIBED
    assert record.evidence is None


async def test_incremental_pull_asks_from_the_watermark_inclusive_and_drops_seen_keys(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.post(URL).mock(return_value=_customers_page([_customer(1), _customer(2)]))
    since = Watermark(
        datetime(2026, 3, 1, 9, 0, tzinfo=UTC), frozenset({"gid://shopify/Customer/1"})
    ).encode()
    connector = _connector(Sleeps())
    connector.clock = lambda: T0 + timedelta(seconds=1)  # the run starts after the customers' second
    (page,) = await _contacts(connector, since=since)
    sent = json.loads(route.calls[0].request.content)
    assert sent["variables"]["query"] == "updated_at:>='2026-03-01T09:00:00Z'"
    assert [r.external_id for r in page.records] == ["gid://shopify/Customer/2"]
    assert Watermark.decode(page.checkpoint).keys == {"gid://shopify/Customer/1", "gid://shopify/Customer/2"}


async def test_a_customer_stamped_in_the_run_start_second_is_read_again_by_the_next_pull(
    respx_mock: respx.MockRouter,
) -> None:
    """Shopify stamps to the second: a change right after our read, in that second, keeps the stamp we
    read. The checkpoint stays short of that second, so the next pull takes the customer again."""
    respx_mock.post(URL).mock(return_value=_customers_page([_customer(1)]))
    (page,) = await _contacts(_connector(Sleeps()), since=None)  # the run starts at T0, the stamp's second
    later = _customer(1, state="UNSUBSCRIBED")  # the same stamp, the person's opt-out
    respx_mock.post(URL).mock(return_value=_customers_page([later]))
    (again,) = await _contacts(_connector(Sleeps()), since=page.checkpoint)
    assert [r.status_of("newsletter") for r in again.records] == [Status.UNSUBSCRIBED]


async def test_r12_orders_map_paid_status_and_product_categories(respx_mock: respx.MockRouter) -> None:
    def order(n: int, status: str, lines: list[tuple[str, list[str]]]) -> dict[str, Any]:
        items = [{"product": {"productType": t, "tags": tags}} for t, tags in lines]
        return {
            "id": f"gid://shopify/Order/{n}",
            "email": f"buyer{n}@example.nl",
            "updatedAt": "2026-03-01T09:00:00Z",
            "processedAt": "2026-02-28T10:00:00Z",
            "displayFinancialStatus": status,
            "customer": {"id": "gid://shopify/Customer/1"},
            "lineItems": {"nodes": items},
        }

    nodes = [
        order(1, "PAID", [("Shoes", ["summer"]), ("", ["gift-card"])]),
        order(2, "REFUNDED", [("Socks", [])]),
    ]
    nodes.append({**order(3, "PAID", []), "email": None})
    body = {"data": {"orders": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": nodes}}}
    respx_mock.post(URL).mock(return_value=httpx.Response(200, json={**body, "extensions": _cost()}))
    connector = _connector(Sleeps(), category_map={"Shoes": "footwear", "gift-card": "gifts"})
    (page,) = [p async for p in connector.pull("purchases")]
    paid, refunded = page.records
    assert isinstance(paid, PurchaseRecord)
    assert isinstance(refunded, PurchaseRecord)
    assert (paid.paid, paid.categories, paid.email) == (True, ("footwear", "gifts"), "buyer1@example.nl")
    assert (refunded.paid, refunded.categories) == (False, ("Socks",))
    assert [(e.record_id, e.field) for e in page.errors] == [("gid://shopify/Order/3", "email")]


def _lookup_answer(states: dict[str, str | None]) -> httpx.Response:
    data = {
        alias: {"id": f"gid://shopify/Customer/{n}", "emailMarketingConsent": {"marketingState": s}}
        if s is not None
        else None
        for n, (alias, s) in enumerate(states.items(), 1)
    }
    return httpx.Response(200, json={"data": data, "extensions": _cost()})


def _change(
    n: int, action: Action = Action.UNSUBSCRIBE, purpose: str = "newsletter", *, known: bool = True
) -> Change:
    """A change; ``known``: the pull saw the customer, so the change carries its Shopify id."""
    return Change(
        f"k{n}",
        "shopify",
        f"p{n}@example.nl",
        action,
        purpose,
        f"gid://shopify/Customer/{n}" if known else None,
        Basis.CONSENT,
        T0,
    )


async def test_partial_batch_failure_gives_per_item_results(respx_mock: respx.MockRouter) -> None:
    ok = {
        "customer": {
            "id": "gid://shopify/Customer/1",
            "emailMarketingConsent": {"marketingState": "UNSUBSCRIBED"},
        },
        "userErrors": [],
    }
    refused = {
        "customer": None,
        "userErrors": [
            {
                "field": ["input", "customerId"],
                "message": "Customer must have an email address",
                "code": "INVALID",
            }
        ],
    }
    route = respx_mock.post(URL).mock(
        side_effect=[
            _lookup_answer({"c2": None}),
            httpx.Response(200, json={"data": {"m0": ok, "m1": refused}, "extensions": _cost()}),
        ]
    )
    results = await _connector(Sleeps()).push([_change(1), _change(2), _change(3, known=False)])
    assert [(r.key, r.outcome) for r in results] == [
        ("k1", Outcome.ACCEPTED),
        ("k2", Outcome.REJECTED),
        ("k3", Outcome.REJECTED),
    ]
    assert results[0].vendor_state == "UNSUBSCRIBED"
    assert "must have an email address" in (results[1].reason or "")
    mutation = json.loads(route.calls[1].request.content)
    assert "m0: customerEmailMarketingConsentUpdate" in mutation["query"]
    assert mutation["variables"]["m0_input"]["emailMarketingConsent"] == {"marketingState": "UNSUBSCRIBED"}


@pytest.mark.parametrize("state", ["REDACTED", "INVALID"])
async def test_read_only_state_is_rejected_with_reason_and_never_written(
    respx_mock: respx.MockRouter, state: str
) -> None:
    route = respx_mock.post(URL).mock(side_effect=[_lookup_answer({"c0": state})])
    (result,) = await _connector(Sleeps()).push([_change(1, Action.SUBSCRIBE, known=False)])
    assert (result.outcome, result.vendor_state) == (Outcome.REJECTED, state)
    assert "read-only" in (result.reason or "")
    assert route.call_count == 1  # the lookup only: no mutation was sent, nothing to retry


async def test_known_customer_is_written_without_a_lookup_and_shopifys_refusal_is_carried(
    respx_mock: respx.MockRouter,
) -> None:
    """The id the pull saw skips the read; a customer redacted since is refused by Shopify itself."""
    message = "Email marketing consent of a REDACTED customer cannot be changed"
    refused = {"customer": None, "userErrors": [{"field": ["input"], "message": message, "code": "INVALID"}]}
    route = respx_mock.post(URL).mock(
        return_value=httpx.Response(200, json={"data": {"m0": refused}, "extensions": _cost()})
    )
    (result,) = await _connector(Sleeps()).push([_change(1, Action.SUBSCRIBE)])
    assert result.outcome is Outcome.REJECTED
    assert "REDACTED customer cannot be changed" in (result.reason or "")
    assert route.call_count == 1
    assert "customerEmailMarketingConsentUpdate" in json.loads(route.calls[0].request.content)["query"]


def _mutation_answer(payload: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"data": {"m0": payload}, "extensions": _cost()})


def _refusal(field: list[str], message: str, code: str | None = "INVALID") -> dict[str, Any]:
    error: dict[str, Any] = {"field": field, "message": message}
    if code is not None:
        error["code"] = code
    return {"customer": None, "userErrors": [error]}


@pytest.mark.parametrize("action", [Action.UNSUBSCRIBE, Action.SUBSCRIBE])
async def test_a_consent_write_for_a_deleted_customer_is_gone(
    respx_mock: respx.MockRouter, action: Action
) -> None:
    """Shopify's answer for a customer id that no longer resolves: INVALID at input.customerId."""
    answer = _refusal(["input", "customerId"], "Customer not found")
    respx_mock.post(URL).mock(return_value=_mutation_answer(answer))
    (result,) = await _connector(Sleeps()).push([_change(1, action)])
    assert result.outcome is Outcome.GONE
    assert result.reason == "input.customerId: Customer not found"


@pytest.mark.parametrize("action", [Action.UNSUBSCRIBE, Action.SUBSCRIBE])
async def test_a_tag_write_for_a_deleted_customer_is_gone(
    respx_mock: respx.MockRouter, action: Action
) -> None:
    answer = {"node": None, "userErrors": [{"field": ["id"], "message": "Customer does not exist"}]}
    respx_mock.post(URL).mock(return_value=_mutation_answer(answer))
    (result,) = await _connector(Sleeps()).push([_change(1, action, "promotions")])
    assert result.outcome is Outcome.GONE


@pytest.mark.parametrize(
    ("answer", "purpose"),
    [
        # The same code and path, about the customer's address rather than its existence.
        (_refusal(["input", "customerId"], "Customer must have an email address"), "newsletter"),
        # The same message at another path, or with another code.
        (_refusal(["input", "emailMarketingConsent"], "Customer not found"), "newsletter"),
        (_refusal(["input", "customerId"], "Customer not found", code="INTERNAL_ERROR"), "newsletter"),
        (
            _refusal(["input", "emailMarketingConsent", "marketingState"], "not included", "INCLUSION"),
            "newsletter",
        ),
        # Two errors: not only "not found".
        (
            {
                "customer": None,
                "userErrors": [
                    {"field": ["input", "customerId"], "message": "Customer not found", "code": "INVALID"},
                    {"field": ["input"], "message": "Something else", "code": "INVALID"},
                ],
            },
            "newsletter",
        ),
        (
            {"node": None, "userErrors": [{"field": ["tags"], "message": "Customer does not exist"}]},
            "promotions",
        ),
    ],
)
async def test_other_user_errors_stay_rejected(
    respx_mock: respx.MockRouter, answer: dict[str, Any], purpose: str
) -> None:
    respx_mock.post(URL).mock(return_value=_mutation_answer(answer))
    (result,) = await _connector(Sleeps()).push([_change(1, purpose=purpose)])
    assert result.outcome is Outcome.REJECTED


async def test_opt_out_of_a_never_subscribed_customer_writes_nothing(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(URL).mock(side_effect=[_lookup_answer({"c0": "NOT_SUBSCRIBED"})])
    (result,) = await _connector(Sleeps()).push([_change(1, known=False)])
    assert (result.outcome, result.vendor_state) == (Outcome.ACCEPTED, "NOT_SUBSCRIBED")
    assert route.call_count == 1


async def test_tag_purpose_uses_tags_add_and_transient_failure_is_retry_later(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.post(URL).mock(side_effect=[httpx.Response(502, json={"errors": "Bad Gateway"})] * 4)
    (result,) = await _connector(Sleeps()).push([_change(1, Action.SUBSCRIBE, "promotions")])
    assert result.outcome is Outcome.RETRY_LATER
    mutation = json.loads(route.calls[0].request.content)
    assert "m0: tagsAdd(id: $m0_id, tags: $m0_tags)" in mutation["query"]
    assert mutation["variables"]["m0_tags"] == ["promo"]


async def test_unmapped_purpose_and_erase_are_rejected_without_a_request(
    respx_mock: respx.MockRouter,
) -> None:
    route = respx_mock.post(URL)
    results = await _connector(Sleeps()).push(
        [_change(1, Action.SUBSCRIBE, "events"), _change(2, Action.ERASE)]
    )
    assert [r.outcome for r in results] == [Outcome.REJECTED, Outcome.REJECTED]
    assert "no Shopify mapping" in (results[0].reason or "")
    assert route.call_count == 0


async def test_html_page_with_status_200_is_retried_as_transient(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(URL).mock(
        side_effect=[httpx.Response(200, text="<html>gateway</html>"), _customers_page([_customer(1)])]
    )
    (page,) = await _contacts(_connector(Sleeps()))
    assert route.call_count == 2
    assert [r.external_id for r in page.records] == ["gid://shopify/Customer/1"]
