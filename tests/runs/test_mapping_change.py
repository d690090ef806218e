"""A changed purpose mapping is read in full by the next run, with no ``--full``: records unchanged since
the cursors show the newly mapped purpose. Against the in-process Klaviyo sandbox, whose join feeds would
otherwise start at the vendor's clock and miss a newly mapped list's existing members, and the Mailchimp
sandbox, where a purpose moves to another interest."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from structlog.testing import capture_logs

from config.klaviyo import KlaviyoSettings
from config.mailchimp import MailchimpSettings
from config.vendor import VendorSettings
from connectors.base import Capabilities, GlobalState, Page, Status
from connectors.http import RetryPolicy
from connectors.klaviyo.connector import KlaviyoConnector
from connectors.klaviyo.sandbox import API_KEY, DEFAULT_LISTS, KlaviyoSandbox
from connectors.mailchimp import sandbox as mailchimp_sandbox
from connectors.mailchimp.connector import MailchimpConnector
from connectors.mailchimp.sandbox_data import INTERESTS
from connectors.sandbox import Clock
from sync_worker import runlog, snapshot
from sync_worker.ledger_port import EventKind
from sync_worker.runner import Reconciliation, RunReport
from tests.runs.fakes import T0, FakeConnector, FakeLedger, FakeVendor

JAN = "jan@example.nl"
PURPOSES = ("newsletter", "promotions")
PROMOTIONS_LIST = {"promotions": DEFAULT_LISTS["promotions"]}


async def no_sleep(_seconds: float) -> None:
    return None


class Refusing(httpx.AsyncBaseTransport):
    """The sandbox, with the paths for which ``down`` says so unreachable."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down: Callable[[str], bool] = lambda _path: False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down(request.url.path):
            raise httpx.ConnectError("vendor unreachable", request=request)
        return await self.inner.handle_async_request(request)


class Account:
    """One vendor account (a sandbox), the settings the worker reads it with, and runs a minute apart."""

    def __init__(self, engine: Engine, box: Any, settings: VendorSettings, connector: Any) -> None:
        self.engine = engine
        self.box = box
        self.transport = Refusing(httpx.ASGITransport(app=box.app))
        self.ledger = FakeLedger()
        self.settings = settings
        self.connector = connector  # the connector class, built afresh from the settings for each run
        self.system = box.name

    def remap(self, **update: Any) -> None:
        self.settings = self.settings.model_copy(update=update)

    async def run(self, *, dry_run: bool = False) -> RunReport:
        self.box.clock.advance(60)  # our run starts after the vendor's last change
        connector = self.connector.from_settings(
            self.settings,
            transport=self.transport,
            retry=RetryPolicy(max_attempts=1, sleep=no_sleep),
            clock=self.box.clock.now,
        )
        try:
            reconciliation = Reconciliation(
                self.engine, {self.system: connector}, self.ledger, PURPOSES, b"secret", self.box.clock.now
            )
            return await reconciliation.run(trigger="schedule", dry_run=dry_run)
        finally:
            await connector.aclose()

    def seen(self, email: str) -> dict[str, Status]:
        with self.engine.begin() as conn:
            return dict(snapshot.load_seen(conn, [email], self.system)[email][self.system].statuses)

    def read_with(self) -> str | None:
        with self.engine.begin() as conn:
            return snapshot.load_read_with(conn, self.system)

    def planned(self, report: RunReport) -> set[tuple[str, str, str, str]]:
        with self.engine.begin() as conn:
            changes = runlog.changes(conn, report.run_id)
        return {(c["system"], c["slot"], c["action"], c["rule"]) for c in changes}


@pytest.fixture
def account(engine: Engine) -> Account:
    # Promotions is not mapped yet: only the account-wide consent stands for the newsletter.
    settings = KlaviyoSettings(
        api_key=API_KEY, base_url="http://klaviyo.test", lists={}, consent_purposes=["newsletter"]
    )
    account = Account(engine, KlaviyoSandbox(clock=Clock(T0)), settings, KlaviyoConnector)
    # Jan has the newsletter and joined the promotions list long before promotions was mapped to it.
    account.box.add_contact(JAN, {"newsletter": Status.SUBSCRIBED, "promotions": Status.SUBSCRIBED})
    account.ledger.grant(JAN, "newsletter")
    return account


