"""A whole run against in-memory vendors and ledger: propagation, echoes, convergence, dry runs, crashes."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from structlog.testing import capture_logs

from connectors.base import GlobalState, Outcome, RecordError, Status
from sync_worker import runlog
from sync_worker.ledger_port import ErasureRequest, EventKind
from sync_worker.outbox import ITEMS
from sync_worker.plan import REPERMISSION_TAG
from sync_worker.progress import NoProgress, Progress
from sync_worker.runner import Reconciliation, RunReport
from tests.runs.fakes import T0, FakeLedger, FakeVendor, ProcessKilled, with_evidence

PURPOSES = ("newsletter", "promotions")


class World:
    """Three vendors, one ledger, one database, and a clock that moves a minute per run."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.mailchimp = FakeVendor("mailchimp", PURPOSES)
        self.klaviyo = FakeVendor("klaviyo", PURPOSES, erase=True)
        self.shopify = FakeVendor("shopify", ["newsletter"], tags=False)
        self.vendors = [self.mailchimp, self.klaviyo, self.shopify]
        self.ledger = FakeLedger()
        self.now = T0
        self.progress: Progress = NoProgress()

    def everywhere(self, email: str, status: Status, **kw: object) -> None:
        for vendor in self.vendors:
            vendor.add(email, status, **kw)  # type: ignore[arg-type]

    async def run(self, only: str | None = None, **kw: object) -> RunReport:
        """One run of every vendor, or of the one named ``only`` (``--connector``, a partial lease)."""
        self.now += timedelta(minutes=1)
        moment = self.now

        def clock() -> datetime:
            return moment

        reconciliation = Reconciliation(
            engine=self.engine,
            connectors={v.name: v.connector() for v in self.vendors if only in (None, v.name)},
            complete=only is None,
            ledger=self.ledger,
            purposes=PURPOSES,
            secret=b"test-secret",
            clock=clock,
            chunk=2,
            progress=self.progress,
        )
        return await reconciliation.run(trigger="manual", **kw)  # type: ignore[arg-type]

    def pushed(self) -> int:
        return sum(len(batch) for vendor in self.vendors for batch in vendor.pushes)


@pytest.fixture
def world(engine: Engine) -> World:
    return World(engine)


async def test_unsubscribe_in_one_system_reaches_all_others_in_one_run(world: World) -> None:
    world.ledger.grant("jan@example.nl", "newsletter")
    world.everywhere("jan@example.nl", Status.SUBSCRIBED)
    first = await world.run()
    assert first.status == "success"
    # Newsletter already shows what the ledger allows; the bare promotions flag has no basis: it is
    # closed (R27) and the person listed for re-permission where the vendor has tags (R8).
    first_pushes = [c for v in world.vendors for batch in v.pushes for c in batch]
    assert {(c.system, c.purpose, c.action.value) for c in first_pushes} == {
        ("mailchimp", "promotions", "unsubscribe"),
        ("klaviyo", "promotions", "unsubscribe"),
        ("mailchimp", None, "tag"),
        ("klaviyo", None, "tag"),
    }

    world.mailchimp.set_status("jan@example.nl", "newsletter", Status.UNSUBSCRIBED)
    report = await world.run()
    assert report.status == "success", report.summary()
    assert world.klaviyo.status("jan@example.nl", "newsletter") == Status.UNSUBSCRIBED
    assert world.shopify.status("jan@example.nl", "newsletter") == Status.UNSUBSCRIBED
    with world.engine.begin() as conn:
        rows = runlog.changes(conn, report.run_id)
    newsletter = [r for r in rows if r["slot"] == "newsletter"]
    assert {(r["system"], r["before"], r["after"], r["rule"], r["push_result"]) for r in newsletter} == {
        ("klaviyo", "subscribed", "unsubscribed", "R16", "accepted"),
        ("shopify", "subscribed", "unsubscribed", "R16", "accepted"),
    }
    assert all(r["person"] == "j***@example.nl" for r in rows)
    assert all(r["event_ids"] for r in newsletter)  # the withdrawal that caused it


