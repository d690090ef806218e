"""What one run reports: per-connector counts, the run's status and its one-line summary for log collectors."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.base import Outcome, PushResult
from sync_worker.observe import ACCOUNT, TAG_PREFIX
from sync_worker.retry_budget import StuckOptOut


@dataclass
class ConnectorCounts:
    pulled: int = 0
    events: int = 0
    echoes: int = 0
    planned: int = 0
    pushed: int = 0
    failed: int = 0
    gone: int = 0  # changes for people the vendor no longer holds (deleted there): settled, not failed
    stopped: int = 0  # subscribes no longer allowed when their push came: superseded (sync_worker.push_vet)
    rejected_records: int = 0
    error: str | None = None


@dataclass
class RunReport:
    run_id: str
    trigger: str
    dry_run: bool
    started_at: datetime
    ended_at: datetime | None = None
    status: str = "running"
    counts: dict[str, ConnectorCounts] = field(default_factory=dict)
    error: str | None = None
    # (connector, purpose label, accepted) -> results, and connector -> (retries, 429s): for /metrics.
    pushes: Counter[tuple[str, str, bool]] = field(default_factory=Counter)
    vendor_calls: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Opt-outs that have not reached a system (failing past the bound, or refused): R25, reported each run.
    stuck_optouts: list[StuckOptOut] = field(default_factory=list)
    subscribes_given_up: Counter[str] = field(default_factory=Counter)  # per system, this run

    @property
    def exit_code(self) -> int:
        return {"success": 0, "partial": 1}.get(self.status, 2)

    @property
    def planned(self) -> int:
        return sum(c.planned for c in self.counts.values())

    def summary(self) -> dict[str, Any]:
        """The one line per run for log collectors."""
        return {
            "run_id": self.run_id,
            "trigger": self.trigger,
            "dry_run": self.dry_run,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "changes": self.planned,
            "connectors": {name: vars(c) for name, c in sorted(self.counts.items())},
            "optouts_not_propagated": {
                s.system: {"failing": s.failing, "refused": s.refused, "oldest": s.oldest.isoformat()}
                for s in self.stuck_optouts
            },
            "subscribes_given_up": dict(sorted(self.subscribes_given_up.items())),
            "error": self.error,
        }


def purpose_label(slot: str) -> str:
    """The metrics label of an outbox slot: the purpose, or ``account`` / ``tags`` for the others."""
    if slot == ACCOUNT:
        return "account"
    return "tags" if slot.startswith(TAG_PREFIX) else slot


def push_result_text(result: PushResult) -> str:
    if result.outcome == Outcome.GONE:
        text = "gone: the system no longer holds this person"
        return f"{text} ({result.reason})" if result.reason else text
    if result.outcome == Outcome.ACCEPTED:
        return f"accepted ({result.vendor_state})" if result.vendor_state else "accepted"
    label = "rejected" if result.outcome == Outcome.REJECTED else "retry later"
    return f"{label}: {result.reason}" if result.reason else label


def run_status(report: RunReport) -> str:
    """Failed when the run or every connector failed; partial when anything is left for the operator."""
    if report.error is not None:
        return "failed"
    counts = list(report.counts.values())
    if counts and all(c.error for c in counts):
        return "failed"
    if any(c.error or c.failed or c.rejected_records for c in counts) or report.stuck_optouts:
        return "partial"
    return "success"