def full_pulls(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in logs if line["event"] == "full_pull"]


async def test_a_newly_mapped_list_is_read_in_full_by_the_next_plain_run(account: Account) -> None:
    account.ledger.withdraw(JAN, "promotions", T0 + timedelta(seconds=30), source="website")
    with capture_logs() as first_logs:
        first = await account.run()
    assert first.status == "success", first.summary()
    assert account.seen(JAN) == {"newsletter": Status.SUBSCRIBED}
    assert full_pulls(first_logs) == []  # a first pull is full anyway: nothing to say
    assert account.read_with() == account.settings.pull_fingerprint()

    account.remap(lists=PROMOTIONS_LIST)  # Jan's profile has not changed since the first run
    with capture_logs() as logs:
        report = await account.run()
    assert report.status == "success", report.summary()
    assert account.seen(JAN) == {"newsletter": Status.SUBSCRIBED, "promotions": Status.SUBSCRIBED}
    # Jan withdrew promotions after joining the list: the plan takes him off it (R16).
    assert account.planned(report) == {("klaviyo", "promotions", "unsubscribe", "R16")}
    assert account.box.status(JAN, "promotions") != Status.SUBSCRIBED
    assert [(line["connector"], line["reason"]) for line in full_pulls(logs)] == [
        ("klaviyo", "mapping changed: full pull")
    ]
    assert JAN not in str(logs)
    assert account.read_with() == account.settings.pull_fingerprint()


async def test_a_dry_run_reads_the_new_mapping_and_leaves_its_people_to_the_next_real_run(
    account: Account,
) -> None:
    account.ledger.withdraw(JAN, "promotions", T0 + timedelta(seconds=30), source="website")
    await account.run()
    account.remap(lists=PROMOTIONS_LIST)
    rehearsal = await account.run(dry_run=True)
    unsubscribe = {("klaviyo", "promotions", "unsubscribe", "R16")}
    assert account.planned(rehearsal) == unsubscribe
    assert account.box.status(JAN, "promotions") == Status.SUBSCRIBED  # nothing pushed
    assert account.read_with() == account.settings.pull_fingerprint()  # the snapshot holds what it read
    real = await account.run()  # incremental: Jan was read and is still marked for planning
    assert account.planned(real) == unsubscribe
    assert account.box.status(JAN, "promotions") != Status.SUBSCRIBED


async def test_a_purpose_moved_to_another_mailchimp_interest_is_read_by_the_next_plain_run(
    engine: Engine,
) -> None:
    promotions, product_news = list(INTERESTS)
    box = mailchimp_sandbox.MailchimpSandbox(
        clock=Clock(T0),
        purposes={
            "newsletter": "status",
            "promotions": f"interest:{promotions}",
            "news": f"interest:{product_news}",
        },
    )
    settings = MailchimpSettings(
        api_key=mailchimp_sandbox.API_KEY,
        list_id=box.audience.list_id,
        base_url="http://mailchimp.test/3.0",
        purposes={"newsletter": "status", "promotions": f"interest:{promotions}"},
    )
    account = Account(engine, box, settings, MailchimpConnector)
    box.add_contact(JAN, {"newsletter": Status.SUBSCRIBED, "promotions": Status.SUBSCRIBED})
    for purpose in PURPOSES:
        account.ledger.grant(JAN, purpose)
    await account.run()
    assert account.seen(JAN) == {"newsletter": Status.SUBSCRIBED, "promotions": Status.SUBSCRIBED}

    # Promotions is now mailed through the product news interest, which Jan never chose.
    account.remap(purposes={"newsletter": "status", "promotions": f"interest:{product_news}"})
    with capture_logs() as logs:
        report = await account.run()
    assert account.seen(JAN) == {"newsletter": Status.SUBSCRIBED, "promotions": Status.NOT_SUBSCRIBED}
    assert [line["connector"] for line in full_pulls(logs)] == ["mailchimp"]
    # Jan did not leave anything: the old interest's status is no earlier state of the new one, so no
    # withdrawal is recorded (it would stop promotions everywhere), and his consent still stands.
    assert [e for e in account.ledger.events.values() if e.kind == EventKind.WITHDRAW] == []
    assert ("mailchimp", "promotions", "subscribe", "R5") in account.planned(report)