async def test_echo_of_our_push_is_not_evidence_and_the_next_run_is_a_no_op(world: World) -> None:
    world.ledger.grant("jan@example.nl", "newsletter")
    world.everywhere("jan@example.nl", Status.SUBSCRIBED)
    await world.run()
    world.mailchimp.set_status("jan@example.nl", "newsletter", Status.UNSUBSCRIBED)
    await world.run()
    events_before = dict(world.ledger.events)
    pushes_before = world.pushed()

    echo_run = await world.run()  # reads back the unsubscribes we pushed
    assert echo_run.counts["klaviyo"].echoes >= 1
    assert echo_run.counts["shopify"].echoes >= 1
    assert world.ledger.events == events_before  # no withdrawal "by the person" in Klaviyo or Shopify
    assert world.pushed() == pushes_before
    assert echo_run.planned == 0

    quiet = await world.run()
    assert (quiet.planned, quiet.status) == (0, "success")
    assert world.pushed() == pushes_before


async def test_a_run_of_one_connector_leaves_its_people_to_plan_for_the_others(world: World) -> None:
    """A run of some connectors only (``--connector``, or a replica holding some leases) plans for those
    alone; the people whose state it read stay to be planned for the rest, so an opt-out it pulled
    reaches them in the next run of everything, incremental as it is (R25)."""
    for purpose in PURPOSES:
        world.ledger.grant("jan@example.nl", purpose)
    world.everywhere("jan@example.nl", Status.SUBSCRIBED)
    await world.run()
    world.klaviyo.set_status("jan@example.nl", "newsletter", Status.UNSUBSCRIBED)
    alone = await world.run(only="klaviyo")
    assert (alone.counts["klaviyo"].events, alone.planned) == (1, 0)  # Klaviyo shows the opt-out already
    assert world.mailchimp.status("jan@example.nl", "newsletter") == Status.SUBSCRIBED  # not its run
    await world.run()
    assert world.mailchimp.status("jan@example.nl", "newsletter") == Status.UNSUBSCRIBED
    assert world.shopify.status("jan@example.nl", "newsletter") == Status.UNSUBSCRIBED


async def test_systems_that_disagree_settle_restrictively_without_ping_pong(world: World) -> None:
    world.mailchimp.add("eva@example.nl", Status.UNSUBSCRIBED)
    world.klaviyo.add("eva@example.nl", Status.SUBSCRIBED)  # no evidence: R8
    for _ in range(4):
        await world.run()
    assert world.klaviyo.status("eva@example.nl", "newsletter") == Status.UNSUBSCRIBED
    assert world.mailchimp.status("eva@example.nl", "newsletter") == Status.UNSUBSCRIBED
    pushed = world.pushed()
    await world.run()
    await world.run()
    assert world.pushed() == pushed
    kinds = {k for _, k, _ in world.ledger.kinds("eva@example.nl")}
    assert EventKind.GRANT not in kinds


async def test_subscribed_import_without_evidence_is_quarantined_and_tagged(world: World) -> None:
    world.klaviyo.add("imp@example.nl", Status.SUBSCRIBED)
    await world.run()
    contact = world.klaviyo.contacts["imp@example.nl"]
    assert REPERMISSION_TAG in contact.tags
    assert contact.statuses["newsletter"] == Status.UNSUBSCRIBED  # R27: no basis, not mailed
    assert [k for _, k, _ in world.ledger.kinds("imp@example.nl")].count(EventKind.GRANT) == 0


async def test_evidence_backed_signup_in_one_vendor_is_subscribed_where_the_person_exists(
    world: World,
) -> None:
    world.mailchimp.add("new@example.nl", Status.SUBSCRIBED, evidence=with_evidence())
    world.klaviyo.add("new@example.nl", Status.NOT_SUBSCRIBED)
    await world.run()
    assert world.klaviyo.status("new@example.nl", "newsletter") == Status.SUBSCRIBED
    assert "new@example.nl" not in world.shopify.contacts  # never created where absent


