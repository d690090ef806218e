"""Runs wired to the real consent ledger and policy core (fake vendors, real SQL ledger)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from connectors.base import Evidence, Status
from sync_worker.ledger.erasure import erase, pending_erasures
from sync_worker.ledger.tables import EVENTS
from sync_worker.ledger_port import EventKind, ObservedEvent
from sync_worker.plan import REPERMISSION_TAG
from sync_worker.policy import Point, Policy
from sync_worker.runner import Reconciliation, RunReport
from sync_worker.sql_ledger import SqlLedger
from tests.runs.fakes import T0, FakeVendor, ledger_actions

POINT = "mailchimp:signup-form"
POLICY = Policy(
    purposes=("newsletter",),
    collection_points=((POINT, Point(purposes=("newsletter",), double_opt_in=True)),),
)
SIGNUP = Evidence(
    consent_at=T0 - timedelta(days=9),
    signup_at=T0 - timedelta(days=10),
    method="double_opt_in",
    collection_point=POINT,
    double_opt_in=True,
)


class Wired:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.mailchimp = FakeVendor("mailchimp", ["newsletter"])
        self.klaviyo = FakeVendor("klaviyo", ["newsletter"], erase=True)
        self.now = T0

    def clock(self) -> datetime:
        return self.now

    async def run(self) -> RunReport:
        self.now += timedelta(minutes=1)
        ledger = SqlLedger(POLICY, b"secret", self.clock)
        connectors = {v.name: v.connector() for v in (self.mailchimp, self.klaviyo)}
        return await Reconciliation(
            self.engine, connectors, ledger, POLICY.purposes, b"secret", self.clock
        ).run(trigger="manual")

    def actions(self, email: str) -> list[tuple[str, str]]:
        return ledger_actions(self.engine, email)


@pytest.fixture
def wired(engine: Engine) -> Wired:
    return Wired(engine)


async def test_double_opt_in_signup_allows_and_its_unsubscribe_reaches_the_other_system(wired: Wired) -> None:
    wired.mailchimp.add("jan@example.nl", Status.SUBSCRIBED, evidence=SIGNUP)
    wired.klaviyo.add("jan@example.nl", Status.NOT_SUBSCRIBED)
    await wired.run()
    assert wired.actions("jan@example.nl") == [("mailchimp", "grant"), ("mailchimp", "confirm")]
    assert wired.klaviyo.status("jan@example.nl", "newsletter") == Status.SUBSCRIBED  # attested consent

    wired.mailchimp.set_status("jan@example.nl", "newsletter", Status.UNSUBSCRIBED)
    await wired.run()
    assert wired.klaviyo.status("jan@example.nl", "newsletter") == Status.UNSUBSCRIBED
    await wired.run()  # reads back the echoes
    # The echo in Klaviyo (both of our pushes) never entered the ledger as the person's act.
    assert wired.actions("jan@example.nl") == [
        ("mailchimp", "grant"),
        ("mailchimp", "confirm"),
        ("mailchimp", "withdraw"),
    ]
    quiet = await wired.run()
    assert quiet.planned == 0


async def test_bare_subscribed_flag_is_unproven_quarantined_and_never_mailed(wired: Wired) -> None:
    wired.klaviyo.add("imp@example.nl", Status.SUBSCRIBED)
    report = await wired.run()
    assert report.status == "success", report.summary()
    contact = wired.klaviyo.contacts["imp@example.nl"]
    assert contact.statuses["newsletter"] == Status.UNSUBSCRIBED  # R27
    assert REPERMISSION_TAG in contact.tags  # R8: listed for re-permission
    with wired.engine.begin() as conn:
        levels = conn.execute(select(EVENTS.c.evidence_level)).scalars().all()
    assert levels == ["unproven"]


async def test_erasure_from_the_ledger_is_carried_out_in_every_system_r21(wired: Wired) -> None:
    wired.mailchimp.add("del@example.nl", Status.SUBSCRIBED, evidence=SIGNUP)
    wired.klaviyo.add("del@example.nl", Status.SUBSCRIBED)
    await wired.run()
    with wired.engine.begin() as conn:
        erase(conn, "del@example.nl", secret=b"secret", now=wired.now)
    await wired.run()
    assert wired.mailchimp.status("del@example.nl", "newsletter") == Status.UNSUBSCRIBED
    assert wired.klaviyo.contacts["del@example.nl"].global_state.value == "erased"
    with wired.engine.begin() as conn:
        assert pending_erasures(conn) == []
    before = wired.actions("del@example.nl")
    await wired.run()  # the vendors' read-back of an erased person stores nothing (R22)
    assert wired.actions("del@example.nl") == before == []


def test_event_the_ledger_refuses_comes_back_naming_vendor_record_and_field(engine: Engine) -> None:
    ledger = SqlLedger(POLICY, b"secret", lambda: T0)
    # A vendor list name longer than the ledger keeps (64) cannot become a purpose.
    too_long = ObservedEvent(
        "jan@example.nl", "n" * 70, EventKind.WITHDRAW, T0, "mailchimp", "mc-ev-1", "R16", external_id="mc-1"
    )
    fine = ObservedEvent(
        "eva@example.nl", "newsletter", EventKind.WITHDRAW, T0, "mailchimp", "mc-ev-2", "R16"
    )
    with engine.begin() as conn:
        recorded = ledger.record(conn, [too_long, fine], [])
    assert recorded.inserted == 1
    [refused] = recorded.rejected
    assert (refused.system, refused.record_id, refused.field) == ("mailchimp", "mc-1", "purpose")
    assert "64" in refused.message


async def test_a_withdrawal_dated_after_the_run_began_still_stops_its_planned_subscribe(
    wired: Wired, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The push is decided again at the time of the push, not of the run's start: a withdrawal the
    vendor dated after the run began is in effect by then (R16, R29)."""
    wired.mailchimp.add("jan@example.nl", Status.SUBSCRIBED, evidence=SIGNUP)
    wired.klaviyo.add("jan@example.nl", Status.NOT_SUBSCRIBED)  # allowed there: a subscribe is planned
    planned = Reconciliation._plan

    def plan_then_withdraw(self: Reconciliation, report: RunReport, now: datetime, *args: object) -> None:
        planned(self, report, now, *args)  # type: ignore[arg-type]
        # A webhook run records the unsubscribe the vendor dated half a minute after this run began; the
        # push comes a minute after the start.
        unsubscribe = ObservedEvent(
            "jan@example.nl", "newsletter", EventKind.WITHDRAW, now + timedelta(seconds=30), "mailchimp",
            "unsubscribe-1", "R20",
        )  # fmt: skip
        with self.engine.begin() as conn:
            self.ledger.record(conn, [unsubscribe], [])
        wired.now = now + timedelta(minutes=1)

    monkeypatch.setattr(Reconciliation, "_plan", plan_then_withdraw)
    report = await wired.run()
    assert report.status == "success", report.summary()
    assert wired.klaviyo.status("jan@example.nl", "newsletter") == Status.NOT_SUBSCRIBED
    assert not wired.klaviyo.pushes
    assert ("mailchimp", "withdraw") in wired.actions("jan@example.nl")


