"""SYNC_SCHEDULE__* maps onto APScheduler 3 triggers and safe job options."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from config.settings import ScheduleSettings
from sync_worker.scheduler import JOB_ID, build_scheduler, plan

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_interval_maps_to_an_interval_trigger_with_bounded_misfire_grace() -> None:
    result = plan(ScheduleSettings(interval_seconds=600), NOW)
    assert isinstance(result.trigger, IntervalTrigger)
    assert result.trigger.interval == timedelta(seconds=600)
    assert result.period == timedelta(minutes=10)
    assert result.misfire_grace == timedelta(minutes=5)  # half a period, capped at five minutes


def test_short_interval_gets_half_a_period_of_grace() -> None:
    assert plan(ScheduleSettings(interval_seconds=60), NOW).misfire_grace == timedelta(seconds=30)


def test_cron_wins_over_the_interval() -> None:
    result = plan(ScheduleSettings(interval_seconds=600, cron="*/15 * * * *"), NOW)
    assert isinstance(result.trigger, CronTrigger)
    assert result.period == timedelta(minutes=15)
    assert result.trigger.get_next_fire_time(None, NOW + timedelta(minutes=1)) == NOW + timedelta(minutes=15)


def test_uneven_crontab_uses_its_shortest_gap() -> None:
    result = plan(ScheduleSettings(cron="0 9,17 * * *"), NOW)
    assert result.period == timedelta(hours=8)


def test_job_never_overlaps_and_coalesces_missed_runs() -> None:
    options = plan(ScheduleSettings(interval_seconds=900), NOW).job_options()
    assert options["max_instances"] == 1
    assert options["coalesce"] is True
    assert options["misfire_grace_time"] == 300


def test_readiness_allows_three_periods_unless_configured() -> None:
    schedule = ScheduleSettings(interval_seconds=900)
    assert plan(schedule, NOW).max_run_age(schedule) == timedelta(minutes=45)
    configured = ScheduleSettings(interval_seconds=900, max_run_age_seconds=7200)
    assert plan(configured, NOW).max_run_age(configured) == timedelta(hours=2)


def test_built_scheduler_holds_one_job_with_those_options_and_a_first_run_at_start() -> None:
    async def job() -> None:
        return None

    scheduler = build_scheduler(plan(ScheduleSettings(interval_seconds=900), NOW), job, first_run=NOW)
    (registered,) = scheduler.get_jobs()
    assert registered.id == JOB_ID
    assert (registered.max_instances, registered.coalesce, registered.misfire_grace_time) == (1, True, 300)
    assert registered.next_run_time == NOW