async def test_dry_run_pushes_nothing_and_logs_the_plan_for_a_later_real_run(world: World) -> None:
    world.ledger.grant("jan@example.nl", "newsletter")
    world.everywhere("jan@example.nl", Status.SUBSCRIBED)
    await world.run()
    await world.run()  # reads back the first run's echoes
    baseline = world.pushed()
    world.mailchimp.set_status("jan@example.nl", "newsletter", Status.UNSUBSCRIBED)
    dry = await world.run(dry_run=True)
    assert world.pushed() == baseline
    assert world.klaviyo.status("jan@example.nl", "newsletter") == Status.SUBSCRIBED
    with world.engine.begin() as conn:
        rows = runlog.changes(conn, dry.run_id)
        assert rows
        assert {r["push_result"] for r in rows} == {"dry run: not pushed"}
        queued = select(func.count()).select_from(ITEMS).where(ITEMS.c.run_id == dry.run_id)
        assert conn.execute(queued).scalar_one() == 0
        assert runlog.runs(conn)[0]["dry_run"] is True
    real = await world.run()  # the dry run left the people to plan for the real one
    assert real.planned == dry.planned
    assert world.klaviyo.status("jan@example.nl", "newsletter") == Status.UNSUBSCRIBED


async def test_bad_record_is_logged_with_vendor_id_and_field_and_the_run_goes_on(world: World) -> None:
    world.klaviyo.bad_records = [
        RecordError("klaviyo", "k-99", "email", "not an e-mail address: 'x@'"),
        RecordError("klaviyo", "k-100", "phone", "no phone for lena@example.nl"),
    ]
    world.klaviyo.add("ok@example.nl", Status.UNSUBSCRIBED)
    report = await world.run()
    assert report.status == "partial"
    assert report.exit_code == 1
    assert report.counts["klaviyo"].pulled == 1
    with world.engine.begin() as conn:
        [row, quoting] = runlog.rejected(conn, report.run_id)
    assert (row["system"], row["record_id"], row["field"]) == ("klaviyo", "k-99", "email")
    assert quoting["error"] == "no phone for l***@example.nl"  # the log keeps people masked


async def test_record_the_ledger_refuses_is_in_the_log_with_vendor_id_and_field_and_the_run_goes_on(
    world: World,
) -> None:
    world.ledger.refuse = {"bad@example.nl"}
    world.mailchimp.add("bad@example.nl", Status.UNSUBSCRIBED)
    world.mailchimp.add("ok@example.nl", Status.UNSUBSCRIBED)
    report = await world.run()
    assert report.status == "partial"
    assert report.counts["mailchimp"].rejected_records == 1
    assert report.counts["mailchimp"].events == 2  # ok@'s newsletter and promotions withdrawals
    with world.engine.begin() as conn:
        [row] = runlog.rejected(conn, report.run_id)
    bad_id = world.mailchimp.record(world.mailchimp.contacts["bad@example.nl"]).external_id
    assert (row["system"], row["record_id"], row["field"], row["error"]) == (
        "mailchimp",
        bad_id,
        "email",
        "refused by the ledger",
    )


class Recorder:
    """A Progress port that remembers what it heard."""

    def __init__(self) -> None:
        self.pages: list[tuple[str, str, int, int]] = []
        self.batches: list[tuple[str, int]] = []

    def pulled_page(self, connector: str, stream: str, page: int, records: int) -> None:
        self.pages.append((connector, stream, page, records))

    def pushed_batch(self, connector: str, changes: int) -> None:
        self.batches.append((connector, changes))


async def test_progress_hears_every_pulled_page_and_pushed_batch_per_connector(world: World) -> None:
    recorder = Recorder()
    world.progress = recorder
    for name in ("an", "bo", "cy", "di"):
        world.everywhere(f"{name}@example.nl", Status.SUBSCRIBED)
    await world.run()
    for vendor in world.vendors:
        # Four people in pages of three.
        assert [p for p in recorder.pages if p[0] == vendor.name] == [
            (vendor.name, "contacts", 1, 3),
            (vendor.name, "contacts", 2, 1),
        ]
        heard = [size for name, size in recorder.batches if name == vendor.name]
        assert sorted(heard) == sorted(len(batch) for batch in vendor.pushes)  # batches run concurrently
    # The bare subscribed flags are closed (R8, R27): there were pushes to hear of.
    assert sum(size for _name, size in recorder.batches) == world.pushed() > 0


