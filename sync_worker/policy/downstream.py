"""What a system that knows only subscribed/unsubscribed is told (RULES.md R27)."""

from __future__ import annotations

from typing import Literal

from sync_worker.policy.facts import Decision


def downstream_status(decision: Decision | None) -> Literal["subscribed", "unsubscribed"]:
    """R27 fail closed: anything but an ALLOW (including no decision at all) is ``unsubscribed``."""
    return "subscribed" if decision is not None and decision.allowed else "unsubscribed"
