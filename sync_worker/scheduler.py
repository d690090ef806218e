"""The schedule of reconciliation runs: APScheduler 3's AsyncIOScheduler on an interval or a crontab.

``max_instances=1`` and ``coalesce``: a run that overruns its period is never doubled, and fire times
missed while the process was busy or suspended collapse into one run. The misfire grace is bounded
(half a period, at most five minutes) so a run that is very late is skipped for the next one instead
of starting at an odd hour.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from config.settings import ScheduleSettings

JOB_ID = "reconcile"
MAX_MISFIRE_GRACE = timedelta(minutes=5)
DEFAULT_INTERVAL = timedelta(seconds=900)


@dataclass(frozen=True, slots=True)
class Plan:
    trigger: IntervalTrigger | CronTrigger
    period: timedelta  # the shortest gap between two fire times
    misfire_grace: timedelta

    def job_options(self, first_run: datetime | None = None) -> dict[str, Any]:
        # A first run at start: a restarted container should not wait a whole period to repair drift.
        extra = {"next_run_time": first_run} if first_run is not None else {}
        return {
            **extra,
            "id": JOB_ID,
            "max_instances": 1,
            "coalesce": True,
            "misfire_grace_time": int(self.misfire_grace.total_seconds()),
            "replace_existing": True,
        }

    def max_run_age(self, schedule: ScheduleSettings) -> timedelta:
        """How old the last run may be before /readyz fails: three periods unless configured."""
        if schedule.max_run_age_seconds is not None:
            return timedelta(seconds=schedule.max_run_age_seconds)
        return 3 * self.period


def _cron_period(trigger: CronTrigger, now: datetime) -> timedelta:
    # The shortest gap among the next fire times (a crontab such as "0 9,17 * * *" is uneven).
    gaps = []
    previous: datetime | None = None
    current = now
    for _ in range(8):
        fire = trigger.get_next_fire_time(previous, current)
        if fire is None:
            break
        if previous is not None:
            gaps.append(fire - previous)
        previous, current = fire, fire + timedelta(seconds=1)
    return min(gaps) if gaps else timedelta(days=1)


def plan(schedule: ScheduleSettings, now: datetime | None = None) -> Plan:
    """Map SYNC_SCHEDULE__* onto an APScheduler trigger and job options (the cron wins when both are set)."""
    trigger: IntervalTrigger | CronTrigger
    if schedule.cron:
        trigger = CronTrigger.from_crontab(schedule.cron, timezone=UTC)
        period = _cron_period(trigger, now or datetime.now(UTC))
    else:
        period = (
            timedelta(seconds=schedule.interval_seconds) if schedule.interval_seconds else DEFAULT_INTERVAL
        )
        trigger = IntervalTrigger(seconds=int(period.total_seconds()), timezone=UTC)
    grace = max(timedelta(seconds=1), min(period / 2, MAX_MISFIRE_GRACE))
    return Plan(trigger, period, grace)


def build_scheduler(
    schedule_plan: Plan, job: Callable[[], Awaitable[object]], first_run: datetime | None = None
) -> AsyncIOScheduler:
    """A scheduler (not started) with the one reconciliation job; start it inside the running loop."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(job, schedule_plan.trigger, **schedule_plan.job_options(first_run))
    return scheduler