async def test_one_vendor_down_leaves_the_others_synced_and_the_run_partial(world: World) -> None:
    world.shopify.broken_pull = ConnectionError("shop unreachable")
    world.ledger.grant("jan@example.nl", "newsletter")
    world.everywhere("jan@example.nl", Status.SUBSCRIBED)
    world.mailchimp.set_status("jan@example.nl", "newsletter", Status.UNSUBSCRIBED)
    report = await world.run()
    assert report.status == "partial"
    assert "shop unreachable" in (report.counts["shopify"].error or "")
    assert world.klaviyo.status("jan@example.nl", "newsletter") == Status.UNSUBSCRIBED


async def test_crash_during_push_then_restart_converges_without_lost_opt_out_or_duplicate_event(
    world: World,
) -> None:
    world.ledger.grant("jan@example.nl", "newsletter")
    world.everywhere("jan@example.nl", Status.SUBSCRIBED)
    await world.run()
    world.mailchimp.set_status("jan@example.nl", "newsletter", Status.UNSUBSCRIBED)
    world.klaviyo.crash_on_push = ProcessKilled()
    with pytest.raises(ProcessKilled):
        await world.run()
    events_after_crash = dict(world.ledger.events)
    world.klaviyo.crash_on_push = None
    world.now += timedelta(minutes=10)  # the restarted worker comes up after the claim lease
    await world.run()
    assert world.klaviyo.status("jan@example.nl", "newsletter") == Status.UNSUBSCRIBED
    assert world.shopify.status("jan@example.nl", "newsletter") == Status.UNSUBSCRIBED
    assert world.ledger.events == events_after_crash  # the re-pulled page adds no duplicate event
    await world.run()
    settled = world.pushed()
    await world.run()
    assert world.pushed() == settled


async def test_transient_push_failures_converge_over_later_runs(world: World) -> None:
    world.ledger.grant("jan@example.nl", "newsletter")
    world.everywhere("jan@example.nl", Status.SUBSCRIBED)
    await world.run()
    world.mailchimp.set_status("jan@example.nl", "newsletter", Status.UNSUBSCRIBED)
    world.klaviyo.fail = lambda c: Outcome.RETRY_LATER if c.purpose == "newsletter" else None
    failing = await world.run()
    assert failing.status == "partial"
    assert failing.counts["klaviyo"].failed == 1
    world.klaviyo.fail = lambda _c: None
    await world.run()
    assert world.klaviyo.status("jan@example.nl", "newsletter") == Status.UNSUBSCRIBED


async def test_spam_complaint_in_one_vendor_unsubscribes_every_purpose_everywhere(world: World) -> None:
    world.ledger.grant("bo@example.nl", "newsletter")
    world.ledger.grant("bo@example.nl", "promotions")
    world.everywhere("bo@example.nl", Status.SUBSCRIBED)
    await world.run()
    world.klaviyo.set_global("bo@example.nl", GlobalState.COMPLAINED)
    await world.run()
    assert set(world.mailchimp.contacts["bo@example.nl"].statuses.values()) == {Status.UNSUBSCRIBED}
    assert world.shopify.status("bo@example.nl", "newsletter") == Status.UNSUBSCRIBED


async def test_erasure_request_deletes_or_unsubscribes_everywhere_then_completes(world: World) -> None:
    world.ledger.grant("del@example.nl", "newsletter")
    world.everywhere("del@example.nl", Status.SUBSCRIBED)
    await world.run()
    world.ledger.erasure_requests["del@example.nl"] = ErasureRequest(9, "del@example.nl")
    await world.run()
    assert world.klaviyo.contacts["del@example.nl"].global_state == GlobalState.ERASED
    assert world.mailchimp.status("del@example.nl", "newsletter") == Status.UNSUBSCRIBED
    assert [r.request_id for r in world.ledger.completed] == [9]
    with world.engine.begin() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(ITEMS).where(ITEMS.c.email == "del@example.nl")
            ).scalar_one()
            == 0
        )


