"""Paginators refuse repeated tokens; the watermark keeps the incremental boundary closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors.errors import PaginationError
from connectors.pagination import Watermark, follow_offsets, follow_tokens, next_link

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_follow_tokens_walks_until_no_token() -> None:
    pages = {None: ("p1", "a"), "a": ("p2", "b"), "b": ("p3", None)}

    async def fetch(token: str | None) -> tuple[str, str | None]:
        return pages[token]

    assert [p async for p in follow_tokens("v", fetch)] == ["p1", "p2", "p3"]


async def test_follow_tokens_refuses_a_repeated_token() -> None:
    pages = {None: ("p1", "a"), "a": ("p2", "b"), "b": ("p3", "a")}

    async def fetch(token: str | None) -> tuple[str, str | None]:
        return pages[token]

    seen: list[str] = []

    async def walk() -> None:
        async for page in follow_tokens("v", fetch):
            seen.append(page)

    with pytest.raises(PaginationError, match="repeated page token"):
        await walk()
    assert seen == ["p1", "p2", "p3"]


async def test_follow_offsets_stops_at_total_or_short_page() -> None:
    items = list(range(7))

    async def fetch(offset: int) -> tuple[list[int], int, int | None]:
        page = items[offset : offset + 3]
        return page, len(page), len(items)

    assert [p async for p in follow_offsets(fetch, 3)] == [[0, 1, 2], [3, 4, 5], [6]]


def test_next_link_reads_the_link_header() -> None:
    response = httpx.Response(
        200,
        headers={
            "Link": '<https://s.test/c.json?page_info=abc>; rel="next", <https://s.test/p>; rel="previous"'
        },
    )
    assert next_link(response) == "https://s.test/c.json?page_info=abc"
    assert next_link(httpx.Response(200)) is None


def test_watermark_keeps_equal_timestamps_at_the_boundary() -> None:
    mark = Watermark().advance([("a", T0), ("b", T0)])
    assert mark.admits("c", T0)  # a newcomer with the boundary's stamp is not lost
    assert not mark.admits("a", T0)  # one already taken is not taken twice
    assert not mark.admits("z", T0 - timedelta(seconds=1))
    assert mark.admits("a", T0 + timedelta(seconds=1))


def test_watermark_never_passes_the_ceiling_and_round_trips() -> None:
    later = T0 + timedelta(hours=1)
    mark = Watermark().advance([("a", T0), ("b", later)], ceiling=T0 + timedelta(minutes=5))
    assert mark.at == T0
    assert mark.keys == frozenset({"a"})
    assert Watermark.decode(mark.encode()) == mark
    assert Watermark.decode(None) == Watermark()


def test_watermark_is_sealed_only_once_the_vendors_clock_left_its_second() -> None:
    mark = Watermark().advance([("a", T0), ("b", T0)])
    assert mark.sealed_by(T0 + timedelta(milliseconds=900)) == mark  # the vendor may still stamp T0
    assert mark.sealed_by(None) == mark  # no Date header: nothing is known of the vendor's clock
    sealed = mark.sealed_by(T0 + timedelta(seconds=1))
    assert sealed == Watermark(T0, frozenset(), sealed=True)
    assert (sealed.inclusive, mark.inclusive) == (False, True)
    assert not sealed.admits("c", T0)  # nothing new can carry the sealed second's stamp
    assert sealed.admits("a", T0 + timedelta(seconds=1))
    assert Watermark.decode(sealed.encode()) == sealed


def test_a_sealed_watermark_opens_again_when_it_moves() -> None:
    sealed = Watermark(T0, sealed=True)
    moved = sealed.advance([("a", T0), ("b", T0 + timedelta(seconds=2))])
    assert moved == Watermark(T0 + timedelta(seconds=2), frozenset({"b"}))
    assert sealed.advance([("a", T0)]) == sealed  # the sealed second adds no keys
    assert Watermark.decode('{"at": null, "keys": []}') == Watermark()  # cursors stored before sealing


def test_an_open_after_filter_starts_a_second_early_until_the_watermark_is_sealed() -> None:
    assert Watermark().after() is None
    assert Watermark(T0, frozenset({"a"})).after() == T0 - timedelta(seconds=1)
    assert Watermark(T0, sealed=True).after() == T0
