"""The virtual clock: sleepers overlap as in real time, and the clock moves only when nothing can run."""

from __future__ import annotations

import asyncio

from connectors.virtual_time import VirtualClock


async def test_concurrent_sleepers_overlap_and_wake_in_deadline_order() -> None:
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock()))

    await asyncio.gather(nap("long", 5.0), nap("short", 2.0), nap("middle", 3.0))
    assert woke == [("short", 2.0), ("middle", 3.0), ("long", 5.0)]
    assert clock.skipped == 5.0, "three overlapping waits take as long as the longest"


async def test_the_clock_waits_while_other_work_can_run() -> None:
    clock = VirtualClock()
    seen: list[float] = []

    async def busy() -> None:
        for _ in range(50):
            seen.append(clock())
            await asyncio.sleep(0)

    await asyncio.gather(clock.sleep(10.0), busy())
    assert set(seen) == {0.0}, "no jump while another task still had work"
    assert clock() == 10.0