async def test_an_erasure_is_complete_only_once_a_run_of_every_system_carried_it_out(world: World) -> None:
    """A run of one connector erases there alone: the request stays open, and the snapshot keeps the
    person, until a complete run has told every system (R21)."""
    world.ledger.grant("del@example.nl", "newsletter")
    world.everywhere("del@example.nl", Status.SUBSCRIBED)
    await world.run()
    world.ledger.erasure_requests["del@example.nl"] = ErasureRequest(9, "del@example.nl")
    await world.run(only="klaviyo")
    assert world.klaviyo.contacts["del@example.nl"].global_state == GlobalState.ERASED
    assert world.mailchimp.status("del@example.nl", "newsletter") == Status.SUBSCRIBED  # not its run
    assert world.ledger.completed == []
    await world.run()
    assert world.mailchimp.status("del@example.nl", "newsletter") == Status.UNSUBSCRIBED
    assert world.shopify.status("del@example.nl", "newsletter") == Status.UNSUBSCRIBED
    assert [r.request_id for r in world.ledger.completed] == [9]


async def test_targeted_run_plans_only_the_people_named(world: World) -> None:
    world.ledger.grant("a@example.nl", "newsletter")
    world.ledger.grant("b@example.nl", "newsletter")
    world.everywhere("a@example.nl", Status.SUBSCRIBED)
    world.everywhere("b@example.nl", Status.SUBSCRIBED)
    await world.run()
    pulls = world.klaviyo.pull_requests
    # A webhook recorded withdrawals for both straight into the ledger; the targeted run names one.
    for email in ("a@example.nl", "b@example.nl"):
        world.ledger.withdraw(email, "newsletter", T0 + timedelta(days=1))
    await world.run(emails={"a@example.nl"})
    assert world.klaviyo.pull_requests == pulls  # no pull: the webhook already said what changed
    assert world.klaviyo.status("a@example.nl", "newsletter") == Status.UNSUBSCRIBED
    assert world.klaviyo.status("b@example.nl", "newsletter") == Status.SUBSCRIBED


async def test_a_withdrawal_recorded_after_planning_stops_the_planned_subscribe_r16(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook run records, plans and pushes without waiting for the scheduled run's leases, so it may
    record a withdrawal after a scheduled pass planned a subscribe for that person and before its push.
    The subscribe is decided again when it is claimed: withdrawal wins (R16), and nothing undoes it."""
    world.ledger.grant("jan@example.nl", "newsletter")
    world.mailchimp.add("jan@example.nl", Status.SUBSCRIBED)
    world.klaviyo.add("jan@example.nl", Status.NOT_SUBSCRIBED)  # allowed, not shown there: a subscribe
    planned = Reconciliation._plan

    def plan_then_withdraw(self: Reconciliation, report: RunReport, now: datetime, *args: object) -> None:
        planned(self, report, now, *args)  # type: ignore[arg-type]
        world.ledger.withdraw("jan@example.nl", "newsletter", now)  # the webhook run, between plan and push

    monkeypatch.setattr(Reconciliation, "_plan", plan_then_withdraw)
    with capture_logs() as logs:
        report = await world.run()
    with world.engine.begin() as conn:
        rows = runlog.changes(conn, report.run_id)
        [row] = [r for r in rows if (r["system"], r["slot"]) == ("klaviyo", "newsletter")]
        [state] = conn.execute(select(ITEMS.c.state).where(ITEMS.c.key == row["outbox_key"])).scalars()
    assert (row["after"], row["rule"]) == ("subscribed", "R5")  # it was planned
    assert row["push_result"].startswith(
        "not pushed: newsletter was no longer allowed when its push came (R16"
    )
    assert state == "superseded"
    assert report.counts["klaviyo"].stopped == 1
    [line] = [entry for entry in logs if entry["event"] == "subscribe_not_pushed"]
    assert (line["key"], line["rule"], line["connector"]) == (row["outbox_key"], "R16", "klaviyo")
    assert not [c for batch in world.klaviyo.pushes for c in batch if c.purpose == "newsletter"]
    assert world.klaviyo.status("jan@example.nl", "newsletter") == Status.NOT_SUBSCRIBED

    monkeypatch.setattr(Reconciliation, "_plan", planned)
    await world.run()  # decided again at once: the opt-out reaches the system that still mails
    assert world.mailchimp.status("jan@example.nl", "newsletter") == Status.UNSUBSCRIBED
    assert world.klaviyo.status("jan@example.nl", "newsletter") == Status.NOT_SUBSCRIBED
