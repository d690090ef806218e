"""Decisions that change with time alone reach the vendors in incremental runs (no ``--full`` needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, select

from connectors.base import PurchaseRecord, Status
from sync_worker import db, due, runlog, snapshot
from sync_worker.policy import Policy
from sync_worker.policy.months import add_months
from sync_worker.runner import Reconciliation, RunReport
from sync_worker.sql_ledger import SqlLedger
from tests.runs.fakes import T0, FakeVendor

POLICY = Policy(purposes=("promotions",), soft_opt_in_months=24)
CUSTOMER = "klant@example.nl"
BOUGHT = T0 - timedelta(days=10)


class Shop:
    """One vendor mailing promotions, the real ledger and policy core, and a clock the test moves."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.vendor = FakeVendor("klaviyo", ["promotions"])
        self.now = T0
        self.ledger = SqlLedger(POLICY, b"secret", self.clock)

    def clock(self) -> datetime:
        return self.now

    async def run(self, *, dry_run: bool = False) -> RunReport:
        self.now += timedelta(minutes=1)
        connectors = {self.vendor.name: self.vendor.connector()}
        reconciliation = Reconciliation(
            self.engine, connectors, self.ledger, POLICY.purposes, b"secret", self.clock
        )
        return await reconciliation.run(trigger="schedule", dry_run=dry_run)

    def buy(self, email: str, at: datetime) -> None:
        with self.engine.begin() as conn:
            self.ledger.record(conn, [], [PurchaseRecord("shopify", f"order-{email}", email, at, paid=True)])

    def rules(self, report: RunReport) -> list[tuple[str, str]]:
        with self.engine.begin() as conn:
            return [(c["action"], c["rule"]) for c in runlog.changes(conn, report.run_id)]


@pytest.fixture
def shop(engine: Engine) -> Shop:
    return Shop(engine)


async def test_soft_opt_in_customer_is_unsubscribed_by_an_incremental_run_once_the_window_ends(
    shop: Shop,
) -> None:
    shop.buy(CUSTOMER, BOUGHT)
    shop.vendor.add(CUSTOMER, Status.NOT_SUBSCRIBED)
    subscribed = await shop.run()
    assert shop.rules(subscribed) == [("subscribe", "R12")]
    assert shop.vendor.status(CUSTOMER, "promotions") == Status.SUBSCRIBED
    assert (await shop.run()).planned == 0  # reads back the echo; nothing else to do
    with shop.engine.begin() as conn:
        stored = conn.execute(select(due.DUE.c.due_at).where(due.DUE.c.email == CUSTOMER)).scalar_one()
    end = add_months(BOUGHT, POLICY.soft_opt_in_months)
    assert abs(due_at(stored) - end) < timedelta(milliseconds=1)

    shop.now = end - timedelta(minutes=5)  # still inside the window: nobody is re-planned
    assert (await shop.run()).planned == 0
    shop.now = end + timedelta(days=1)
    rehearsal = await shop.run(dry_run=True)  # a dry run plans it and leaves it for the real run
    assert shop.rules(rehearsal) == [("unsubscribe", "R14")]
    ended = await shop.run()  # the vendor changed nothing: only time passed
    assert shop.rules(ended) == [("unsubscribe", "R14")]
    assert shop.vendor.status(CUSTOMER, "promotions") == Status.UNSUBSCRIBED
    with shop.engine.begin() as conn:
        assert (
            due.next_due(conn, "", shop.now + timedelta(days=3650), limit=10) == []
        )  # nothing left to wait for


async def test_incremental_run_pages_through_due_and_dirty_people_together(shop: Shop) -> None:
    customers = [f"k{i:02d}@example.nl" for i in range(7)]
    for email in customers:
        shop.buy(email, BOUGHT)
        shop.vendor.add(email, Status.NOT_SUBSCRIBED)
    await shop.run()
    await shop.run()
    shop.vendor.add(
        "new@example.nl", Status.SUBSCRIBED
    )  # dirty; a bare flag: unsubscribed (R31), tagged (R8)
    shop.now = add_months(BOUGHT, POLICY.soft_opt_in_months) + timedelta(days=1)
    reconciliation = Reconciliation(
        shop.engine, {"klaviyo": shop.vendor.connector()}, shop.ledger, POLICY.purposes, b"secret", shop.clock,
        chunk=3,
    )  # fmt: skip
    report = await reconciliation.run(trigger="schedule")
    assert sorted(shop.rules(report)) == [
        ("tag", "R8"),
        *[("unsubscribe", "R14")] * 7,
        ("unsubscribe", "R31"),
    ]
    assert all(shop.vendor.status(e, "promotions") == Status.UNSUBSCRIBED for e in customers)


def due_at(stored: datetime) -> datetime:
    return stored if stored.tzinfo else stored.replace(tzinfo=T0.tzinfo)


def test_upgrade_makes_everyone_already_observed_due_once(database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine, "0006")  # the revision before the decision_due table
    row = {"system": "klaviyo", "global_state": "active", "statuses": "{}", "observed_at": T0, "dirty": False}
    with engine.begin() as conn:
        conn.execute(
            insert(snapshot.OBSERVED), [{**row, "email": e} for e in ("a@example.nl", "b@example.nl")]
        )
    db.upgrade(engine)
    with engine.begin() as conn:
        first = due.next_due(conn, "", datetime(1970, 1, 1, tzinfo=UTC), limit=10)
    engine.dispose()
    assert first == ["a@example.nl", "b@example.nl"]
