"""Paginators for offset, cursor and Link-header paging, and the incremental watermark.

Every paginator refuses a page token it has already seen: a vendor that repeats itself would otherwise
make a run loop forever.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import httpx

from connectors.errors import PaginationError

T = TypeVar("T")


async def follow_tokens(
    system: str, fetch: Callable[[str | None], Awaitable[tuple[T, str | None]]], start: str | None = None
) -> AsyncIterator[T]:
    """Cursor / Link paging: ``fetch(token)`` returns a page and the next token (None at the end)."""
    seen: set[str] = set()
    token = start
    while True:
        page, next_token = await fetch(token)
        yield page
        if not next_token:
            return
        if next_token in seen or next_token == token:
            raise PaginationError(system, f"the vendor repeated page token {next_token[:80]!r}")
        seen.add(next_token)
        token = next_token


async def follow_offsets(
    fetch: Callable[[int], Awaitable[tuple[T, int, int | None]]],
    page_size: int,
    start: int = 0,
) -> AsyncIterator[T]:
    """Offset paging: ``fetch(offset)`` returns a page, its item count and the total (if the vendor says)."""
    offset = start
    while True:
        page, count, total = await fetch(offset)
        yield page
        offset += count
        if count < page_size or count == 0 or (total is not None and offset >= total):
            return


def next_link(response: httpx.Response) -> str | None:
    """The ``rel="next"`` URL of an RFC 8288 Link header, if any."""
    link = response.links.get("next")
    return link.get("url") if link else None


@dataclass(frozen=True)
class Watermark:
    """An incremental cursor with a closed boundary: ``at`` plus the keys already seen at exactly ``at``.

    Pulling again from a watermark re-reads the records stamped ``at`` (a vendor may add more with the same
    stamp after we read) and drops only those whose key was seen: nothing at the boundary is lost, nothing
    is taken twice.

    A ``sealed`` watermark has read every record stamped ``at`` or earlier: the vendor's own clock (its
    ``Date`` header) had passed that second when the pull began, so nothing can be stamped ``at`` any
    more. The next pull asks only for what is newer, and a quiet pull reads nothing again.
    """

    at: datetime | None = None
    keys: frozenset[str] = frozenset()
    sealed: bool = False

    @property
    def inclusive(self) -> bool:
        """Whether the next pull must ask for records stamped ``at`` itself (a closed boundary)."""
        return not self.sealed

    def after(self) -> datetime | None:
        """Where a vendor's "changed after" filter starts, for a filter that may be open: a second before
        ``at`` while records stamped ``at`` must be read again (``admits`` drops the keys seen there),
        ``at`` itself once sealed. None: no watermark yet, read everything."""
        if self.at is None:
            return None
        return self.at - timedelta(seconds=1) if self.inclusive else self.at

    def admits(self, key: str, stamp: datetime | None) -> bool:
        if self.at is None or stamp is None:
            return True
        return stamp > self.at or (stamp == self.at and not self.sealed and key not in self.keys)

    def advance(
        self, seen: Iterable[tuple[str, datetime | None]], ceiling: datetime | None = None
    ) -> Watermark:
        """The watermark after ``seen``; it stays before the second ``ceiling`` (the run's start) is in.

        Vendors stamp to the second. A record stamped in the second the run started may change again
        within that second after we read it, keeping its stamp: were it among the keys at the boundary,
        the next pull would drop that change as already seen (a person's opt-out right after a grant, or
        the echo of our own push). Stopping short of that second makes the next pull take it again.
        """
        limit = ceiling.replace(microsecond=0) if ceiling is not None else None
        at, keys, sealed = self.at, set(self.keys), self.sealed
        for key, stamp in seen:
            if stamp is None or (limit is not None and stamp >= limit):
                continue
            if at is None or stamp > at:
                at, keys, sealed = stamp, {key}, False
            elif stamp == at and not sealed:
                keys.add(key)
        return Watermark(at, frozenset(keys), sealed)

    def sealed_by(self, vendor_now: datetime | None) -> Watermark:
        """This watermark sealed if the vendor's clock ``vendor_now``, read when the pull began, had left
        the second ``at``: every record stamped then existed when the pull read past it."""
        if self.at is None or vendor_now is None or self.sealed:
            return self
        if self.at < vendor_now.replace(microsecond=0):
            return Watermark(self.at, frozenset(), sealed=True)
        return self

    def encode(self) -> str:
        data: dict[str, object] = {"at": self.at.isoformat() if self.at else None, "keys": sorted(self.keys)}
        if self.sealed:
            data["sealed"] = True
        return json.dumps(data)

    @classmethod
    def decode(cls, cursor: str | None) -> Watermark:
        if not cursor:
            return cls()
        data = json.loads(cursor)
        return cls(
            datetime.fromisoformat(data["at"]) if data.get("at") else None,
            frozenset(data.get("keys", [])),
            bool(data.get("sealed", False)),
        )