async def test_an_erasure_after_planning_stops_the_planned_subscribe_r21_r22(
    wired: Wired, monkeypatch: pytest.MonkeyPatch
) -> None:
    wired.mailchimp.add("del@example.nl", Status.SUBSCRIBED, evidence=SIGNUP)
    wired.klaviyo.add("del@example.nl", Status.NOT_SUBSCRIBED)  # allowed there: a subscribe is planned
    planned = Reconciliation._plan

    def plan_then_erase(self: Reconciliation, report: RunReport, now: datetime, *args: object) -> None:
        planned(self, report, now, *args)  # type: ignore[arg-type]
        with self.engine.begin() as conn:
            erase(conn, "del@example.nl", secret=b"secret", now=now)

    monkeypatch.setattr(Reconciliation, "_plan", plan_then_erase)
    report = await wired.run()
    assert report.counts["klaviyo"].stopped == 1
    assert not wired.klaviyo.pushes
    assert wired.klaviyo.status("del@example.nl", "newsletter") == Status.NOT_SUBSCRIBED
    monkeypatch.setattr(Reconciliation, "_plan", planned)
    await wired.run()  # the erasure is carried out in both systems
    assert wired.klaviyo.contacts["del@example.nl"].global_state.value == "erased"


async def test_an_erasure_requested_while_a_run_pushes_is_carried_out_by_the_next_run_r21(
    wired: Wired, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The person's earlier changes are all settled, so the outbox alone would call the erasure complete
    in the run that did not plan it; it is completed only by a run that planned and pushed it."""
    wired.mailchimp.add("del@example.nl", Status.SUBSCRIBED, evidence=SIGNUP)
    wired.klaviyo.add("del@example.nl", Status.NOT_SUBSCRIBED)
    await wired.run()  # Klaviyo is subscribed: a settled change
    planned = Reconciliation._plan

    def plan_then_erase(
        self: Reconciliation, report: RunReport, now: datetime, *args: object
    ) -> frozenset[str]:
        erasing = planned(self, report, now, *args)  # type: ignore[arg-type]
        with self.engine.begin() as conn:
            erase(conn, "del@example.nl", secret=b"secret", now=now)
        return erasing

    monkeypatch.setattr(Reconciliation, "_plan", plan_then_erase)
    await wired.run()
    with wired.engine.begin() as conn:
        assert [email for _, email in pending_erasures(conn)] == ["del@example.nl"]  # still to carry out
    monkeypatch.setattr(Reconciliation, "_plan", planned)
    await wired.run()
    assert wired.klaviyo.contacts["del@example.nl"].global_state.value == "erased"
    assert wired.mailchimp.status("del@example.nl", "newsletter") == Status.UNSUBSCRIBED
    with wired.engine.begin() as conn:
        assert pending_erasures(conn) == []
