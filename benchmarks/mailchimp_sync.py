"""Mailchimp connector against its in-process sandbox: full pull and a bulk push, medians of a few runs.

Run by hand: ``.venv/bin/python -m benchmarks.mailchimp_sync [members] [runs]``. Numbers include the
sandbox's own work (it is Python too), so read them as an upper bound on the connector's cost and as
ratios between runs on one machine, not as Mailchimp's speed.
"""

from __future__ import annotations

import asyncio
import platform
import statistics
import sys
import time
import tracemalloc
from datetime import UTC, datetime

import httpx
from pydantic import SecretStr

from config.mailchimp import MailchimpSettings
from connectors.base import Action, Change, Status
from connectors.mailchimp.connector import MailchimpConnector
from connectors.mailchimp.sandbox import MailchimpSandbox
from connectors.sandbox import Clock


def _setup(members: int) -> tuple[MailchimpSandbox, MailchimpConnector]:
    box = MailchimpSandbox(Clock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC)))
    for i in range(members):
        box.add_contact(f"person{i:06d}@example.nl", {"newsletter": Status.SUBSCRIBED})
        if i % 7 == 0:
            box.clock.advance(1)  # several members share each second, as after an import
    settings = MailchimpSettings(
        api_key=SecretStr(box.api_key), list_id=box.audience.list_id, base_url="http://sandbox/3.0"
    )
    return box, MailchimpConnector.from_settings(settings, transport=httpx.ASGITransport(app=box.app))


async def _pull(connector: MailchimpConnector) -> int:
    return sum([len(page.records) async for page in connector.pull("contacts")])


async def _push(connector: MailchimpConnector, members: int) -> int:
    changes = [
        Change(str(i), "mailchimp", f"person{i:06d}@example.nl", Action.UNSUBSCRIBE, "newsletter")
        for i in range(members)
    ]
    return len(await connector.push(changes))


async def main(members: int, runs: int) -> None:
    pulls, pushes, peaks = [], [], []
    for _ in range(runs):
        _box, connector = _setup(members)
        started = time.perf_counter()
        assert await _pull(connector) == members
        pulls.append(time.perf_counter() - started)
        # A second pull under tracemalloc for the memory peak (tracing slows it, so it is not timed).
        tracemalloc.start()
        assert await _pull(connector) == members
        peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
        started = time.perf_counter()
        assert await _push(connector, members) == members
        pushes.append(time.perf_counter() - started)
        await connector.aclose()
    pull, push = statistics.median(pulls), statistics.median(pushes)
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    print(f"members {members}, runs {runs}")
    print(
        f"pull: median {pull:.2f} s, {members / pull:,.0f} members/s, peak traced memory {statistics.median(peaks):.1f} MiB"
    )
    print(f"push (unsubscribe, batches of 500): median {push:.2f} s, {members / push:,.0f} changes/s")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    asyncio.run(main(count, repeat))
