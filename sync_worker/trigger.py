"""What asks for a reconciliation run, and what a run reports back to the service.

The service (scheduler, webhooks) never imports the runner directly: it calls a ``RunFn`` built in the
composition root. That keeps the web layer testable with a fake and lets the runner evolve on its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from connectors.base import GlobalState, Status


class Trigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    WEBHOOK = "webhook"


class RunStatus(StrEnum):
    SUCCESS = "success"
    PARTIAL = "partial"  # some items failed or were rejected; they are retried on later runs
    FAILED = "failed"
    SKIPPED = "skipped"  # nothing to do here, e.g. another replica holds every connector's lease


@dataclass(frozen=True, slots=True)
class WebhookFact:
    """One thing a vendor told us in a verified webhook, in canonical terms.

    A fact is a hint, not yet a ledger event: the targeted run re-reads the person and records the change
    with the vendor's evidence (the echo check happens there too, so our own pushes echoed back by a
    webhook never become the person's act).
    """

    system: str
    topic: str  # the vendor's event name, e.g. "unsubscribe", "customers/update", "contact.propertyChange"
    email: str | None = None  # normalised; None when the vendor only sends its own id (HubSpot)
    external_id: str | None = None
    event_id: str | None = None  # the vendor's id for this delivery/event: ledger idempotency key
    occurred_at: datetime | None = None
    status: Status | None = None  # the vendor's main subscription flag after the event
    global_state: GlobalState | None = None
    reason: str | None = None
    # The event names a change but not the new state (a HubSpot subscription's opt-out property): the
    # targeted run reads the person from the vendor instead of waiting for the scheduled pull.
    read_back: bool = False


@dataclass(frozen=True, slots=True)
class RunRequest:
    """A run to do now. Empty ``emails`` and ``external_ids`` mean everyone (a scheduled reconciliation)."""

    trigger: Trigger
    emails: frozenset[str] = frozenset()
    external_ids: frozenset[tuple[str, str]] = frozenset()  # (system, vendor id) when no e-mail is known
    facts: tuple[WebhookFact, ...] = ()
    only: frozenset[str] = frozenset()  # connector names; empty means every enabled connector

    @property
    def targeted(self) -> bool:
        return bool(self.emails or self.external_ids)

    @classmethod
    def for_facts(cls, facts: tuple[WebhookFact, ...]) -> RunRequest:
        emails = frozenset(f.email for f in facts if f.email)
        ids = frozenset(
            (f.system, f.external_id) for f in facts if f.email is None and f.external_id is not None
        )
        return cls(trigger=Trigger.WEBHOOK, emails=emails, external_ids=ids, facts=facts)

    def merged(self, other: RunRequest) -> RunRequest:
        """One targeted run for the people of both requests (webhooks that arrive while a run is busy)."""
        return RunRequest(
            trigger=self.trigger,
            emails=self.emails | other.emails,
            external_ids=self.external_ids | other.external_ids,
            facts=self.facts + other.facts,
            only=self.only | other.only if self.only and other.only else frozenset(),
        )


@dataclass(frozen=True, slots=True)
class RunSummary:
    status: RunStatus
    run_id: str | None = None
    pushed: int = 0
    failed: int = 0
    detail: dict[str, int] = field(default_factory=dict)
    # (connector, purpose, accepted, n) and (connector, retries, 429s): what the metrics count per run.
    pushes: tuple[tuple[str, str, bool, int], ...] = ()
    vendor_calls: tuple[tuple[str, int, int], ...] = ()


RunFn = Callable[[RunRequest], Awaitable[RunSummary]]
