"""The sandboxes' paged lists answer as a full filter and sort of every record would, page after page.

Each reference below is the plain algorithm the sandboxes used before they selected pages instead of
sorting everything for every page: filter every row, sort them all, cut at the cursor, take the page.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from connectors.base import Status
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
from connectors.shopify.sandbox_data import SORT_FIELDS, connect

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
    box: KlaviyoSandbox, rows: Any, allowed: dict[str, set[str]], sort: str, query: dict[str, str]
) -> int:
    """Page through with ``page`` and compare every page with the reference; the number of pages."""
    pages = 0
    while True:
        request = get(query)
        expected = reference_page(request, list(rows(None)), allowed, sort)
        assert page(request, rows, allowed, sort) == expected
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
    assert walk(box, box.profile_rows, PROFILE_FILTERS, sort, query) >= 1


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

    assert walk(box, rows, LIST_MEMBER_FILTERS, sort, query) >= 1


def test_an_address_filter_reads_each_profile_once_whatever_the_spelling() -> None:
    box = klaviyo_box([("Ann@Example.org", 0, True, 0), ("bob@example.org", 1, False, 0)])
    where = json.dumps(["ann@example.org", "ANN@EXAMPLE.ORG", " Ann@Example.org", "bob@example.org"])
    chosen, token = page(get({"filter": f"any(email,{where})"}), box.profile_rows, PROFILE_FILTERS, "id")
    assert [row["email"] for _, row in chosen] == ["Ann@Example.org", "bob@example.org"]
    assert token is None


def test_a_page_after_a_change_between_pages_sees_the_change() -> None:
    box = klaviyo_box([(a, 0, False, 0) for a in ADDRESSES[:5]])
    query = {"page[size]": "2", "sort": "updated"}
    first, token = page(get(query), box.profile_rows, PROFILE_FILTERS, "updated")
    assert token is not None
    box.clock.set(T0 + timedelta(seconds=9))
    box.set_status(ADDRESSES[4], "newsletter", Status.UNSUBSCRIBED)  # moves to the end of the order
    box.add_contact("late@example.org", {})  # new, and last
    rest: list[str] = []
    while token is not None:
        chosen, token = page(
            get({**query, "page[cursor]": token}), box.profile_rows, PROFILE_FILTERS, "updated"
        )
        rest += [row["email"] for _, row in chosen]
    assert [row["email"] for _, row in first] == ADDRESSES[:2]
    assert rest == [*ADDRESSES[2:4], ADDRESSES[4], "late@example.org"]


def test_a_bad_cursor_is_still_refused() -> None:
    with pytest.raises(Rejected):
        page(get({"page[cursor]": "not-a-cursor"}), KlaviyoSandbox().profile_rows, PROFILE_FILTERS, "id")


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
