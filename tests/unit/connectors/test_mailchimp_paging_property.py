"""Keyset paging over last_changed, for any mix of equal stamps, page sizes and interruptions."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from config.mailchimp import MailchimpSettings
from connectors.base import ContactRecord, Status
from connectors.mailchimp.connector import MailchimpConnector
from connectors.mailchimp.sandbox import MailchimpSandbox
from connectors.sandbox import Clock


def _connector(box: MailchimpSandbox, page_size: int) -> MailchimpConnector:
    settings = MailchimpSettings(
        api_key=SecretStr(box.api_key),
        list_id=box.audience.list_id,
        base_url="http://sb/3.0",
        page_size=page_size,
    )
    return MailchimpConnector.from_settings(settings, transport=httpx.ASGITransport(app=box.app))


async def _pull(
    box: MailchimpSandbox, page_size: int, since: str | None, stop_after: int | None
) -> tuple[list[str], str | None]:
    connector = _connector(box, page_size)
    emails: list[str] = []
    checkpoint = since
    pages = 0
    stream = connector.pull("contacts", since=since)
    async for page in stream:
        pages += 1
        emails.extend(r.email for r in page.records if isinstance(r, ContactRecord))
        checkpoint = page.checkpoint or checkpoint
        if stop_after is not None and pages >= stop_after:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    await connector.aclose()
    return emails, checkpoint


@settings(max_examples=40, deadline=None)
@given(
    ticks=st.lists(st.sampled_from([0, 0, 0, 1, 5]), min_size=1, max_size=30),
    page_size=st.integers(1, 6),
    stop_after=st.integers(1, 8),
)
def test_interrupted_pull_resumes_to_every_member_once_per_read(
    ticks: list[int], page_size: int, stop_after: int
) -> None:
    box = MailchimpSandbox(Clock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC)))
    emails = []
    for i, tick in enumerate(ticks):
        box.clock.advance(tick)
        emails.append(f"m{i:02d}@example.nl")
        box.add_contact(emails[-1], {"newsletter": Status.SUBSCRIBED})

    whole, _ = asyncio.run(_pull(box, page_size, None, None))
    assert Counter(whole) == Counter(emails)

    head, checkpoint = asyncio.run(_pull(box, page_size, None, stop_after))
    tail, _ = asyncio.run(_pull(box, page_size, checkpoint, None))
    assert set(head) | set(tail) == set(emails)
    assert not set(head) & set(tail), "members covered by the checkpoint were read again"
    assert max(Counter(tail).values(), default=1) == 1
