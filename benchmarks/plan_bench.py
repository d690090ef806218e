"""Planning alone (the pure core of a run): N people x 4 purposes x 4 systems, medians of a few runs.

Run by hand: ``.venv/bin/python -m benchmarks.plan_bench [people] [runs]``. Decisions are given (the
policy core's share is measured by the ledger's benchmarks), so this is the plan step's own cost: desired
state through each system's purpose mapping minus the observed snapshot.
"""

from __future__ import annotations

import os
import platform
import random
import resource
import statistics
import sys
import time

from connectors.base import Action, Capabilities, GlobalState, Status, StreamInfo
from sync_worker.ledger_port import Verdict
from sync_worker.observe import Seen
from sync_worker.plan import Person, plan

PURPOSES = ("newsletter", "promotions", "events", "lead_magnet")
SYSTEMS = ("mailchimp", "klaviyo", "hubspot", "shopify")
CAPS = {
    s: Capabilities(s, (StreamInfo("contacts", True, True, 1000),), frozenset(Action), frozenset(PURPOSES))
    for s in SYSTEMS
}
VERDICTS = (
    Verdict(True, "consent", "R5", "consent"),
    Verdict(False, "none", "R16", "withdrawn"),
    Verdict(False, "none", "R1", "no basis"),
    Verdict(False, "none", "R8", "unproven", quarantined=True),
)


def people(n: int, rng: random.Random) -> list[Person]:
    """A realistic mix: mostly converged (observed == desired), about one in ten with drift somewhere."""
    out = []
    for i in range(n):
        decisions = {p: rng.choices(VERDICTS, weights=(60, 15, 20, 5))[0] for p in PURPOSES}
        seen = {}
        for system in SYSTEMS:
            statuses = {}
            for p, d in decisions.items():
                drift = rng.random() < 0.025
                on = d.allowed != drift
                statuses[p] = Status.SUBSCRIBED if on else Status.UNSUBSCRIBED
            seen[system] = Seen(f"{system}-{i}", statuses, GlobalState.ACTIVE)
        quarantined = any(d.quarantined for d in decisions.values())
        out.append(Person(f"p{i}@example.nl", decisions, seen, quarantined=quarantined))
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    chunk = 1000  # as the runner plans: chunks of people, never all at once
    batch = people(chunk, random.Random(7))
    times, cpus, changes = [], [], 0
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        changes = 0
        for offset in range(0, n, chunk):
            changes += len(plan(batch, CAPS, f"run{offset}"))
        times.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    median = statistics.median(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    print(
        f"plan of {n:,} people x {len(PURPOSES)} purposes x {len(SYSTEMS)} systems: median {median:.2f} s "
        f"of {runs} ({n / median:,.0f} people/s) [{', '.join(f'{t:.2f}' for t in times)}], CPU median "
        f"{statistics.median(cpus):.2f} s [{', '.join(f'{t:.2f}' for t in cpus)}], {changes:,} changes, "
        f"peak RSS {rss:.0f} MiB, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
