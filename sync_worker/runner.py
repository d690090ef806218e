"""``run_once``, the composition root of one run: settings -> engine, ledger, connectors -> Reconciliation.

The run itself is ``sync_worker.reconciliation``; what it reports is ``sync_worker.run_report``. Both are
re-exported here, where the CLI, the service and the tests have always imported them from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx

from config import Settings
from connectors.base import Connector
from connectors.http import counters_of
from connectors.registry import connector_class
from sync_worker import db
from sync_worker.lease import Lease, build_leases
from sync_worker.plan_pool import processes_available
from sync_worker.progress import NoProgress, Progress
from sync_worker.reconciliation import Clock, Reconciliation, utc_now
from sync_worker.rulebook import policy_from_settings, secret_of
from sync_worker.run_report import ConnectorCounts, RunReport, purpose_label
from sync_worker.sql_ledger import SqlLedger
from sync_worker.trigger import WebhookFact

__all__ = [
    "ConnectorCounts",
    "NothingToRunError",
    "Reconciliation",
    "RunReport",
    "purpose_label",
    "run_once",
]


class NothingToRunError(ValueError):
    """No connector to run: the message names what to set."""


def run_once(
    settings: Settings,
    *,
    trigger: str = "manual",
    dry_run: bool = False,
    only: str | None = None,
    full: bool = False,
    emails: Iterable[str] | None = None,
    facts: Sequence[WebhookFact] = (),
    transport_for: Callable[[str], httpx.AsyncBaseTransport | None] | None = None,
    clock: Clock | None = None,
    progress: Progress | None = None,
    leased: bool = False,
    take_leases: bool = False,
) -> RunReport:
    """The composition root of one run: settings -> engine, ledger, connectors -> Reconciliation.

    ``leased``: the caller (the service) holds the leases of the connectors run. ``take_leases``: take
    them here for the run (``run --once``); a connector leased by another replica leaves the run without
    the lease's takeover of orphaned claims (they are then taken once stale).
    """
    names = settings.enabled_vendors()
    if only is not None:
        if only not in settings.vendors():
            raise NothingToRunError(f"--connector {only!r}: unknown; known: {', '.join(settings.vendors())}")
        if only not in names:
            missing = ", ".join(settings.vendors()[only].missing())
            raise NothingToRunError(f"--connector {only!r} is not configured: set {missing}")
        names = [only]
    if not names:
        raise NothingToRunError(
            "no connector is configured: set the credentials of at least one vendor (see `sync-worker config`)"
        )
    now = clock or utc_now
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine)
    secret = secret_of(settings)
    ledger = SqlLedger(policy_from_settings(settings), secret, now)
    held: list[Lease] = []
    if take_leases:
        leases = build_leases(engine)
        held = [lease for name in names if (lease := leases.try_acquire(name)) is not None]
        leased = len(held) == len(names)

    async def go() -> RunReport:
        connectors: dict[str, Connector] = {}
        try:
            for name in names:
                transport = transport_for(name) if transport_for else None
                extra: dict[str, Any] = {"clock": clock} if clock else {}
                connectors[name] = connector_class(name).from_settings(settings, transport=transport, **extra)
            reconciliation = Reconciliation(
                engine, connectors, ledger, tuple(settings.policy.purposes), secret or b"", now,
                progress=progress or NoProgress(), leased=leased, complete=only is None,
                processes=settings.plan_processes or processes_available(),
            )  # fmt: skip
            report = await reconciliation.run(
                trigger=trigger, dry_run=dry_run, full=full, emails=emails, facts=facts
            )
            for name, connector in connectors.items():
                calls = counters_of(getattr(connector, "client", connector))
                report.vendor_calls[name] = (calls.retries, calls.rate_limited)
            return report
        finally:
            for connector in connectors.values():
                await connector.aclose()

    try:
        return asyncio.run(go())
    finally:
        for lease in held:
            lease.release()
        engine.dispose()