async def test_another_audience_read_in_full_drops_the_people_only_the_old_one_held(engine: Engine) -> None:
    """Moved to another audience, the worker must not push to people only the old audience held: a
    Mailchimp batch write would create them there."""
    old_box, new_box = (mailchimp_sandbox.MailchimpSandbox(clock=Clock(T0)) for _ in range(2))
    new_box.audience.list_id = "b1c2d3e4f5"
    purposes = {"newsletter": "status"}
    settings = MailchimpSettings(
        api_key=mailchimp_sandbox.API_KEY,
        list_id=old_box.audience.list_id,
        base_url="http://mailchimp.test/3.0",
        purposes=purposes,
    )
    old = Account(engine, old_box, settings, MailchimpConnector)
    for box in (old_box, new_box):
        box.add_contact("piet@example.nl", {"newsletter": Status.SUBSCRIBED})
    old_box.add_contact(JAN, {"newsletter": Status.SUBSCRIBED})
    for email in (JAN, "piet@example.nl"):
        old.ledger.grant(email, "newsletter")
    await old.run()

    new = Account(engine, new_box, settings.model_copy(update={"list_id": "b1c2d3e4f5"}), MailchimpConnector)
    new.ledger = old.ledger
    new_box.clock.advance(old_box.clock.now().timestamp() - new_box.clock.now().timestamp())
    new.ledger.withdraw(JAN, "newsletter", at=new_box.clock.now(), source="website")
    with capture_logs() as logs:
        report = await new.run()
    assert [line["connector"] for line in full_pulls(logs)] == ["mailchimp"]
    with engine.begin() as conn:
        shown = snapshot.load_seen(conn, [JAN, "piet@example.nl"], "mailchimp")
    assert set(shown) == {"piet@example.nl"}  # Jan's row was read from the old audience
    assert new_box.status(JAN, "newsletter") is None  # not created in the new audience
    assert report.status == "success", report.summary()


async def test_a_failed_pull_keeps_the_old_fingerprint_so_the_next_run_reads_in_full_again(
    account: Account,
) -> None:
    await account.run()
    old = account.read_with()
    account.remap(lists=PROMOTIONS_LIST)
    # The join feed is placed at the vendor's clock (its cursor is saved), then the profiles fail.
    account.transport.down = lambda path: path.startswith("/api/profiles")
    failed = await account.run()
    assert failed.counts["klaviyo"].error is not None
    assert account.read_with() == old
    assert account.seen(JAN) == {"newsletter": Status.SUBSCRIBED}

    account.transport.down = lambda _path: False
    with capture_logs() as logs:
        again = await account.run()
    assert again.status == "success", again.summary()
    assert [line["connector"] for line in full_pulls(logs)] == ["klaviyo"]
    assert account.seen(JAN) == {"newsletter": Status.SUBSCRIBED, "promotions": Status.SUBSCRIBED}
    assert account.read_with() == account.settings.pull_fingerprint()


async def test_an_unchanged_mapping_keeps_the_runs_incremental(account: Account) -> None:
    account.remap(lists=PROMOTIONS_LIST)
    account.ledger.grant(JAN, "promotions")
    await account.run()
    settled = await account.run()
    assert settled.planned == 0
    sent = len(account.box.requests)
    with capture_logs() as logs:
        quiet = await account.run()
    # One request per stream (the promotions join feed and the profiles), nothing read again.
    assert len(account.box.requests) - sent == 2
    assert quiet.counts["klaviyo"].pulled == 0
    assert full_pulls(logs) == []


