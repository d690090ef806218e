"""The sandboxes' paged lists answer as a full filter and sort of every record would, page after page.

Each reference below is the plain algorithm the sandboxes used before they selected pages instead of
sorting everything for every page: filter every row, sort them all, cut at the cursor, take the page.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from connectors.base import Status
from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.hubspot.sandbox_contacts import ContactRoutes
from connectors.hubspot.sandbox_data import Contact
from connectors.hubspot.sandbox_requests import _comparable, _stamp
from connectors.klaviyo.sandbox import KlaviyoSandbox
from connectors.klaviyo.sandbox_wire import (
    LIST_MEMBER_FILTERS,
    PROFILE_FILTERS,
    Rejected,
    Row,
    decode_cursor,
    encode_cursor,
    page,
    parse_filter,
    sort_key,
)
from connectors.sandbox import Clock
from connectors.sandbox_changes import Queries
from connectors.shopify.sandbox import ShopifySandbox
from connectors.shopify.sandbox_data import CHANGES, SORT_FIELDS, connect

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


# --- Shopify: Relay connections -----------------------------------------------------------------------


def reference_connect(items: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
    sort = args.get("sortKey") or "ID"
    sort_field = SORT_FIELDS.get(sort, SORT_FIELDS["ID"])
    first, last = args.get("first"), args.get("last")
    size = first if first is not None else last
    assert size is not None

    def key(node: dict[str, Any]) -> list[Any]:
        return [sort_field(node), node["id"]]

    def cursor(node: dict[str, Any]) -> str:
        raw = json.dumps({"sort": sort, "last": key(node)}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def point(token: str) -> Any:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["last"]

    reverse = bool(args.get("reverse"))
    ordered = sorted(items, key=key, reverse=reverse)
    if args.get("after"):
        after = point(args["after"])
        ordered = [n for n in ordered if (key(n) < after if reverse else key(n) > after)]
    if args.get("before"):
        before = point(args["before"])
        ordered = [n for n in ordered if (key(n) > before if reverse else key(n) < before)]
    chosen = ordered[:size] if first is not None else ordered[-size:] if size else []
    remaining = len(ordered) > len(chosen)
    return {
        "edges": [{"cursor": cursor(node), "node": node} for node in chosen],
        "nodes": chosen,
        "pageInfo": {
            "hasNextPage": remaining if first is not None else False,
            "hasPreviousPage": bool(args.get("after")) or (remaining if last is not None else False),
            "startCursor": cursor(chosen[0]) if chosen else None,
            "endCursor": cursor(chosen[-1]) if chosen else None,
        },
    }


STAMPS = [f"2026-03-01T08:00:0{s}Z" for s in range(4)]  # few values: many ties broken by id
customers = st.lists(
    st.tuples(st.integers(1, 60), st.sampled_from(STAMPS), st.sampled_from(STAMPS)),
    max_size=25,
    unique_by=lambda t: t[0],
)


@settings(max_examples=150, deadline=None)
@given(
    customers,
    st.sampled_from(["UPDATED_AT", "CREATED_AT", "ID"]),
    st.booleans(),
    st.integers(0, 6),
    st.sampled_from(["first", "last"]),
    st.data(),
)
def test_a_shopify_connection_pages_as_a_full_sort_would(
    rows: list[tuple[int, str, str]], sort: str, reverse: bool, size: int, end: str, data: st.DataObject
) -> None:
    items = [{"id": f"gid://shopify/Customer/{i}", "updatedAt": u, "createdAt": c} for i, u, c in rows]
    everything = reference_connect(items, {"first": len(items), "sortKey": sort, "reverse": reverse})
    cursors = [edge["cursor"] for edge in everything["edges"]] + [None]
    args: dict[str, Any] = {end: size, "sortKey": sort, "reverse": reverse}
    args["after"] = data.draw(st.sampled_from(cursors))
    args["before"] = data.draw(st.sampled_from(cursors))
    assert connect(items, args) == reference_connect(items, args)
    # And a whole walk forward, page by page, as a pull makes it.
    walk: dict[str, Any] = {"first": max(size, 1), "sortKey": sort, "reverse": reverse}
    while True:
        answer = connect(items, walk)
        assert answer == reference_connect(items, walk)
        if not answer["pageInfo"]["hasNextPage"]:
            break
        walk["after"] = answer["pageInfo"]["endCursor"]


# --- Klaviyo: filtered, sorted keyset pages ------------------------------------------------------------


def reference_page(
    request: Request, rows: list[Row], allowed: dict[str, set[str]], sort: str
) -> tuple[list[Row], str | None]:
    q = request.query_params
    size = int(q.get("page[size]", "20"))
    checks = [term.test for term in parse_filter(q.get("filter"), allowed)]
    after = decode_cursor(q["page[cursor]"]) if q.get("page[cursor]") else None
    field, descending = sort.lstrip("-"), sort.startswith("-")
    keyed = sorted(
        (
            (sort_key(row[field]), str(row["id"]), item, row)
            for item, row in rows
            if all(c(row) for c in checks)
        ),
        key=lambda entry: (entry[0], entry[1]),
        reverse=descending,
    )
    if after is not None:
        keyed = [k for k in keyed if ((k[0], k[1]) < after if descending else (k[0], k[1]) > after)]
    chosen = keyed[:size]
    token = encode_cursor(chosen[-1][0], chosen[-1][1]) if len(keyed) > size and chosen else None
    return [(item, row) for _, _, item, row in chosen], token


def get(query: dict[str, str]) -> Request:
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": urlencode(query).encode()}
    return Request(scope)


ADDRESSES = [f"Person{i}@Example.org" for i in range(12)]
people = st.lists(
    st.tuples(st.sampled_from(ADDRESSES), st.integers(0, 3), st.booleans(), st.integers(0, 3)),
    max_size=12,
    unique_by=lambda t: t[0],
)
variants = st.sampled_from([str.lower, str.upper, lambda a: a, lambda a: f" {a}"])


def klaviyo_box(who: list[tuple[str, int, bool, int]]) -> KlaviyoSandbox:
    box = KlaviyoSandbox(clock=Clock(T0))
    for email, updated, joins, joined in who:
        box.clock.set(T0 + timedelta(seconds=joined))
        box.add_contact(email, {"promotions": Status.SUBSCRIBED} if joins else {})
        box.clock.set(T0 + timedelta(seconds=updated))
        box.set_status(email, "newsletter", Status.SUBSCRIBED)
    return box


def filters(data: st.DataObject, members: bool) -> str | None:
    named = data.draw(st.lists(st.sampled_from([*ADDRESSES, "nobody@example.org"]), max_size=4))
    written = [data.draw(variants)(a) for a in named]
    moment = (T0 + timedelta(seconds=data.draw(st.integers(0, 3)))).isoformat().replace("+00:00", "Z")
    time_field = "joined_group_at" if members else "updated"
    choices = [
        None,
        f"greater-than({time_field},{moment})",
        f"any(email,{json.dumps(written)})",
        f"equals(email,{json.dumps(written[0] if written else 'x@y.z')})",
        f"any(email,{json.dumps(written)}),less-than({time_field},{moment})",
    ]
    return data.draw(st.sampled_from(choices))


def walk(
    box: KlaviyoSandbox, rows: Any, allowed: dict[str, set[str]], sort: str, query: dict[str, str], scope: str
) -> int:
    """Page through with ``page`` and compare every page with the reference; the number of pages."""
    pages = 0
    while True:
        request = get(query)
        expected = reference_page(request, list(rows(None)), allowed, sort)
        assert page(request, rows, allowed, sort, queries=box.queries, scope=scope) == expected
        pages += 1
        _, token = expected
        if token is None:
            return pages
        query = {**query, "page[cursor]": token}


@settings(max_examples=100, deadline=None)
@given(people, st.sampled_from(["id", "-id", "updated", "-updated", "email", "-email", "created"]), st.data())
def test_klaviyo_profile_pages_answer_as_a_full_sort_would(
    who: list[tuple[str, int, bool, int]], sort: str, data: st.DataObject
) -> None:
    box = klaviyo_box(who)
    query = {"page[size]": str(data.draw(st.integers(1, 4)))}
    if (where := filters(data, members=False)) is not None:
        query["filter"] = where
    assert walk(box, box.profile_rows, PROFILE_FILTERS, sort, query, "profiles") >= 1


@settings(max_examples=100, deadline=None)
@given(people, st.sampled_from(["joined_group_at", "-joined_group_at"]), st.data())
def test_klaviyo_list_member_pages_answer_as_a_full_sort_would(
    who: list[tuple[str, int, bool, int]], sort: str, data: st.DataObject
) -> None:
    box = klaviyo_box(who)
    list_id = box.purposes.lists["promotions"]
    query = {"page[size]": str(data.draw(st.integers(1, 4)))}
    if (where := filters(data, members=True)) is not None:
        query["filter"] = where

    def rows(emails: set[str] | None) -> Any:
        return box.member_rows(list_id, emails)

    assert walk(box, rows, LIST_MEMBER_FILTERS, sort, query, f"list {list_id}") >= 1


def test_an_address_filter_reads_each_profile_once_whatever_the_spelling() -> None:
    box = klaviyo_box([("Ann@Example.org", 0, True, 0), ("bob@example.org", 1, False, 0)])
    where = json.dumps(["ann@example.org", "ANN@EXAMPLE.ORG", " Ann@Example.org", "bob@example.org"])
    request = get({"filter": f"any(email,{where})"})
    chosen, token = page(
        request, box.profile_rows, PROFILE_FILTERS, "id", queries=box.queries, scope="profiles"
    )
    assert [row["email"] for _, row in chosen] == ["Ann@Example.org", "bob@example.org"]
    assert token is None


def profiles_page(box: KlaviyoSandbox, query: dict[str, str]) -> tuple[list[str], str | None]:
    chosen, token = page(
        get(query), box.profile_rows, PROFILE_FILTERS, "updated", queries=box.queries, scope="profiles"
    )
    return [row["email"] for _, row in chosen], token


def test_a_page_after_a_change_between_pages_sees_the_change() -> None:
    box = klaviyo_box([(a, 0, False, 0) for a in ADDRESSES[:5]])
    query = {"page[size]": "2", "sort": "updated"}
    first, token = profiles_page(box, query)
    assert token is not None
    box.clock.set(T0 + timedelta(seconds=9))
    box.set_status(ADDRESSES[0], "newsletter", Status.UNSUBSCRIBED)  # served already: comes again, last
    box.set_status(ADDRESSES[2], "newsletter", Status.UNSUBSCRIBED)  # not served yet: moves to the end
    box.add_contact("late@example.org", {})  # new, and last
    rest: list[str] = []
    while token is not None:
        emails, token = profiles_page(box, {**query, "page[cursor]": token})
        rest += emails
    assert first == ADDRESSES[:2]
    assert rest == [ADDRESSES[3], ADDRESSES[4], ADDRESSES[0], ADDRESSES[2], "late@example.org"]


def test_a_list_page_after_a_change_inside_the_members_sees_it() -> None:
    box = klaviyo_box([(a, 0, True, i) for i, a in enumerate(ADDRESSES[:4])])
    list_id = box.purposes.lists["promotions"]
    rows = partial(box.member_rows, list_id)
    query = {"page[size]": "2", "sort": "joined_group_at"}

    def members(query: dict[str, str]) -> tuple[list[str], str | None]:
        chosen, token = page(
            get(query), rows, LIST_MEMBER_FILTERS, "joined_group_at", queries=box.queries, scope=list_id
        )
        return [row["email"] for _, row in chosen], token

    first, token = members(query)
    assert first == ADDRESSES[:2]
    assert token is not None
    profile = box.audience.find(ADDRESSES[2])
    assert profile is not None
    box.audience.members[list_id][profile.id] = T0 + timedelta(seconds=30)  # a change inside a nested dict
    rest, token = members({**query, "page[cursor]": token})
    assert rest == [ADDRESSES[3], ADDRESSES[2]]
    assert token is None


def test_a_bad_cursor_is_still_refused() -> None:
    box = KlaviyoSandbox()
    request = get({"page[cursor]": "x"})
    with pytest.raises(Rejected):
        page(
            request,
            box.profile_rows,
            PROFILE_FILTERS,
            "id",
            queries=box.queries,
            scope="profiles",
        )


# --- HubSpot: date filters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment",
    [
        T0,
        T0.replace(microsecond=123_456),
        T0.replace(microsecond=999_999),
        T0.astimezone(timezone(timedelta(hours=2))),  # equal to T0, written differently
        datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),
    ],
)
def test_a_date_filter_compares_the_value_the_contact_reads_back_with(moment: datetime) -> None:
    contact = Contact(1, moment, moment)
    for name in ("createdate", "lastmodifieddate"):
        assert _stamp(contact, name) == _comparable(name, contact.value(name))


def test_equal_moments_written_in_other_zones_are_not_taken_for_each_other() -> None:
    # HubSpot's text of a moment is its wall-clock time with a Z, so 10:00+02:00 reads as 10:00Z.
    utc, shifted = T0 + timedelta(days=1), (T0 + timedelta(days=1)).astimezone(timezone(timedelta(hours=2)))
    assert utc == shifted
    first, second = Contact(1, utc, utc), Contact(2, shifted, shifted)
    assert _stamp(first, "lastmodifieddate") == _comparable(
        "lastmodifieddate", first.value("lastmodifieddate")
    )
    assert _stamp(second, "lastmodifieddate") == _comparable(
        "lastmodifieddate", second.value("lastmodifieddate")
    )
    assert _stamp(first, "lastmodifieddate") != _stamp(second, "lastmodifieddate")


# --- kept answers and changes between pages ------------------------------------------------------------


def search(routes: ContactRoutes, after: int) -> dict[str, Any]:
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["email"],
        "limit": 2,
        "after": str(after),
    }
    scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"", "headers": []}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}

    response = asyncio.run(routes.search(Request(scope, receive)))
    answer: dict[str, Any] = json.loads(response.body)
    return answer


def test_a_hubspot_search_page_after_a_change_answers_as_a_fresh_search() -> None:
    box = HubSpotSandbox(clock=Clock(T0))
    for i, address in enumerate(ADDRESSES[:5]):
        box.clock.set(T0 + timedelta(seconds=i))
        box.add_contact(address, {"newsletter": Status.SUBSCRIBED})
    assert [r["properties"]["email"] for r in search(box.contacts, 0)["results"]] == ADDRESSES[:2]
    box.clock.set(T0 + timedelta(seconds=9))
    box.set_status(ADDRESSES[2], "newsletter", Status.UNSUBSCRIBED)  # moves to the end
    box.add_contact("late@example.org", {})
    second = search(box.contacts, 2)
    assert second == search(ContactRoutes(box), 2)  # a fresh search: nothing kept
    assert second["total"] == 6
    assert [r["properties"]["email"] for r in second["results"]] == ADDRESSES[3:5]
    third = search(box.contacts, 4)
    assert [r["properties"]["email"] for r in third["results"]] == [ADDRESSES[2], "late@example.org"]


def listing(routes: ContactRoutes, after: int) -> dict[str, Any]:
    query = urlencode({"limit": 2, "after": after, "properties": "email"}).encode()
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "query_string": query,
        "headers": [(b"host", b"h")],
    }
    answer: dict[str, Any] = json.loads(asyncio.run(routes.listing(Request(scope))).body)
    return answer


def test_a_hubspot_listing_page_after_a_change_answers_as_a_fresh_listing() -> None:
    box = HubSpotSandbox(clock=Clock(T0))
    for address in ADDRESSES[:5]:
        box.add_contact(address, {})
    following = int(listing(box.contacts, 0)["paging"]["next"]["after"])
    box.delete_contact(ADDRESSES[2])
    box.add_contact("late@example.org", {})
    second = listing(box.contacts, following)
    assert second == listing(ContactRoutes(box), following)
    assert [r["properties"]["email"] for r in second["results"]] == ADDRESSES[3:5]
    assert [
        r["properties"]["email"]
        for r in listing(box.contacts, int(second["paging"]["next"]["after"]))["results"]
    ] == ["late@example.org"]


def test_the_search_cap_still_bounds_kept_results() -> None:
    box = HubSpotSandbox(clock=Clock(T0))
    box.search_cap = 3
    for address in ADDRESSES[:5]:
        box.add_contact(address, {})
    assert search(box.contacts, 0)["paging"]["next"]["after"] == "2"
    last = search(box.contacts, 2)
    assert last["total"] == 5
    assert len(last["results"]) == 1
    assert "paging" not in last


def test_a_shopify_page_after_a_change_answers_as_a_fresh_query() -> None:
    box = ShopifySandbox(clock=Clock(T0))
    for i, address in enumerate(ADDRESSES[:5]):
        box.clock.set(T0 + timedelta(seconds=i))
        box.add_contact(address, {})
    args = {"first": 2, "sortKey": "UPDATED_AT", "query": "updated_at:>='2026-03-01T08:00:00Z'"}
    first = box.fields.root_customers(**args)
    assert [n["email"] for n in first["nodes"]] == ADDRESSES[:2]
    moved = next(c for c in box.customers.values() if c.email == ADDRESSES[2])
    moved.updated_at = "2026-03-01T08:00:09Z"  # a staff edit: moves to the end
    box.customers[99] = replace(moved, id=99, email="late@example.org", updated_at="2026-03-01T08:00:10Z")
    after = {**args, "after": first["pageInfo"]["endCursor"], "first": 10}
    kept = box.fields.root_customers(**after)
    box.queries = Queries(CHANGES)  # nothing kept: a fresh query
    assert kept == box.fields.root_customers(**after)
    assert [n["email"] for n in kept["nodes"]] == [
        ADDRESSES[3],
        ADDRESSES[4],
        ADDRESSES[2],
        "late@example.org",
    ]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 3), max_size=12), st.sampled_from(["UPDATED_AT", "ID"]), st.booleans(), st.data()
)
def test_shopify_root_lists_walk_as_a_full_sort_would(
    stamps: list[int], sort: str, reverse: bool, data: st.DataObject
) -> None:
    box = ShopifySandbox(clock=Clock(T0))
    for i, second in enumerate(stamps):
        box.clock.set(T0 + timedelta(seconds=second))
        box.add_contact(f"p{i}@example.org", {})
    keys = [
        {"id": c.gid, "updatedAt": c.updated_at, "createdAt": c.created_at} for c in box.customers.values()
    ]
    args: dict[str, Any] = {data.draw(st.sampled_from(["first", "last"])): data.draw(st.integers(1, 4))}
    args |= {"sortKey": sort, "reverse": reverse}
    while True:
        answer = box.fields.root_customers(**args)
        expected = reference_connect(keys, args)
        assert [n["id"] for n in answer["nodes"]] == [n["id"] for n in expected["nodes"]]
        assert answer["pageInfo"] == expected["pageInfo"]
        if "first" in args and answer["pageInfo"]["hasNextPage"]:
            args["after"] = answer["pageInfo"]["endCursor"]
        elif (
            "last" in args
            and answer["nodes"]
            and expected["pageInfo"]["hasPreviousPage"]
            and args.get("before") != answer["pageInfo"]["startCursor"]
        ):
            args["before"] = answer["pageInfo"]["startCursor"]
        else:
            break
