"""A monotonic clock that moves only when everything runnable is waiting on it: rate limits without the wait.

The sandboxes' rate-limit windows and cost buckets, and the connectors' pacers, budgets and retry back-offs,
can all read ``clock()`` and wait with ``clock.sleep``. A sleeper does not sleep: it waits until the event
loop has nothing else to run, and then the clock jumps to the earliest deadline and wakes that sleeper.
Concurrent sleepers therefore overlap as they would in real time, every request reaches a sandbox at the
virtual moment it was sent, and a limit is honoured exactly as in real time; only the idle time is skipped.

Only for in-process runs (sandboxes over ``httpx.ASGITransport``): a wait on real I/O or on a thread looks
idle to the clock, so it would move on during it. It reads ``loop._ready``, CPython's queue of runnable
callbacks, as no public API tells whether the loop has other work.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class VirtualClock:
    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.skipped = 0.0  # seconds the clock jumped over: what the same run would have spent waiting
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._driver: asyncio.Task[None] | None = None

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), woken))
        if self._driver is None or self._driver.done() or self._driver.get_loop() is not loop:
            self._driver = loop.create_task(self._drive())
        await woken

    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        while self._sleepers:
            await asyncio.sleep(0)
            if loop._ready:  # type: ignore[attr-defined]  # other work can still run: let it
                continue
            deadline, _, woken = heapq.heappop(self._sleepers)
            if woken.cancelled():
                continue
            if deadline > self.now:
                self.skipped += deadline - self.now
                self.now = deadline
            woken.set_result(None)