async def test_cursors_without_a_fingerprint_are_read_in_full_once(account: Account) -> None:
    """Cursors saved before fingerprints were kept: what they were read with is unknown."""
    await account.run()
    with account.engine.begin() as conn:
        conn.execute(snapshot.CURSORS.delete().where(snapshot.CURSORS.c.stream == snapshot.READ_WITH))
    account.remap(lists=PROMOTIONS_LIST)
    with capture_logs() as logs:
        await account.run()
    assert [line["connector"] for line in full_pulls(logs)] == ["klaviyo"]
    assert account.seen(JAN)["promotions"] == Status.SUBSCRIBED


class Unmarked(FakeConnector):
    """A connector that states a fingerprint and marks no page as its stream's final one."""

    def capabilities(self) -> Capabilities:
        return replace(super().capabilities(), pull_fingerprint=self.vendor.fingerprint)

    async def pull(self, stream: str, since: str | None = None) -> AsyncIterator[Page]:
        async for page in super().pull(stream, since):
            yield replace(page, final=False)


class Fingerprinted(FakeVendor):
    fingerprint = "sha256:first"

    def connector(self) -> FakeConnector:
        return Unmarked(self)


async def test_the_fingerprint_is_saved_after_a_pull_whose_pages_say_nothing_of_the_end(
    engine: Engine,
) -> None:
    vendor = Fingerprinted("mailchimp", ["newsletter"])
    vendor.add(JAN, Status.SUBSCRIBED)
    ledger = FakeLedger()
    ledger.grant(JAN, "newsletter")  # nothing to push: every pull below reads only what the cursor says

    async def pulled() -> int:
        reconciliation = Reconciliation(
            engine, {"mailchimp": vendor.connector()}, ledger, ("newsletter",), b"secret", lambda: T0
        )
        return (await reconciliation.run(trigger="schedule")).counts["mailchimp"].pulled

    assert [await pulled(), await pulled()] == [1, 0]
    with engine.begin() as conn:
        assert snapshot.load_read_with(conn, "mailchimp") == "sha256:first"
    vendor.fingerprint = "sha256:second"
    assert [await pulled(), await pulled()] == [1, 0]  # read in full once: Jan again, unchanged


async def test_a_remapped_pull_records_no_second_objection_or_withdrawal_of_what_is_on_record(
    engine: Engine,
) -> None:
    """The account-wide state is no purpose mapping's, and a status the snapshot already showed is on
    record: read again at the record's newer time, it would be an objection the person never made again,
    later than the consent they gave since (and noise in the evidence)."""
    vendor = Fingerprinted("mailchimp", ["newsletter", "promotions"])
    vendor.add(JAN, Status.UNSUBSCRIBED)  # no time of its own per purpose: the record's time stands in
    vendor.set_global(JAN, GlobalState.COMPLAINED)
    ledger = FakeLedger()

    async def run() -> RunReport:
        reconciliation = Reconciliation(
            engine, {"mailchimp": vendor.connector()}, ledger, PURPOSES, b"secret", lambda: T0
        )
        return await reconciliation.run(trigger="schedule")

    def negatives() -> list[tuple[str | None, EventKind]]:
        kinds = (EventKind.COMPLAINT, EventKind.WITHDRAW, EventKind.OBJECT)
        return sorted(((e.purpose, e.kind) for e in ledger.events.values() if e.kind in kinds), key=str)

    await run()
    on_record = negatives()
    assert on_record == sorted(
        [(None, EventKind.COMPLAINT), ("newsletter", EventKind.WITHDRAW), ("promotions", EventKind.WITHDRAW)],
        key=str,
    )
    # Jan signs up for the newsletter again on our own form, after all that; staff then edit his name.
    ledger.grant(JAN, "newsletter", at=vendor.clock + timedelta(minutes=1))
    vendor.clock += timedelta(minutes=2)
    vendor.touch(JAN)
    await run()
    assert negatives() == on_record

    vendor.fingerprint = "sha256:second"
    report = await run()
    assert report.status == "success", report.summary()
    assert negatives() == on_record
    with engine.begin() as conn:
        decided = ledger.decide(conn, [JAN], PURPOSES, T0)[JAN]
    assert decided["newsletter"].allowed
