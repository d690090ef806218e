"""Prometheus metrics of one worker process, on a registry of its own (never the global default).

Others call the ``Metrics`` methods; nothing here reaches into the runner or the database by itself.
Gauges about the outbox can instead be read at scrape time through ``watch_outbox``.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Runs range from a one-person webhook run (well under a second) to a full reconciliation (minutes).
RUN_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs = Counter("sync_runs", "Reconciliation runs by outcome", ["status", "trigger"], registry=r)
        self.run_duration = Histogram(
            "sync_run_duration_seconds",
            "Wall time of a reconciliation run",
            ["trigger"],
            buckets=RUN_DURATION_BUCKETS,
            registry=r,
        )
        self.pushed = Counter(
            "sync_changes_pushed", "Changes a vendor accepted", ["connector", "purpose"], registry=r
        )
        self.failed = Counter(
            "sync_changes_failed",
            "Changes a vendor rejected or that failed after retries",
            ["connector", "purpose"],
            registry=r,
        )
        self.outbox_depth = Gauge("sync_outbox_depth", "Outbox items not yet pushed", registry=r)
        self.oldest_optout_age = Gauge(
            "sync_oldest_unpropagated_optout_age_seconds",
            "Age of the oldest opt-out not yet pushed to every system (0 when none)",
            registry=r,
        )
        self.retries = Counter("sync_vendor_retries", "Vendor requests retried", ["connector"], registry=r)
        self.rate_limited = Counter(
            "sync_vendor_rate_limited", "Vendor answers 429 Too Many Requests", ["connector"], registry=r
        )
        self.webhooks = Counter(
            "sync_webhooks",
            "Webhook requests by vendor and outcome (accepted, or the reason for a 401)",
            ["vendor", "outcome"],
            registry=r,
        )

    def observe_run(self, status: str, trigger: str, seconds: float) -> None:
        self.runs.labels(status=status, trigger=trigger).inc()
        self.run_duration.labels(trigger=trigger).observe(seconds)

    def count_push(self, connector: str, purpose: str, *, accepted: bool, n: int = 1) -> None:
        (self.pushed if accepted else self.failed).labels(connector=connector, purpose=purpose).inc(n)

    def count_vendor_calls(self, connector: str, *, retries: int, rate_limited: int) -> None:
        """Add one run's retry counts (``connectors.http.Counters``) for a connector."""
        self.retries.labels(connector=connector).inc(retries)
        self.rate_limited.labels(connector=connector).inc(rate_limited)

    def set_outbox(self, depth: int, oldest_optout_age_seconds: float) -> None:
        self.outbox_depth.set(depth)
        self.oldest_optout_age.set(oldest_optout_age_seconds)

    def watch_outbox(self, depth: Callable[[], float], oldest_optout_age: Callable[[], float]) -> None:
        """Read the outbox gauges at scrape time instead (e.g. from the ledger on PostgreSQL)."""
        self.outbox_depth.set_function(depth)
        self.oldest_optout_age.set_function(oldest_optout_age)

    def count_webhook(self, vendor: str, outcome: str) -> None:
        self.webhooks.labels(vendor=vendor, outcome=outcome).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
